"""The statutory review timetable, with real dates around Christmas and Easter 2026 and 2027.

Each expected date was counted by hand on a calendar; the bank holidays are the UK's own for each
nation (England and Wales share theirs; Scotland and Northern Ireland differ).
"""

from __future__ import annotations

from datetime import date

import pytest

from app.review_schedule import (
    add_months,
    add_working_days,
    bank_holidays,
    date_notes,
    early_review_problem,
    is_working_day,
    propose_next,
    timetable,
)

NATIONS = ("england", "wales", "scotland", "northern_ireland")


@pytest.mark.parametrize(
    ("nation", "expected"),
    [
        # Fri 4 Dec 2026: Christmas Day, Boxing Day (observed Mon 28) and New Year's Day are skipped.
        ("england", date(2027, 1, 6)),
        ("wales", date(2027, 1, 6)),
        ("northern_ireland", date(2027, 1, 6)),
        # Scotland also stops on Mon 4 Jan 2027 (2 January's holiday, observed).
        ("scotland", date(2027, 1, 7)),
    ],
)
def test_the_first_review_over_christmas_skips_the_bank_holidays_of_the_nation(
    nation: str, expected: date
) -> None:
    proposal = propose_next(date(2026, 12, 4), [], nation, today=date(2026, 12, 4))
    assert proposal is not None
    assert proposal.kind == "first"
    assert proposal.due_by == expected == proposal.proposed
    assert not proposal.overdue


@pytest.mark.parametrize(
    ("nation", "expected"),
    [
        # Mon 16 Mar 2026: Good Friday 3 Apr and Easter Monday 6 Apr are skipped.
        ("england", date(2026, 4, 15)),
        ("wales", date(2026, 4, 15)),
        # Easter Monday is not a bank holiday in Scotland.
        ("scotland", date(2026, 4, 14)),
        # St Patrick's Day (Tue 17 Mar) is one more day off in Northern Ireland.
        ("northern_ireland", date(2026, 4, 16)),
    ],
)
def test_the_first_review_over_easter_2026_counts_20_working_days(nation: str, expected: date) -> None:
    proposal = propose_next(date(2026, 3, 16), [], nation, today=date(2026, 3, 16))
    assert proposal is not None and proposal.due_by == expected


def test_the_first_review_over_easter_2027_counts_20_working_days() -> None:
    # Fri 12 Mar 2027: Good Friday 26 Mar and Easter Monday 29 Mar 2027.
    dates = {n: add_working_days(date(2027, 3, 12), 20, n) for n in NATIONS}
    assert dates == {
        "england": date(2027, 4, 13),
        "wales": date(2027, 4, 13),
        "scotland": date(2027, 4, 12),
        "northern_ireland": date(2027, 4, 14),
    }


def test_wales_and_england_have_the_same_working_days_in_2026_and_2027() -> None:
    for year in (2026, 2027):
        assert bank_holidays("wales", year) == bank_holidays("england", year)
        assert bank_holidays("scotland", year) != bank_holidays("england", year)
    assert not is_working_day(date(2026, 4, 6), "wales")  # Easter Monday
    assert is_working_day(date(2026, 4, 6), "scotland")
    assert not is_working_day(date(2026, 11, 30), "scotland")  # St Andrew's Day
    assert is_working_day(date(2026, 11, 30), "wales")


def test_the_second_review_is_within_three_months_of_the_first_and_never_on_a_weekend() -> None:
    # 30 Nov 2026 + 3 months is Sun 28 Feb 2027 (February is short): the Friday before.
    proposal = propose_next(date(2026, 11, 1), [date(2026, 11, 30)], "england", today=date(2026, 12, 1))
    assert proposal is not None
    assert proposal.kind == "second"
    assert proposal.due_by == date(2027, 2, 26)
    assert "three months after the first review on 30 November 2026" in proposal.basis


def test_a_record_that_starts_with_a_six_monthly_review_is_followed_by_another_in_six_months() -> None:
    # A child added with only their latest (regular) review on record: no "second" review is due.
    proposal = propose_next(date(2024, 1, 8), [date(2026, 6, 26)], "england", date(2026, 7, 1), "regular")
    assert proposal is not None
    # 26 Dec 2026 is a Saturday (Boxing Day), 25 Dec Christmas Day: Thursday 24 December.
    assert (proposal.kind, proposal.due_by) == ("regular", date(2026, 12, 24))
    first = propose_next(date(2024, 1, 8), [date(2026, 6, 26)], "england", date(2026, 7, 1), "first")
    assert first is not None and (first.kind, first.due_by) == ("second", date(2026, 9, 25))


