"""Child-facing text: GSM-7 English, at most two SMS segments, a complete Welsh catalog that is in
step with the flows, and fuzzy (changed) translations never shown to a child."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gsm0338  # noqa: F401  (registers the codec)
import pytest
from babel.messages.pofile import read_po

from app.engine import load_library
from app.engine.runtime import render
from app.flow_report import outgoing, sample_variables
from app.i18n import Catalogs

from ..engine.helpers import FLOWS, ROOT

LIBRARY = load_library(FLOWS)
CATALOGS = Catalogs(ROOT / "locales")
OUTGOING = outgoing(LIBRARY)


@pytest.mark.parametrize(
    ("source", "line", "reply", "note"), OUTGOING, ids=[r.context for _, _, r, _ in OUTGOING]
)
def test_english_text_encodes_in_gsm7_and_fits_two_segments(source: str, line: int, reply, note: str) -> None:
    text = render(reply, lambda c, m: m, sample_variables("en"))
    try:
        encoded = text.encode("gsm03.38")
    except UnicodeEncodeError as error:
        pytest.fail(f"{source}:{line} {reply.context} is not GSM-7: {error}")
    assert len(encoded) <= 306, f"{source}:{line} {reply.context} needs more than two SMS segments"


def test_every_message_has_a_reviewed_welsh_translation() -> None:
    refs = [(ref.context, ref.text) for _, ref in LIBRARY.all_messages()]
    coverage = CATALOGS.coverage("cy", refs)
    missing = [ctx for ctx, msgid in refs if CATALOGS.lookup("cy", ctx, msgid) is None]
    assert coverage.percent == 100.0, f"no reviewed Welsh for: {missing}"


def test_the_catalog_template_is_in_step_with_the_flows(tmp_path: Path) -> None:
    pot = tmp_path / "messages.pot"
    pybabel = Path(sys.executable).parent / "pybabel"
    subprocess.run(
        [str(pybabel), "extract", "-F", "babel.cfg", "--no-wrap", "-o", str(pot), "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as fresh_file, (ROOT / "locales" / "messages.pot").open("rb") as committed_file:
        fresh, committed = read_po(fresh_file), read_po(committed_file)
    fresh_ids = {(m.context, m.id) for m in fresh if m.id}
    assert ("who_is_my_iro.name", "Your {role_title} ({role_short}) is {iro_name}.") in fresh_ids
    located = {m.context: m.locations for m in fresh if m.id}
    assert located["who_is_my_iro.name"][0][0] == "flows/who_is_my_iro.yaml"
    assert fresh_ids == {(m.context, m.id) for m in committed if m.id}, "run `make translations`"


def test_a_fuzzy_translation_is_never_shown_to_a_child(tmp_path: Path) -> None:
    po = tmp_path / "cy" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgctxt "t.a"\nmsgid "Hello"\nmsgstr "Helo"\n\n'
        '#, fuzzy\nmsgctxt "t.b"\nmsgid "Goodbye now"\nmsgstr "Hwyl fawr"\n'
    )
    catalogs = Catalogs(tmp_path)
    translate = catalogs.translator("cy")
    assert translate("t.a", "Hello") == "Helo"
    assert translate("t.b", "Goodbye now") == "Goodbye now"
    assert translate("t.other", "Hello") == "Hello"  # the context matters
    coverage = catalogs.coverage("cy", [("t.a", "Hello"), ("t.b", "Goodbye now"), ("t.c", "New")])
    assert (coverage.translated, coverage.fuzzy, coverage.missing) == (1, 1, 1)


def test_english_reads_at_age_nine_or_says_why_not() -> None:
    from app.flow_report import MAX_READING_GRADE, reading_grade

    for source, line, reply, note in OUTGOING:
        grade = reading_grade(reply, sample_variables("en"))
        assert grade <= MAX_READING_GRADE or note, f"{source}:{line} {reply.context} reads at grade {grade}"


def test_the_reading_score_tells_hard_text_from_easy_text() -> None:
    from app.engine.runtime import Reply
    from app.flow_report import MAX_READING_GRADE, reading_grade

    easy = Reply("t", "You can say no. That is OK.")
    hard = Reply(
        "t", "Notwithstanding statutory obligations, your representations necessitate consideration."
    )
    assert reading_grade(easy, {}) <= MAX_READING_GRADE < reading_grade(hard, {})
