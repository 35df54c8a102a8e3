"""Flow definitions: broken flows are rejected with a message naming the file, node and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engine import FlowDefinitionError, load_library, parse_flow

from .helpers import FLOWS

GOOD = """\
id: t
title: Test
start: menu
nodes:
  menu:
    kind: choice
    text: "Pick one"
    choices:
      - label: "One"
        goto: one
  one:
    kind: end
    text: "Done."
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(FlowDefinitionError) as caught:
        parse_flow(text, "flows/t.yaml")
    return [str(p) for p in caught.value.problems]


def test_a_valid_flow_loads() -> None:
    flow = parse_flow(GOOD, "flows/t.yaml")
    assert list(flow.nodes) == ["menu", "one"]
    assert len(flow.version) == 12


def test_a_choice_leading_nowhere_names_file_node_and_line() -> None:
    found = problems_of(GOOD.replace("goto: one", "goto: nowhere"))
    assert "flows/t.yaml:10: node 'menu': leads to 'nowhere', which is not a step in this flow" in found


def test_a_step_no_one_can_reach_is_reported() -> None:
    found = problems_of(GOOD + "  orphan:\n    kind: end\n")
    assert "flows/t.yaml:14: node 'orphan': no step leads here, so no one can reach it" in found


def test_an_unknown_variable_is_reported_with_its_line() -> None:
    found = problems_of(GOOD.replace('"Done."', '"Bye {nickname}."'))
    assert "flows/t.yaml:13: node 'one': '{nickname}' is not a variable this service knows" in found


def test_an_unknown_node_kind_is_reported() -> None:
    found = problems_of(GOOD.replace("kind: end", "kind: teleport"))
    assert any(p.startswith("flows/t.yaml:12:") and "'teleport' is not one of" in p for p in found)


def test_a_missing_field_names_the_node() -> None:
    found = problems_of(GOOD.replace('    text: "Pick one"\n', ""))
    assert any(
        p.startswith("flows/t.yaml:5: node 'menu':") and "'text' is a required property" in p for p in found
    )


def test_broken_yaml_gives_its_line() -> None:
    found = problems_of(GOOD.replace('text: "Done."', 'text: "Done.'))
    assert len(found) == 1 and found[0].startswith("flows/t.yaml:") and "not valid YAML" in found[0]


def test_a_missing_start_step_is_reported() -> None:
    found = problems_of(GOOD.replace("start: menu", "start: begin"))
    assert "flows/t.yaml:3: the flow starts at 'begin', which does not exist" in found


def test_yes_and_no_stay_words_not_booleans() -> None:
    flow = parse_flow(
        "id: t\ntitle: T\nstart: q\nnodes:\n  q: {kind: confirm, text: 'Sure?', yes: a, no: b}\n"
        "  a: {kind: end}\n  b: {kind: end}\n",
        "flows/t.yaml",
    )
    assert [t for t, _ in flow.nodes["q"].targets()] == ["a", "b"]


def test_the_shipped_flows_are_valid() -> None:
    library = load_library(FLOWS)
    assert {"main_menu", "who_is_my_iro", "about", "language"} <= set(library.flows)


def test_a_library_with_a_link_to_a_missing_flow_is_rejected(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    for path in FLOWS.glob("*.yaml"):
        (flows / path.name).write_text(path.read_text())
    menu = flows / "main_menu.yaml"
    menu.write_text(menu.read_text().replace("goto: flow:about", "goto: flow:abuot"))
    with pytest.raises(FlowDefinitionError) as caught:
        load_library(flows)
    assert any(
        str(p).startswith("flows/main_menu.yaml:") and "node 'menu': leads to the flow 'abuot'" in str(p)
        for p in caught.value.problems
    )
