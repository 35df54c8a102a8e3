"""The runtime beyond single node kinds: commands, BACK, resume, versions, limits, languages."""

from __future__ import annotations

import json

import pytest

from app.engine import FlowRuntimeError, LocaleChanged, OptedIn, OptedOut
from app.engine.runtime import MAX_STEPS

from .helpers import Chat, context, library_from

QUESTIONS = {
    "id": "views",
    "title": "Views",
    "start": "home",
    "nodes": {
        "home": {
            "kind": "ask",
            "text": "How are things at home?",
            "save": "home",
            "next": "school",
        },
        "school": {
            "kind": "choice",
            "text": "How is school?",
            "save": "school",
            "choices": [
                {"label": "Good", "goto": "check"},
                {"label": "Not good", "goto": "check"},
            ],
        },
        "check": {"kind": "confirm", "text": "Send this?", "yes": "sent", "no": "sent"},
        "sent": {"kind": "end", "text": "Sent."},
    },
}


def test_back_returns_to_the_previous_question_and_keeps_earlier_answers() -> None:
    chat = Chat(library_from(QUESTIONS))
    chat.run(["hi", "fine thanks", "1"])
    assert chat.state["node"] == "check"
    assert chat.send("BACK") == ["How is school?\n1 Good\n2 Not good"]
    assert chat.state["node"] == "school"
    assert chat.send("back") == ["How are things at home?"]
    assert chat.state["answers"] == {"home": "fine thanks", "school": "Good"}
    assert chat.send("it is ok") == ["How is school?\n1 Good\n2 Not good"]
    assert chat.state["answers"]["home"] == "it is ok"


def test_back_at_the_first_question_says_so_and_asks_again() -> None:
    chat = Chat(library_from(QUESTIONS))
    chat.send("hi")
    assert chat.send("back") == ["There is nothing to go back to.", "How are things at home?"]
    assert chat.state["node"] == "home"


def test_a_conversation_resumes_from_saved_json_state() -> None:
    library = library_from(QUESTIONS)
    first = Chat(library)
    first.run(["hi", "all good"])
    saved = json.loads(json.dumps(first.state))
    later = Chat(library, state=saved)
    assert later.send("2") == ["Send this?"]
    assert later.state["answers"] == {"home": "all good", "school": "Not good"}


def test_a_timeout_repeats_the_unanswered_question_with_a_note() -> None:
    chat = Chat(library_from(QUESTIONS))
    chat.run(["hi", "ok"])
    assert chat.send(timeout=True) == [
        "You did not finish last time. Here is where you stopped:",
        "How is school?\n1 Good\n2 Not good",
    ]
    assert chat.state["node"] == "school"


def test_help_explains_the_commands_and_repeats_the_question() -> None:
    chat = Chat(library_from(QUESTIONS))
    chat.send("hi")
    replies = chat.send("HELP")
    assert "MENU" in replies[0] and "999" in replies[0] and "01632 960999" in replies[0]
    assert replies[1] == "How are things at home?"
    assert chat.state["node"] == "home"


def test_menu_starts_again_from_the_entry_flow() -> None:
    chat = Chat(library_from(QUESTIONS))
    chat.run(["hi", "fine"])
    assert chat.send("menu") == ["How are things at home?"]
    assert chat.state["history"] == []


def test_stop_opts_out_and_start_opts_back_in() -> None:
    chat = Chat(library_from(QUESTIONS))
    chat.send("hi")
    replies = chat.send("STOP")
    assert chat.last.effects == (OptedOut(),)
    assert "START" in replies[0] and "999" in replies[0]
    assert chat.state["node"] is None
    chat.send("START")
    assert chat.last.effects == (OptedIn(),)


def test_a_command_word_inside_a_sentence_is_an_answer_not_a_command() -> None:
    chat = Chat(library_from(QUESTIONS))
    chat.send("hi")
    chat.send("please stop moving me around")
    assert chat.last.effects == ()
    assert chat.state["answers"]["home"] == "please stop moving me around"


