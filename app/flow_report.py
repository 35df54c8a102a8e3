"""Checks on flows and catalogs beyond their structure: SMS cost, GSM-7, translations.

``flask --app app flows check`` prints this report; the flow editor shows the same checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from app.engine.definition import KNOWN_VARIABLES, Library, Problem
from app.engine.nodes import Choice
from app.engine.runtime import Reply, render
from app.engine.sms import non_gsm7_characters, sms_cost
from app.engine.text import placeholders
from app.i18n import SOURCE_LOCALE, Catalogs, Coverage, format_day

MAX_SEGMENTS = 2

# Realistic, longish values so segment counts are not flattered by short names.
SAMPLE_VARIABLES: dict[str, dict[str, str]] = {
    "en": {
        "first_name": "Alexandra",
        "role_title": "Independent Reviewing Officer",
        "role_short": "IRO",
        "reply_time": "two working days",
        "iro_name": "Priya Shah",
        "iro_contact": "07700 900101",
        "service_name": "Demo Council",
        "out_of_hours": "01632 960999",
        "advocacy_contact": "01632 960500",
        "count": "3",
    },
    "cy": {
        "role_title": "Swyddog Adolygu Annibynnol",
        "role_short": "SAA",
        "reply_time": "dau ddiwrnod gwaith",
    },
}


@dataclass(frozen=True)
class SegmentRow:
    """What one outgoing message costs as SMS in one locale."""

    source: str
    context: str
    locale: str
    encoding: str
    segments: int
    translated: bool


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    rows: list[SegmentRow] = field(default_factory=list)
    coverage: list[Coverage] = field(default_factory=list)


def sample_variables(locale: str) -> dict[str, str]:
    values = {**SAMPLE_VARIABLES["en"], **SAMPLE_VARIABLES.get(locale, {})}
    values["next_review"] = format_day(date(2027, 9, 15), locale)
    return values


def outgoing(library: Library) -> list[tuple[str, int, Reply]]:
    """Every message the service can send, as the child receives it (choices with their options)."""
    found: list[tuple[str, int, Reply]] = []
    messages = library.messages
    for key, text in messages.texts.items():
        if not key.startswith("keywords_"):
            found.append((messages.source, messages.lines[key], Reply(messages.context(key), text)))
    for flow in library.flows.values():
        for node in flow.nodes.values():
            if not node.text:
                continue
            options = (
                tuple((node.context, c["label"]) for c in node.choices) if isinstance(node, Choice) else ()
            )
            found.append((flow.source, node.line_of("text"), Reply(node.context, node.text, (), options)))
    return found


def check(library: Library, catalogs: Catalogs) -> Report:
    """Segment costs in every locale, GSM-7 English, and translation problems."""
    report = Report()
    all_refs = library.all_messages()
    for source, line, reply in outgoing(library):
        for locale in catalogs.locales:
            translate = catalogs.translator(locale)
            translated = (
                locale == SOURCE_LOCALE or catalogs.lookup(locale, reply.context, reply.msgid) is not None
            )
            text = render(reply, translate, sample_variables(locale))
            cost = sms_cost(text)
            report.rows.append(
                SegmentRow(source, reply.context, locale, cost.encoding, cost.segments, translated)
            )
            if locale != SOURCE_LOCALE:
                continue
            odd = non_gsm7_characters(text)
            if odd:
                report.problems.append(
                    Problem(
                        source,
                        line,
                        f"{reply.context}: English text uses characters outside GSM-7 "
                        f"({' '.join(map(repr, odd))}), which makes every SMS cost more",
                    )
                )
            if cost.segments > MAX_SEGMENTS:
                report.problems.append(
                    Problem(
                        source,
                        line,
                        f"{reply.context}: English text needs {cost.segments} SMS segments; "
                        f"keep it to {MAX_SEGMENTS}",
                    )
                )
    for locale in catalogs.locales:
        if locale == SOURCE_LOCALE:
            continue
        for _, ref in all_refs:
            translation = catalogs.lookup(locale, ref.context, ref.text)
            if translation is None:
                continue
            unknown = [n for n in placeholders(translation) if n not in KNOWN_VARIABLES]
            if unknown:
                report.problems.append(
                    Problem(
                        f"locales/{locale}/LC_MESSAGES/messages.po",
                        1,
                        f"{ref.context}: the {locale} translation uses unknown variables {unknown}",
                    )
                )
            if ref.is_keywords and any(k.strip().isdigit() for k in translation.split(",")):
                report.problems.append(
                    Problem(
                        f"locales/{locale}/LC_MESSAGES/messages.po",
                        1,
                        f"{ref.context}: a keyword cannot be a number (numbers pick choices)",
                    )
                )
    refs = [(ref.context, ref.text) for _, ref in all_refs]
    report.coverage = [catalogs.coverage(locale, refs) for locale in catalogs.locales]
    return report
