"""Golden conversations through the shipped flows and catalogs, in English and Welsh, with a fixed
clock. Run ``pytest tests/flows --update-golden`` to rewrite them; reviewers read the diff."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.engine import Context, Inbound, advance, load_library, render
from app.engine.runtime import new_state
from app.i18n import Catalogs, format_day

from ..engine.helpers import FIXED_NOW, FLOWS, ROOT

GOLDEN = Path(__file__).parent / "golden"
LIBRARY = load_library(FLOWS)
CATALOGS = Catalogs(ROOT / "locales")

WORDING = {
    "en": {
        "role_title": "Independent Reviewing Officer",
        "role_short": "IRO",
        "reply_time": "two working days",
    },
    "cy": {
        "role_title": "Swyddog Adolygu Annibynnol",
        "role_short": "SAA",
        "reply_time": "dau ddiwrnod gwaith",
    },
}

SCRIPTS = {
    "en_who_is_my_iro": ("en", {"next_review": True}, ["who is my IRO"]),
    "en_menu_then_about": ("en", {"next_review": True}, ["hi", "6"]),
    "en_wishes_pause_and_send": (
        "en",
        {"next_review": True},
        [
            "my views",
            "1",
            "ok",
            "skip",
            "not sure",
            "later",
            "carry on",
            "fine",
            "later",
            "carry on",
            "good",
            "",
            "football",
            "nothing",
            "my nan",
            "nobody",
            "weekend",
            "my football",
            "football",
            "no",
            "1",
            "no",
            "send",
        ],
    ),
    "en_rights_and_advocate": ("en", {}, ["my rights", "3", "more", "menu", "5", "1"]),
    "en_concern_about_school": ("en", {}, ["worry", "4", "I got excluded today"]),
    "cy_wishes_everything_fine": ("cy", {"next_review": True}, ["2", "4", "na", "1"]),
    "cy_concern_menu": ("cy", {}, ["4", "1"]),
    "en_no_iro_no_review": (
        "en",
        {"iro_name": None, "iro_contact": None, "next_review": None},
        ["hello", "1"],
    ),
    "en_mistakes_help_and_back": (
        "en",
        {"next_review": True},
        ["hi", "9", "HELP", "who is my iro"],
    ),
    "en_switch_to_welsh": ("en", {"next_review": True}, ["hi", "LANGUAGE", "cymraeg"]),
    "cy_who_is_my_iro": ("cy", {"next_review": True}, ["helo", "1"]),
    "cy_typed_in_welsh": ("cy", {"next_review": True}, ["pwy yw fy SAA"]),
    "cy_stop_and_start": ("cy", {"next_review": True}, ["STOP", "START"]),
}


def run_script(locale: str, overrides: dict, lines: list[str]) -> list[dict]:
    variables = {
        "first_name": "Sam",
        "iro_name": "Priya Shah",
        "iro_contact": "07700 900101",
        "service_name": "Demo Council",
        "out_of_hours": "01632 960999",
        **WORDING[locale],
    }
    for key, value in overrides.items():
        variables[key] = (
            format_day(FIXED_NOW.date().replace(month=12, day=15), locale) if value is True else value
        )
    state, exchanges = new_state(), []
    for line in lines:
        ctx = Context(
            now=FIXED_NOW, locale=locale, variables=variables, translate=CATALOGS.translator(locale)
        )
        step = advance(LIBRARY, state, Inbound(text=line), ctx)
        for effect in step.effects:
            if effect.kind == "locale_changed":
                locale = effect.locale
                variables.update(WORDING[locale])
        translate = CATALOGS.translator(locale)
        exchanges.append(
            {
                "send": line,
                "replies": [render(r, translate, variables) for r in step.replies],
                "effects": [e.as_dict() for e in step.effects],
                "path": list(step.path),
            }
        )
        state = step.state
    return exchanges


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_golden_conversation(name: str, request: pytest.FixtureRequest) -> None:
    locale, overrides, lines = SCRIPTS[name]
    actual = run_script(locale, overrides, lines)
    path = GOLDEN / f"{name}.yaml"
    if request.config.getoption("--update-golden"):
        path.write_text(
            yaml.safe_dump(
                {"locale": locale, "exchanges": actual},
                allow_unicode=True,
                sort_keys=False,
                width=100,
            )
        )
    assert path.exists(), f"no golden file {path.name}: run pytest tests/flows --update-golden"
    expected = yaml.safe_load(path.read_text())["exchanges"]
    assert actual == expected
