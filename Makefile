# The two commands: `make run` (the service, with demo data and the simulator) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := REVIEWLINE_DEV=1 $(BIN)/flask --app app
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test bench check translations clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(FLASK) db upgrade
	$(FLASK) demo load
	@echo ""
	@echo "Reviewline is starting on http://$(HOST):$(PORT)"
	@echo "  Simulator (chat as a demo child): http://$(HOST):$(PORT)/simulator"
	@echo "  Staff inbox:                      http://$(HOST):$(PORT)/login"
	@echo "  Health check:                     http://$(HOST):$(PORT)/healthz"
	@echo ""
	$(FLASK) run --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/run.py

check: $(VENV)/.installed-test
	$(BIN)/ruff check app tests benchmarks
	$(BIN)/ruff format --check app tests benchmarks
	$(FLASK) flows check

# Refresh the template and catalogs after changing flow text; changed English becomes "fuzzy"
# (needs review) in each catalog, which the service never shows to a child.
translations: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg --no-wrap --sort-by-file --omit-header -c TRANSLATORS: -o locales/messages.pot .
	$(BIN)/pybabel update -i locales/messages.pot -d locales --no-wrap --ignore-pot-creation-date

clean:
	rm -rf $(VENV) .pytest_cache
