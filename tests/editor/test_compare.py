"""Comparing two versions of a flow: each change in one plain sentence, in a stable order."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from app.editor.compare import describe_changes
from app.engine.definition import read_yaml

FLOWS = Path(__file__).resolve().parents[2] / "flows"


def wishes() -> dict[str, Any]:
    return read_yaml((FLOWS / "wishes.yaml").read_text())


def flow(**nodes: dict[str, Any]) -> dict[str, Any]:
    return {"id": "demo", "title": "Demo", "start": next(iter(nodes)), "nodes": nodes}


OVERALL = {
    "kind": "choice",
    "text": "How are things?",
    "save": "wishes.overall",
    "skip": "home",
    "choices": [
        {"label": "Good", "goto": "home", "value": "good"},
        {"label": "OK", "goto": "home"},
        {"label": "Bad", "goto": "home", "keywords": "rubbish"},
    ],
}


def changed(**fields: Any) -> list[str]:
    """The sentences for a copy of OVERALL with some fields replaced (None removes one)."""
    new = copy.deepcopy(OVERALL)
    for name, value in fields.items():
        if value is None:
            new.pop(name)
        else:
            new[name] = value
    return describe_changes(flow(overall=OVERALL), flow(overall=new))


def with_choices(edit: Any) -> list[str]:
    new = copy.deepcopy(OVERALL)
    edit(new["choices"])
    return describe_changes(flow(overall=OVERALL), flow(overall=new))


def test_identical_flows_have_no_changes() -> None:
    assert describe_changes(wishes(), wishes()) == []


def test_a_real_flow_with_one_question_reworded_gives_exactly_one_line() -> None:
    new = wishes()
    new["nodes"]["family"]["text"] = "How are things with your family?"
    assert describe_changes(wishes(), new) == [
        'Step "family": the text changed from "How are things with your family? Do you see them as much as '
        'you want to?" to "How are things with your family?"'
    ]


def test_a_text_change_is_quoted_in_full_on_one_line() -> None:
    assert changed(text="How are things\ngoing   for you?") == [
        'Step "overall": the text changed from "How are things?" to "How are things going for you?"'
    ]


def test_a_choice_leading_somewhere_else_names_its_number_and_label() -> None:
    assert with_choices(lambda c: c[1].update(goto="family")) == [
        'Step "overall": choice 2 "OK" now leads to "family" (was "home")'
    ]


def test_a_choice_added_or_removed() -> None:
    assert with_choices(lambda c: c.append({"label": "Great", "goto": "home"})) == [
        'Step "overall": choice "Great" added, leading to "home"'
    ]
    assert with_choices(lambda c: c.pop(2)) == ['Step "overall": choice "Bad" removed']


def test_a_choice_reworded_is_one_change_not_a_removal_and_an_addition() -> None:
    assert with_choices(lambda c: c[2].update(label="Not good")) == [
        'Step "overall": choice 3 now says "Not good" (was "Bad")'
    ]


def test_what_a_choice_saves_its_keywords_and_its_language() -> None:
    def edit(choices: list[dict[str, Any]]) -> None:
        choices[0]["value"] = "great"
        choices[1]["value"] = "ok"
        choices[2]["keywords"] = "rubbish, awful"
        choices[1]["set_locale"] = "cy"

    assert with_choices(edit) == [
        'Step "overall": choice 1 "Good" now saves "great" (was "good")',
        'Step "overall": choice 2 "OK" now saves "ok" (was its label)',
        'Step "overall": choice 2 "OK" now changes the language to "cy"',
        'Step "overall": choice 3 "Bad": keywords changed from "rubbish" to "rubbish, awful"',
    ]


def test_choices_put_in_another_order() -> None:
    assert with_choices(lambda c: c.reverse()) == ['Step "overall": the choices are in a different order']


def test_where_the_answer_is_saved() -> None:
    assert changed(save="wishes.mood") == [
        'Step "overall": the answer is now saved as "wishes.mood" (was "wishes.overall")'
    ]
    assert changed(save=None) == [
        'Step "overall": the answer is no longer saved (was saved as "wishes.overall")'
    ]


def test_skip_changes() -> None:
    assert changed(skip="family") == ['Step "overall": SKIP now leads to "family" (was "home")']
    assert changed(skip=None) == ['Step "overall": can no longer be skipped (SKIP led to "home")']
    old = flow(x={"kind": "ask", "text": "Hi?", "save": "a.b", "next": "y"})
    new = copy.deepcopy(old)
    new["nodes"]["x"]["skip"] = "z"
    assert describe_changes(old, new) == ['Step "x": can now be skipped: SKIP leads to "z"']


def test_a_step_that_leads_somewhere_else() -> None:
    old = flow(x={"kind": "say", "text": "Hi", "next": "z"}, y={"kind": "end"}, z={"kind": "end"})
    new = copy.deepcopy(old)
    new["nodes"]["x"]["next"] = "y"
    assert describe_changes(old, new) == ['Step "x": now leads to "y" (was "z")']


def test_yes_no_and_branch_cases() -> None:
    old = flow(
        a={"kind": "confirm", "text": "OK?", "yes": "b", "no": "c"},
        b={"kind": "branch", "cases": [{"if_set": "next_review", "goto": "c"}], "otherwise": "c"},
        c={"kind": "end"},
    )
    new = copy.deepcopy(old)
    new["nodes"]["a"]["no"] = "b"
    new["nodes"]["b"]["cases"][0] = {"if_answered": "wishes.overall", "goto": "a"}
    new["nodes"]["b"]["otherwise"] = "a"
    assert describe_changes(old, new) == [
        'Step "a": "no" now leads to "b" (was "c")',
        'Step "b": case 1 now checks whether wishes.overall is answered (was whether next_review is set)',
        'Step "b": case 1 (if wishes.overall is answered) now leads to "a" (was "c")',
        'Step "b": otherwise it now leads to "a" (was "c")',
    ]


def test_steps_added_and_removed_come_in_file_order_then_removed() -> None:
    old = wishes()
    new = wishes()
    del new["nodes"]["kept"]
    new["nodes"]["hobbies"] = {"kind": "ask", "text": "What do you like doing?", "save": "wishes.hobbies"}
    new["nodes"]["bye"] = {"kind": "end"}
    assert describe_changes(old, new) == [
        'Step "hobbies" added (a question: "What do you like doing?")',
        'Step "bye" added (an ending)',
        'Step "kept" removed',
    ]


def test_a_step_that_changes_kind() -> None:
    old = flow(x={"kind": "say", "text": "Hi", "next": "y"})
    new = flow(x={"kind": "jump", "goto": "y"})
    assert describe_changes(old, new) == [
        'Step "x": it is now a jump (was a message)',
        'Step "x": the text "Hi" was removed',
    ]
    new["nodes"]["x"]["goto"] = "z"
    assert describe_changes(old, new)[-1] == 'Step "x": now leads to "z" (was "y")'


def test_any_other_field_is_named() -> None:
    old = flow(r={"kind": "record", "effect": "concern", "category": "unsafe", "next": "t"})
    new = copy.deepcopy(old)
    new["nodes"]["r"]["category"] = "family"
    new["nodes"]["r"]["route"] = "manager"
    assert describe_changes(old, new) == [
        'Step "r": the category changed from "unsafe" to "family"',
        'Step "r": who it goes to set to "manager"',
    ]


def test_summary_rows() -> None:
    old = wishes()
    new = wishes()
    items = new["nodes"]["summary"]["items"]
    items[0]["label"] = "How things are going"
    items.pop()
    assert describe_changes(old, new) == [
        'Step "summary": the summary row "How things are" is now called "How things are going"',
        'Step "summary": the summary no longer shows "Advocate"',
    ]


def test_title_description_start_and_order_of_steps() -> None:
    old = wishes()
    new = wishes()
    new["title"] = "My views"
    new["description"] = "Before a review."
    new["start"] = "check_review"
    nodes = new["nodes"]
    new["nodes"] = {"sent": nodes.pop("sent"), **nodes}
    lines = describe_changes(old, new)
    assert lines[0] == 'The title changed from "My views for my review" to "My views"'
    assert lines[1].startswith('The description changed from "Wishes and feelings before a review. Every')
    assert lines[1].endswith('says send." to "Before a review."')
    assert lines[2:] == [
        'The flow now starts at "check_review" (was "check_saved")',
        "The steps are in a different order",
    ]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (None, wishes()),
        (wishes(), {"nodes": ["a"]}),
        ({"nodes": {"a": "x"}}, {"nodes": {"a": {"kind": "say"}}}),
        (flow(x={"kind": "choice", "choices": "A, B"}), flow(x={"kind": "choice", "choices": [1, None]})),
        (flow(x={"kind": "branch", "cases": [None]}), flow(x={"kind": "branch", "cases": [{"goto": 3}]})),
        (flow(x={"kind": "summary", "items": [1]}), flow(x={"kind": "summary", "items": [{"key": "a"}]})),
    ],
)
def test_broken_drafts_are_compared_without_failing(old: Any, new: Any) -> None:
    lines = describe_changes(old, new)
    assert lines and all(isinstance(line, str) and "\n" not in line for line in lines)
