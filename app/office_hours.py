"""Office hours: whether staff are at work now, and when they next will be (UK working days)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from app.review_schedule import bank_holidays

LOCAL = ZoneInfo("Europe/London")


class OfficeHours(Protocol):
    """What office hours are worked out from: an ``Authority``, or the plain copy of its settings
    that handling a message reads (``app.conversations.AuthoritySettings``)."""

    nation: str
    office_days: Sequence[int] | None
    office_opens_at: str
    office_closes_at: str


def _hours(authority: OfficeHours) -> tuple[time, time]:
    return time.fromisoformat(authority.office_opens_at), time.fromisoformat(authority.office_closes_at)


def is_working_day(authority: OfficeHours, day: date) -> bool:
    """A day the office is open: one of its office days and not a bank holiday in its nation."""
    return day.weekday() in (authority.office_days or []) and day not in bank_holidays(
        authority.nation, day.year
    )


def local_now(now_utc: datetime) -> datetime:
    """A naive UTC time (as stored) as UK local time."""
    return now_utc.replace(tzinfo=ZoneInfo("UTC")).astimezone(LOCAL)


def next_opening(authority: OfficeHours, now_utc: datetime) -> datetime | None:
    """None if the office is open now; otherwise when it next opens (UK local time)."""
    now = local_now(now_utc)
    opens, closes = _hours(authority)
    if is_working_day(authority, now.date()) and opens <= now.time() < closes:
        return None
    day = now.date() if now.time() < opens else now.date() + timedelta(days=1)
    for _ in range(30):
        if is_working_day(authority, day):
            return datetime.combine(day, opens, tzinfo=LOCAL)
        day += timedelta(days=1)
    return None
