"""Checks on flows and catalogs beyond their structure: SMS cost, GSM-7, translations.

``flask --app app flows check`` prints this report; the flow editor shows the same checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import textstat

from app.engine.definition import KNOWN_VARIABLES, Flow, Library, Problem
from app.engine.nodes import Choice
from app.engine.runtime import Reply, render
from app.engine.sms import non_gsm7_characters, sms_cost
from app.engine.text import fill, placeholders
from app.i18n import SOURCE_LOCALE, Catalogs, Coverage, format_day

MAX_SEGMENTS = 2
# Flesch-Kincaid grade is a US school grade; grade 4 is about age 9 to 10.
MAX_READING_GRADE = 4.0

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


@dataclass(frozen=True)
class ReadingRow:
    """How hard one English message is to read, and the note if it is allowed to be harder."""

    source: str
    context: str
    grade: float
    note: str


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    reading: list[ReadingRow] = field(default_factory=list)
    rows: list[SegmentRow] = field(default_factory=list)
    coverage: list[Coverage] = field(default_factory=list)


def sample_variables(locale: str) -> dict[str, str]:
    values = {**SAMPLE_VARIABLES["en"], **SAMPLE_VARIABLES.get(locale, {})}
    values["next_review"] = format_day(date(2027, 9, 15), locale)
    return values


def outgoing(library: Library, flows: list[Flow] | None = None) -> list[tuple[str, int, Reply, str]]:
    """Every message the service can send, as the child receives it (choices with their options),
    with the note that explains a reading level above age 9, if any (``flows``: only these)."""
    found: list[tuple[str, int, Reply, str]] = []
    messages = library.messages
    for key, text in messages.texts.items() if flows is None else ():
        if not key.startswith("keywords_"):
            reply = Reply(messages.context(key), text)
            found.append((messages.source, messages.lines[key], reply, messages.notes.get(key, "")))
    for flow in library.flows.values() if flows is None else flows:
        for node in flow.nodes.values():
            if not node.text:
                continue
            options = (
                tuple((node.context, c["label"]) for c in node.choices) if isinstance(node, Choice) else ()
            )
            reply = Reply(node.context, node.text, (), options)
            found.append((flow.source, node.line_of("text"), reply, node.data.get("reading_note", "")))
    return found


def reading_grade(reply: Reply, variables: dict[str, str]) -> float:
    """Flesch-Kincaid grade of a message; each option counts as a sentence of its own."""
    parts = [fill(reply.msgid, variables), *(fill(label, variables) for _, label in reply.options)]
    text = " ".join(p if p.rstrip().endswith((".", "?", "!")) else p.rstrip() + "." for p in parts)
    return float(textstat.flesch_kincaid_grade(text))


def check(library: Library, catalogs: Catalogs, flows: list[Flow] | None = None) -> Report:
    """Segment costs in every locale, GSM-7 English, and translation problems (``flows``: only
    these flows, e.g. a draft, and not the system messages)."""
    report = Report()
    if flows is None:
        all_refs = library.all_messages()
    else:
        all_refs = [(flow.source, m) for flow in flows for m in flow.messages()]
    for source, line, reply, note in outgoing(library, flows):
        grade = reading_grade(reply, sample_variables("en"))
        report.reading.append(ReadingRow(source, reply.context, grade, note))
        if grade > MAX_READING_GRADE and not note:
            report.problems.append(
                Problem(
                    source,
                    line,
                    f"{reply.context}: English reads at US grade {grade:.1f}; keep it to grade "
                    f"{MAX_READING_GRADE:.0f} or lower (about age 9), or write a reading_note saying why",
                )
            )
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
