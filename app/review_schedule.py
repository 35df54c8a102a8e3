"""The statutory review timetable: when a looked-after child's next review is due, in UK working days.

The rule (``../shared/DOMAIN.md`` section 1.1, "Statutory and procedural timescales"; not in the
seeds but EXTERNAL there: the Care Planning, Placement and Case Review (England) Regulations 2010,
reg. 33, legislation.gov.uk/uksi/2010/959/part/6/made):

- the **first** review within **20 working days** of the date the child became looked after;
- the **second** not more than **three months** after the first;
- later reviews at intervals of not more than **six months**;
- an **early** review sooner than that whenever needed ("The IRO may direct an early review",
  seed 004; "the IRO so requests", reg. 33(3)(a)).

DOMAIN.md asks that the current version of the Regulations be checked; Wales has its own
Regulations (2015) with, as far as we know, the same timescales, and Scotland and Northern Ireland
have different review rules, so an authority there should have the timetable checked before use.

A working day is Monday to Friday and not a bank holiday in the authority's nation (the
``holidays`` package, subdivisions as in ``app.office_hours``): England and Wales share their bank
holidays; Scotland has 2 January and St Andrew's Day but not Easter Monday; Northern Ireland has
St Patrick's Day and the Battle of the Boyne. A day is counted from the day after the date the
child became looked after (that date is day 0). When a three- or six-month limit falls on a weekend
or bank holiday, the proposal is the working day before it, so a review held on the proposed date
is always within the limit.

Pure date arithmetic: no Flask, no database, no clock (``today`` is passed in).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import holidays

SUBDIVISIONS = {"england": "ENG", "wales": "WLS", "scotland": "SCT", "northern_ireland": "NIR"}
FIRST_REVIEW_WORKING_DAYS = 20
SECOND_REVIEW_MONTHS = 3
LATER_REVIEW_MONTHS = 6
KINDS = ("first", "second", "regular")


@lru_cache(maxsize=64)
def bank_holidays(nation: str, year: int) -> frozenset[date]:
    """The UK bank holidays of one year in a nation ("england", "wales", "scotland", "northern_ireland")."""
    found = holidays.country_holidays("GB", subdiv=SUBDIVISIONS.get(nation, "ENG"), years=year)
    return frozenset(found)


def is_working_day(day: date, nation: str) -> bool:
    """Monday to Friday and not a bank holiday in the nation."""
    return day.weekday() < 5 and day not in bank_holidays(nation, day.year)


def add_working_days(start: date, count: int, nation: str) -> date:
    """The date ``count`` working days after ``start`` (``start`` itself is not counted)."""
    day = start
    while count > 0:
        day += timedelta(days=1)
        if is_working_day(day, nation):
            count -= 1
    return day


def working_day_on_or_before(day: date, nation: str) -> date:
    while not is_working_day(day, nation):
        day -= timedelta(days=1)
    return day


def working_day_on_or_after(day: date, nation: str) -> date:
    while not is_working_day(day, nation):
        day += timedelta(days=1)
    return day


def add_months(day: date, months: int) -> date:
    """The same day ``months`` calendar months later (31 August + 6 months is 28 or 29 February)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Proposal:
    """The next statutory review: the last date the timetable allows, and the date proposed."""

    kind: str  # "first", "second" or "regular" (as ``Review.kind``)
    due_by: date  # the latest date the timetable allows (a working day)
    proposed: date  # ``due_by``, or the next working day from today when ``due_by`` has passed
    basis: str  # for staff: what the date is counted from

    @property
    def overdue(self) -> bool:
        return self.proposed > self.due_by


def _due(
    looked_after_since: date | None, held: list[date], nation: str, last_kind: str | None
) -> tuple[str, date, str] | None:
    if not held:
        if looked_after_since is None:
            return None
        return (
            "first",
            add_working_days(looked_after_since, FIRST_REVIEW_WORKING_DAYS, nation),
            f"{FIRST_REVIEW_WORKING_DAYS} working days after becoming looked after on "
            f"{looked_after_since:%-d %B %Y}",
        )
    last = held[-1]
    if len(held) == 1 and last_kind not in ("second", "regular"):
        limit, kind, what = SECOND_REVIEW_MONTHS, "second", "three months after the first review"
    else:
        limit, kind, what = LATER_REVIEW_MONTHS, "regular", "six months after the last review"
    return kind, working_day_on_or_before(add_months(last, limit), nation), f"{what} on {last:%-d %B %Y}"


def propose_next(
    looked_after_since: date | None,
    held: Iterable[date],
    nation: str,
    today: date,
    last_kind: str | None = None,
) -> Proposal | None:
    """The next review the timetable asks for, given the reviews held so far (None if unknown).

    ``held`` are the dates of the reviews actually held (any kind, early ones too: a review resets
    the interval); ``last_kind`` is the kind of the latest, when known, so a child whose records
    start with a "regular" review is not asked for a second review three months later. Without a
    date looked after and with no review held there is nothing to count from.
    """
    found = _due(looked_after_since, sorted(held), nation, last_kind)
    if found is None:
        return None
    kind, due_by, basis = found
    proposed = due_by if due_by >= today else working_day_on_or_after(today, nation)
    return Proposal(kind, due_by, proposed, basis)


def timetable(
    looked_after_since: date | None,
    held: Iterable[date],
    nation: str,
    today: date,
    count: int = 3,
    last_kind: str | None = None,
) -> list[Proposal]:
    """The next ``count`` statutory reviews, supposing each is held on the date proposed for it."""
    dates = sorted(held)
    found: list[Proposal] = []
    for _ in range(count):
        proposal = propose_next(looked_after_since, dates, nation, today, last_kind)
        if proposal is None:
            break
        found.append(proposal)
        dates.append(proposal.proposed)
        last_kind = proposal.kind
    return found


def early_review_problem(
    day: date, today: date, proposal: Proposal | None, booked: date | None
) -> str | None:
    """Why ``day`` cannot be an early review (None if it can).

    An early review is today or later and sooner than the next review: the one already booked
    (``booked``) or, if none is, the date the timetable asks for.
    """
    if day < today:
        return "An early review cannot be in the past."
    if booked is not None:
        if day >= booked:
            return f"An early review must be sooner than the next review, booked for {booked:%-d %B %Y}."
        return None
    if proposal is not None and proposal.overdue:
        return "The next review is already overdue: schedule it instead."
    if proposal is not None and day >= proposal.due_by:
        return (
            f"An early review must be sooner than the next review the timetable asks for "
            f"(by {proposal.due_by:%-d %B %Y}). Schedule the next review instead."
        )
    return None


def date_notes(day: date, nation: str, proposal: Proposal | None) -> list[str]:
    """Things staff should know about a chosen review date (allowed, but worth a second look)."""
    notes = []
    if not is_working_day(day, nation):
        notes.append(f"{day:%A %-d %B %Y} is not a working day.")
    if proposal is not None and day > proposal.due_by:
        notes.append(
            f"It is later than the timetable allows: the {proposal.kind} review is due by "
            f"{proposal.due_by:%-d %B %Y}."
        )
    return notes
