"""Each registered node kind, through its own case file in tests/engine/cases/<kind>.yaml.

The registry is the checklist: a kind with no case file (or an empty one) fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engine.definition import read_yaml
from app.engine.nodes import REGISTRY

from .helpers import Chat, context, library_from

CASES_DIR = Path(__file__).parent / "cases"


def _cases() -> list[tuple[str, dict, dict]]:
    found = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        data = read_yaml(path.read_text())
        for case in data["cases"]:
            found.append(pytest.param(path.stem, data, case, id=f"{path.stem}: {case['name']}"))
    return found


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_registered_kind_has_its_own_cases(kind: str) -> None:
    path = CASES_DIR / f"{kind}.yaml"
    assert path.exists(), f"node kind {kind!r} has no case file {path.name}"
    assert read_yaml(path.read_text())["cases"], f"{path.name} has no cases"


def test_every_case_file_names_a_registered_kind() -> None:
    for path in CASES_DIR.glob("*.yaml"):
        assert path.stem in REGISTRY, f"{path.name} does not match any registered node kind"


@pytest.mark.parametrize(("kind", "data", "case"), _cases())
def test_node_kind_case(kind: str, data: dict, case: dict) -> None:
    flows = [data["flow"]] + [data[k] for k in data if k not in {"flow", "cases"}]
    kinds_used = {node["kind"] for node in data["flow"]["nodes"].values()}
    assert kind in kinds_used, f"the {kind} cases must use a {kind} node"
    chat = Chat(library_from(*flows), context(case.get("variables"), actions=case.get("actions")))
    replies = chat.run(case["inputs"])
    if "replies" in case:
        assert replies == case["replies"]
    if "answers" in case:
        assert chat.state["answers"] == case["answers"]
    if "path" in case:
        assert list(chat.last.path) == case["path"]
    if "waiting_at" in case:
        assert chat.state["node"] == case["waiting_at"]
    if "effects" in case:
        assert [e.as_dict() for e in chat.last.effects] == case["effects"]
