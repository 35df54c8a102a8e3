"""Building small libraries and running inputs through the engine, with a fixed clock."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from app.engine import Context, Inbound, Library, Step, advance, parse_flow, render
from app.engine.definition import parse_messages
from app.engine.runtime import ActionView, new_state

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ROOT / "flows"
FIXED_NOW = datetime(2026, 11, 23, 10, 30)
VARIABLES = {
    "first_name": "Sam",
    "role_title": "Independent Reviewing Officer",
    "role_short": "IRO",
    "iro_name": "Priya Shah",
    "iro_contact": "07700 900101",
    "reply_time": "two working days",
    "service_name": "Demo Council",
    "out_of_hours": "01632 960999",
    "next_review": None,
}


def system_messages() -> Any:
    return parse_messages((FLOWS / "messages.yaml").read_text(), "flows/messages.yaml")


def library_from(*flows: dict[str, Any], entry: str | None = None) -> Library:
    """A library of the given flow dicts, plus the real language flow and system messages."""
    parsed = {}
    for data in flows:
        flow = parse_flow(yaml.safe_dump(data, sort_keys=False), f"{data['id']}.yaml")
        parsed[flow.id] = flow
    language = parse_flow((FLOWS / "language.yaml").read_text(), "flows/language.yaml")
    parsed.setdefault("language", language)
    first = next(iter(parsed))
    return Library(flows=parsed, messages=system_messages(), entry=entry or first)


def context(
    variables: dict[str, str | None] | None = None,
    translate: Callable[[str, str], str] | None = None,
    locale: str = "en",
    actions: list[dict[str, Any]] | None = None,
) -> Context:
    values = {**VARIABLES, **(variables or {})}
    views = tuple(ActionView(**a) for a in actions or [])
    if translate is None:
        return Context(now=FIXED_NOW, locale=locale, variables=values, actions=views)
    return Context(now=FIXED_NOW, locale=locale, variables=values, translate=translate, actions=views)


class Chat:
    """A conversation with the engine alone: send lines, read rendered replies."""

    def __init__(self, library: Library, ctx: Context | None = None, state: dict | None = None):
        self.library = library
        self.ctx = ctx or context()
        self.state = state or new_state()
        self.steps: list[Step] = []

    def send(self, text: str = "", timeout: bool = False) -> list[str]:
        step = advance(self.library, self.state, Inbound(text=text, timeout=timeout), self.ctx)
        self.state = step.state
        self.steps.append(step)
        return [render(r, self.ctx.translate, self.ctx.variables) for r in step.replies]

    def run(self, lines: Iterable[str]) -> list[list[str]]:
        return [self.send(line) for line in lines]

    @property
    def last(self) -> Step:
        return self.steps[-1]