def test_language_switches_and_returns_to_the_question_the_child_was_on() -> None:
    chat = Chat(library_from(QUESTIONS))
    chat.send("hi")
    replies = chat.send("language")
    assert replies == ["Which language would you like? Reply with a number.\n1 English\n2 Cymraeg"]
    replies = chat.send("2")
    assert chat.last.effects == (LocaleChanged(locale="cy"),)
    assert replies[-1] == "How are things at home?"
    assert chat.state["node"] == "home"


def test_back_after_changing_language_goes_to_the_question_before_not_the_language_menu() -> None:
    chat = Chat(library_from(QUESTIONS))
    chat.run(["hi", "fine", "LANGUAGE", "1"])
    assert chat.state["node"] == "school"
    assert chat.send("back") == ["How are things at home?"]


def test_naming_a_language_switches_to_it_at_once() -> None:
    chat = Chat(library_from(QUESTIONS))
    chat.send("Cymraeg")
    assert chat.last.effects == (LocaleChanged(locale="cy"),)


def test_keywords_and_choices_are_understood_in_the_childs_language() -> None:
    welsh = {
        ("system.keywords_back", "back, go back, previous"): "yn ôl, nol",
        ("views.school", "Good"): "Da",
        ("views.school", "Not good"): "Ddim yn dda",
    }
    ctx = context(translate=lambda c, m: welsh.get((c, m), m), locale="cy")
    chat = Chat(library_from(QUESTIONS), ctx)
    chat.run(["hi", "iawn"])
    assert chat.send("ddim yn dda") == ["Send this?"]
    assert chat.state["answers"]["school"] == "Not good"
    chat.send("yn ol")
    assert chat.state["node"] == "school"


def test_a_child_finishes_on_the_flow_version_they_started() -> None:
    old = library_from(QUESTIONS)
    chat = Chat(old)
    chat.run(["hi", "ok"])
    changed = json.loads(json.dumps(QUESTIONS))
    changed["nodes"]["check"]["text"] = "Shall I send it now?"
    new = library_from(changed)
    new.versions.update(old.versions)
    assert new.flows["views"].version != chat.state["version"]
    chat.library = new
    assert chat.send("1") == ["Send this?"]
    fresh = Chat(new)
    fresh.run(["hi", "ok"])
    assert fresh.send("1") == ["Shall I send it now?"]


def test_a_child_waiting_on_a_removed_step_starts_again_cleanly() -> None:
    chat = Chat(library_from(QUESTIONS))
    chat.run(["hi", "ok"])
    chat.state["node"] = "gone"
    chat.state["version"] = "unknown"
    assert chat.send("hello") == ["How are things at home?"]


def test_a_looping_flow_stops_with_a_clear_error() -> None:
    looping = {
        "id": "loop",
        "title": "Loop",
        "start": "a",
        "nodes": {"a": {"kind": "jump", "goto": "b"}, "b": {"kind": "jump", "goto": "a"}},
    }
    chat = Chat(library_from(looping))
    with pytest.raises(FlowRuntimeError, match=f"stopped after {MAX_STEPS} steps.*'loop'"):
        chat.send("hi")


def test_effects_serialise_with_the_contract_kind_names() -> None:
    assert LocaleChanged(locale="cy").as_dict() == {"kind": "locale_changed", "locale": "cy"}
    assert OptedOut().as_dict() == {"kind": "opted_out"}


def test_pausing_from_outside_is_the_same_as_the_child_saying_later() -> None:
    from app.engine.runtime import pause

    library = library_from(QUESTIONS)
    said_later, paused_by_staff = Chat(library), Chat(library)
    for chat in (said_later, paused_by_staff):
        chat.run(["hi", "fine thanks"])
    said_later.send("later")
    paused_by_staff.state = pause(paused_by_staff.state)
    assert paused_by_staff.state == said_later.state
    assert paused_by_staff.state["node"] is None and paused_by_staff.state["paused"][2] == "school"
    assert pause(paused_by_staff.state)["paused"] == paused_by_staff.state["paused"], "idle: kept"
    assert paused_by_staff.send("carry on")[-1] == "How is school?\n1 Good\n2 Not good"
