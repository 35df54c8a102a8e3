"""The labelled messages in tests/data: every risk must be caught, and false alarms are counted."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from app.engine.triage import CATEGORIES, Evaluation, evaluate, load_phrasebook, parse_phrasebook

ROOT = Path(__file__).resolve().parents[2]
UTTERANCES = ROOT / "tests" / "data" / "safeguarding_utterances.csv"
BOOK = load_phrasebook(ROOT / "flows" / "safeguarding", root=ROOT)
# A ceiling, not a target: false alarms should stay rare, but a risk phrase is never removed to
# meet it. If a needed phrase pushes the rate over, raise the ceiling and say why in the commit.
MAX_FALSE_POSITIVE_RATE = 0.15


def _rows() -> list[dict[str, str]]:
    with UTTERANCES.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


ROWS = _rows()
RISK = [row for row in ROWS if row["urgent"] == "yes"]


def test_the_labelled_set_is_large_and_has_risk_and_everyday_messages() -> None:
    assert list(ROWS[0]) == ["text", "previous", "urgent", "category", "note"]
    assert len(ROWS) >= 150
    assert len(RISK) >= 90
    assert len(ROWS) - len(RISK) >= 80
    assert {row["urgent"] for row in ROWS} == {"yes", "no"}
    assert all(not row["category"] for row in ROWS if row["urgent"] == "no")


def test_the_labelled_risks_cover_every_category_welsh_and_split_messages() -> None:
    assert {row["category"] for row in RISK} == set(CATEGORIES)
    assert sum("Welsh" in row["note"] for row in RISK) >= 5
    assert sum(bool(row["previous"]) for row in RISK) >= 5


def test_every_risk_in_the_labelled_set_is_caught() -> None:
    evaluation = evaluate(BOOK, ROWS)
    assert evaluation.total == len(ROWS)
    assert evaluation.risk == len(RISK)
    assert evaluation.recall == 1.0, "missed risks:\n" + "\n".join(evaluation.missed)


def test_each_caught_risk_has_its_labelled_category() -> None:
    evaluation = evaluate(BOOK, ROWS)
    assert evaluation.wrong_category == [], "\n".join(evaluation.wrong_category)


def test_false_alarms_on_the_labelled_set_stay_rare() -> None:
    evaluation = evaluate(BOOK, ROWS)
    print(f"false-positive rate {evaluation.false_positive_rate:.1%}: {evaluation.false_positives}")
    assert evaluation.false_positive_rate <= MAX_FALSE_POSITIVE_RATE, "\n".join(evaluation.false_positives)


# --- evaluate itself -----------------------------------------------------------------------------

SMALL_BOOK = parse_phrasebook({"en.yaml": "phrases:\n  suicide:\n    - want to die\n"})


def test_evaluate_counts_caught_and_missed_risks_and_false_alarms() -> None:
    rows = [
        {"text": "i want to die", "previous": "", "urgent": "yes", "category": "suicide"},
        {"text": "die", "previous": "i want to", "urgent": "yes", "category": "suicide"},
        {"text": "he hit me", "previous": "", "urgent": "yes", "category": "abuse"},
        {"text": "i want to die of boredom", "previous": "", "urgent": "no", "category": ""},
        {"text": "who is my IRO", "previous": "", "urgent": "no", "category": ""},
    ]
    evaluation = evaluate(SMALL_BOOK, rows)
    assert evaluation == Evaluation(
        total=5, risk=3, caught=2, missed=["he hit me"], false_positives=["i want to die of boredom"]
    )
    assert evaluation.recall == pytest.approx(2 / 3)
    assert evaluation.false_positive_rate == 0.5


def test_evaluate_names_a_missed_split_message_with_both_parts() -> None:
    rows = [{"text": "hit me", "previous": "he", "urgent": "YES", "category": ""}]
    assert evaluate(SMALL_BOOK, rows).missed == ["he / hit me"]


def test_evaluate_reports_a_risk_found_under_another_category() -> None:
    rows = [{"text": "i want to die", "previous": "", "urgent": "yes", "category": "abuse"}]
    evaluation = evaluate(SMALL_BOOK, rows)
    assert evaluation.recall == 1.0
    assert evaluation.wrong_category == ["i want to die (labelled abuse, found suicide)"]


def test_evaluate_of_nothing_has_full_recall_and_no_false_alarms() -> None:
    evaluation = evaluate(SMALL_BOOK, [])
    assert (evaluation.recall, evaluation.false_positive_rate) == (1.0, 0.0)


def test_evaluate_rejects_a_label_other_than_yes_or_no() -> None:
    with pytest.raises(ValueError, match="row 1: urgent must be yes or no"):
        evaluate(SMALL_BOOK, [{"text": "hello", "urgent": "maybe"}])
