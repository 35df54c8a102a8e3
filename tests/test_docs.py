"""Docs that cannot drift: every setting, CLI command, effect kind and node kind is documented."""

from __future__ import annotations

import re
from pathlib import Path

from app.cli import demo_cli, flows_cli, keys_cli, telegram_cli
from app.engine.effects import EFFECT_KINDS
from app.engine.nodes import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "README.md").read_text() + "".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))


def test_every_setting_read_from_the_environment_is_documented() -> None:
    source = (ROOT / "app" / "config.py").read_text()
    names = set(re.findall(r'env\.get\("([A-Z_]+)"', source))
    assert names, "the settings scan found nothing"
    for name in sorted(names):
        assert f"`{name}`" in DOCS or name in DOCS, f"setting {name} is not in the README or docs"


def test_every_cli_command_is_documented() -> None:
    for group in (flows_cli, demo_cli, keys_cli, telegram_cli):
        for command in group.commands:
            assert f"{group.name} {command}" in DOCS, (
                f"`flask --app app {group.name} {command}` is undocumented"
            )


def test_every_effect_kind_is_documented() -> None:
    for effect in EFFECT_KINDS:
        assert f"`{effect.kind}`" in DOCS, f"effect kind {effect.kind} is undocumented"


def test_every_node_kind_is_documented() -> None:
    for kind in REGISTRY:
        assert f"`{kind}`" in DOCS, f"node kind {kind} is undocumented"


def test_the_readme_gives_the_two_commands_and_ci_calls_the_same_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