def test_later_reviews_are_within_six_months_of_the_last_and_step_back_over_easter() -> None:
    held = [date(2025, 4, 1), date(2025, 6, 30), date(2025, 10, 6)]
    # 6 Apr 2026 is Easter Monday and 3 Apr Good Friday: Thursday 2 April in England and Wales.
    for nation in ("england", "wales", "northern_ireland"):
        proposal = propose_next(date(2025, 3, 1), held, nation, today=date(2025, 10, 7))
        assert proposal is not None
        assert (proposal.kind, proposal.due_by) == ("regular", date(2026, 4, 2))
    # Easter Monday is a working day in Scotland.
    scottish = propose_next(date(2025, 3, 1), held, "scotland", today=date(2025, 10, 7))
    assert scottish is not None and scottish.due_by == date(2026, 4, 6)


def test_six_months_landing_on_the_christmas_holidays_steps_back_before_christmas() -> None:
    # 28 Jun 2026 + 6 months is Mon 28 Dec 2026 (Boxing Day observed): Thursday 24 December.
    proposal = propose_next(None, [date(2026, 1, 5), date(2026, 6, 28)], "england", today=date(2026, 7, 1))
    assert proposal is not None and proposal.due_by == date(2026, 12, 24)


def test_an_early_review_restarts_the_six_months_from_when_it_was_held() -> None:
    held = [date(2026, 1, 5), date(2026, 4, 1), date(2026, 5, 12)]  # the last was an early review
    proposal = propose_next(None, held, "england", today=date(2026, 5, 13))
    assert proposal is not None and proposal.due_by == date(2026, 11, 12)


def test_an_overdue_review_is_proposed_for_the_next_working_day_and_says_so() -> None:
    proposal = propose_next(date(2026, 1, 1), [], "england", today=date(2026, 4, 4))  # Easter Saturday
    assert proposal is not None
    assert proposal.due_by == date(2026, 1, 29)
    assert proposal.proposed == date(2026, 4, 7)  # not Easter Monday
    assert proposal.overdue


def test_nothing_is_proposed_without_a_date_looked_after_or_a_review() -> None:
    assert propose_next(None, [], "england", today=date(2026, 1, 1)) is None


def test_the_timetable_runs_first_second_then_every_six_months() -> None:
    plan = timetable(date(2026, 3, 16), [], "england", today=date(2026, 3, 16), count=4)
    assert [(p.kind, p.due_by) for p in plan] == [
        ("first", date(2026, 4, 15)),
        ("second", date(2026, 7, 15)),
        ("regular", date(2027, 1, 15)),
        ("regular", date(2027, 7, 15)),
    ]


def test_months_are_added_on_the_calendar() -> None:
    assert add_months(date(2026, 8, 31), 6) == date(2027, 2, 28)
    assert add_months(date(2027, 8, 31), 6) == date(2028, 2, 29)
    assert add_months(date(2026, 11, 15), 3) == date(2027, 2, 15)


def test_an_early_review_must_be_sooner_than_the_next_review_and_not_in_the_past() -> None:
    today = date(2026, 3, 20)
    proposal = propose_next(date(2026, 3, 16), [], "england", today=today)  # due by 15 April
    assert early_review_problem(date(2026, 3, 25), today, proposal, None) is None
    assert "past" in (early_review_problem(date(2026, 3, 19), today, proposal, None) or "")
    assert "sooner" in (early_review_problem(date(2026, 4, 15), today, proposal, None) or "")
    # Sooner than the review already booked, when there is one.
    assert early_review_problem(date(2026, 4, 1), today, proposal, booked=date(2026, 4, 2)) is None
    assert "booked for 2 April 2026" in (
        early_review_problem(date(2026, 4, 2), today, proposal, date(2026, 4, 2)) or ""
    )
    # Nothing booked and the timetable's date has passed: the next review is what is needed.
    late = propose_next(date(2026, 1, 1), [], "england", today=today)
    assert "overdue" in (early_review_problem(date(2026, 3, 25), today, late, None) or "")
    assert early_review_problem(date(2026, 12, 1), today, None, None) is None


def test_a_date_on_a_bank_holiday_or_after_the_limit_is_flagged_for_staff() -> None:
    proposal = propose_next(date(2026, 3, 16), [], "england", today=date(2026, 3, 16))
    assert date_notes(date(2026, 4, 14), "england", proposal) == []
    assert date_notes(date(2026, 4, 6), "england", proposal) == ["Monday 6 April 2026 is not a working day."]
    assert "later than the timetable allows" in " ".join(date_notes(date(2026, 4, 16), "england", proposal))
