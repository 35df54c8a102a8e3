"""The engine is pure: no module under app/engine imports Flask, SQLAlchemy, a channel or I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[2] / "app" / "engine"
ALLOWED_THIRD_PARTY = {"yaml", "jsonschema", "gsm0338", "rapidfuzz"}
FORBIDDEN_STDLIB = {
    "socket",
    "subprocess",
    "urllib",
    "http",
    "requests",
    "sqlite3",
    "random",
    "uuid",
    "time",
    "asyncio",
    "threading",
    "os",
    "shutil",
    "tempfile",
    "logging",
}
STDLIB = {
    "__future__",
    "ast",
    "collections",
    "copy",
    "dataclasses",
    "datetime",
    "difflib",
    "enum",
    "functools",
    "hashlib",
    "itertools",
    "json",
    "math",
    "pathlib",
    "re",
    "string",
    "typing",
    "unicodedata",
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("path", sorted(ENGINE.glob("*.py")), ids=lambda p: p.name)
def test_engine_module_imports_only_the_standard_library_and_its_own_package(path: Path) -> None:
    for line, module in _imports(path):
        top = module.split(".")[0]
        where = f"{path.name}:{line} imports {module}"
        if top == "app":
            assert module.startswith("app.engine"), f"{where}: the engine may import only app.engine"
            continue
        assert top not in FORBIDDEN_STDLIB, f"{where}: no I/O, clock or randomness in the engine"
        assert top in STDLIB | ALLOWED_THIRD_PARTY, f"{where}: not an allowed import for the engine"


def test_engine_never_reads_the_clock() -> None:
    for path in ENGINE.glob("*.py"):
        source = path.read_text()
        for call in ("datetime.now(", "date.today(", "datetime.utcnow(", "time.time("):
            assert call not in source, f"{path.name} calls {call}: the clock must come from the context"
