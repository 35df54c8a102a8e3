"""Review reminders, run by the worker: messages the service sends without being asked.

Two kinds, each recorded once in ``reminder_sent`` under a unique ``(child, kind, key)``:

- **invite**: before each scheduled review (the authority's ``reminder_days``, by default 14 and 7
  days before), a child who has not shared their views for it is invited to. On a day when several
  reminder days have passed (a review created late), only the nearest is sent and the earlier ones
  are recorded as ``skipped``: one text, never two at once. Key ``review-<review id>-<days>``.
- **nudge**: a form paused with LATER more than a day ago gets one nudge per pause (key: the
  pause time). A nudge waits while the child had another reminder in the last 24 hours.

Rules every reminder follows:

- **Quiet hours**: nothing between 21:00 and 08:00 in the child's time zone. That means "not now":
  nothing is recorded, so the reminder goes on the first run after 08:00.
- **Channel**: the child's most recently linked identity that has not opted out. If every identity
  has opted out (STOP), or there is none, the reminder is recorded as ``opted_out`` or
  ``no_channel`` and nothing is sent, then or later, for that key.
- **Discreet**: the texts (``reminder_invite``, ``reminder_nudge`` in ``flows/messages.yaml``) name
  no one and say nothing about care or reviews, and are rendered with no variables at all, since
  someone else may see the phone's screen.

``schedule_reminders`` is set-based: for each authority, time zone and reminder day it reads the
ids of the due reviews (excluding in SQL the reviews with submitted views and the reminders
already recorded), then the reviews a page (``BATCH``) at a time with their children's identities;
no message body or encrypted field is read. Each page is written in set-based INSERTs and
**committed before the next page is read**, so a long run keeps what it has done, holds no lock
for long, and needs about the same memory for 100,000 children as for 1,000 (only the ids grow).
Running it twice at the same moment, or in two workers at once, queues nothing twice: the unique
constraint decides, and a batch that meets a row written by another worker is retried one child at
a time in savepoints, skipping those already done.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import String, cast, exists, insert, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.conversations import library, render_for_child
from app.engine import Reply
from app.models import (
    Authority,
    ChannelIdentity,
    Child,
    ConversationState,
    ReminderSent,
    Review,
    WishesSubmission,
    utcnow,
)
from app.outbound import Outgoing, queue_messages
from app.write_turns import committed_in_turn

log = logging.getLogger(__name__)

INVITE, NUDGE = "invite", "nudge"
MESSAGE_KEYS = {INVITE: "reminder_invite", NUDGE: "reminder_nudge"}
QUIET_FROM, QUIET_UNTIL = time(21, 0), time(8, 0)
DEFAULT_TIME_ZONE = "Europe/London"
NUDGE_AFTER = timedelta(hours=24)
# A nudge waits while the child had another reminder this recently.
NUDGE_GAP = timedelta(hours=24)
BATCH = 500


@dataclass
class ReminderSummary:
    """What one run did."""

    invites: int = 0
    nudges: int = 0
    opted_out: int = 0
    no_channel: int = 0
    skipped: int = 0  # earlier reminder days already passed, recorded so they are never sent
    raced: int = 0  # already recorded by another worker at the same moment
    quiet_zones: list[str] = field(default_factory=list)  # time zones in quiet hours now

    @property
    def queued(self) -> int:
        return self.invites + self.nudges

    def line(self) -> str:
        return (
            f"reminders: queued {self.invites} invite(s) and {self.nudges} nudge(s); "
            f"not sent: {self.opted_out} opted out, {self.no_channel} with no channel"
        )


@dataclass(frozen=True)
class _Identity:
    """How a child can be reached (without the encrypted address: the worker reads that)."""

    id: int
    channel: str
    opted_out: bool


@dataclass
class _Due:
    """One reminder due for one child, the earlier invitations it replaces, and the child's identities."""

    child_id: int
    locale: str
    kind: str
    key: str
    skipped_keys: tuple[str, ...] = ()
    # Newest link first.
    identities: list[_Identity] = field(default_factory=list)


def invite_key(review_id: int, days: int) -> str:
    return f"review-{review_id}-{days}"


def _invite_key_sql(days: int):  # type: ignore[no-untyped-def]
    """``invite_key(Review.id, days)`` as a SQL expression (``||`` on SQLite and PostgreSQL)."""
    return literal("review-", String) + cast(Review.id, String) + literal(f"-{days}", String)


@lru_cache(maxsize=256)
def time_zone(name: str) -> ZoneInfo:
    """The child's time zone; an unknown name falls back to Europe/London (and is logged once)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r; quiet hours use %s", name, DEFAULT_TIME_ZONE)
        return ZoneInfo(DEFAULT_TIME_ZONE)


def local_time(now: datetime, zone_name: str) -> datetime:
    """``now`` (naive UTC, as stored) in a time zone."""
    return now.replace(tzinfo=UTC).astimezone(time_zone(zone_name))


def is_quiet(local: datetime) -> bool:
    """True between 21:00 and 08:00 local time, when nothing unrequested is sent."""
    return local.time() >= QUIET_FROM or local.time() < QUIET_UNTIL


def reminder_days(raw: object) -> list[int]:
    """An authority's reminder days, cleaned: positive whole numbers, smallest first."""
    values = raw if isinstance(raw, list) else []
    return sorted({d for d in values if isinstance(d, int) and not isinstance(d, bool) and d > 0})


def reminder_text(kind: str, locale: str) -> str:
    """The reminder in the child's language. No variables: a name can never slip in."""
    key = MESSAGE_KEYS[kind]
    messages = library().messages
    return render_for_child(Reply(messages.context(key), messages.texts[key]), locale, {})


def schedule_reminders(
    session: Session, now: datetime | None = None, *, batch: int = BATCH
) -> ReminderSummary:
    """Queue every reminder due at ``now`` (naive UTC; default: the current time). Commits per batch."""
    now = now or utcnow()
    summary = ReminderSummary()
    texts: dict[tuple[str, str], str] = {}
    _invites(session, now, summary, texts, batch)
    _nudges(session, now, summary, texts, batch)
    return summary


def _invites(session: Session, now: datetime, summary: ReminderSummary, texts: dict, batch: int) -> None:
    days_by_authority = {
        authority_id: reminder_days(raw)
        for authority_id, raw in session.execute(select(Authority.id, Authority.reminder_days))
    }
    longest = max((max(d) for d in days_by_authority.values() if d), default=0)
    if not longest:
        return
    # Today differs by at most a day between time zones; each group below uses its own exact date.
    utc_today = now.date()
    groups = session.execute(
        select(Child.authority_id, Child.time_zone)
        .join(Review, Review.child_id == Child.id)
        .where(
            Review.status == "scheduled",
            Review.scheduled_for >= utc_today,
            Review.scheduled_for <= utc_today + timedelta(days=longest + 1),
        )
        .distinct()
    ).all()
    for authority_id, zone_name in groups:
        local = local_time(now, zone_name)
        if is_quiet(local):
            _note_quiet(summary, zone_name)
            continue
        previous = 0
        days = days_by_authority.get(authority_id, [])
        for index, day in enumerate(days):
            # A review in (previous, day] days is due the invitation for ``day``; the larger days
            # that have also passed are recorded as skipped. Read a page of reviews at a time in id
            # order, writing and committing each page before the next, so memory stays flat however
            # many children are due.
            query = _due_reviews(authority_id, zone_name, local.date(), previous, day)
            later = days[index + 1 :]
            for page in _in_pages(session, query, Review.id, batch):
                identities = _identities(session, {row.child_id for row in page})
                due = [
                    _Due(
                        child_id=row.child_id,
                        locale=row.locale,
                        kind=INVITE,
                        key=invite_key(row.id, day),
                        skipped_keys=tuple(invite_key(row.id, d) for d in later),
                        identities=identities.get(row.child_id, []),
                    )
                    for row in page
                ]
                _record(session, _without_recorded_skips(session, due), now, summary, texts)
            previous = day


def _due_reviews(authority_id: int, zone_name: str, today: date, after: int, until: int):  # type: ignore[no-untyped-def]
    """Scheduled reviews ``after`` < days away <= ``until``, without views or this invitation."""
    shared = exists().where(
        WishesSubmission.child_id == Review.child_id, WishesSubmission.review_id == Review.id
    )
    recorded = exists().where(
        ReminderSent.child_id == Review.child_id,
        ReminderSent.kind == INVITE,
        ReminderSent.key == _invite_key_sql(until),
    )
    return (
        select(Review.id, Review.child_id, Child.locale)
        .join(Child, Child.id == Review.child_id)
        .where(
            Child.authority_id == authority_id,
            Child.time_zone == zone_name,
            Review.status == "scheduled",
            Review.scheduled_for > today + timedelta(days=after),
            Review.scheduled_for <= today + timedelta(days=until),
            ~shared,
            ~recorded,
        )
    )


def _nudges(session: Session, now: datetime, summary: ReminderSummary, texts: dict, batch: int) -> None:
    cutoff = now - NUDGE_AFTER
    paused = (ConversationState.paused_at.is_not(None), ConversationState.paused_at <= cutoff)
    zones = session.scalars(
        select(Child.time_zone)
        .join(ConversationState, ConversationState.child_id == Child.id)
        .where(*paused)
        .distinct()
    ).all()
    awake = []
    for zone_name in zones:
        if is_quiet(local_time(now, zone_name)):
            _note_quiet(summary, zone_name)
        else:
            awake.append(zone_name)
    if not awake:
        return
    nudged = exists().where(
        ReminderSent.child_id == ConversationState.child_id,
        ReminderSent.kind == NUDGE,
        ReminderSent.at >= ConversationState.paused_at,
    )
    recent = exists().where(
        ReminderSent.child_id == ConversationState.child_id,
        ReminderSent.outcome == "queued",
        ReminderSent.at > now - NUDGE_GAP,
    )
    query = (
        select(ConversationState.child_id, ConversationState.paused_at, Child.locale)
        .join(Child, Child.id == ConversationState.child_id)
        .where(*paused, Child.time_zone.in_(awake), ~nudged, ~recent)
    )
    for page in _in_pages(session, query, ConversationState.child_id, batch):
        identities = _identities(session, {row.child_id for row in page})
        due = [
            _Due(
                child_id=row.child_id,
                locale=row.locale,
                kind=NUDGE,
                key=row.paused_at.isoformat(),
                identities=identities.get(row.child_id, []),
            )
            for row in page
        ]
        _record(session, due, now, summary, texts)


def _in_pages(session: Session, query, key, batch: int) -> Iterator[Sequence]:  # type: ignore[no-untyped-def]
    """The rows of ``query`` a page at a time, in ``key`` order.

    The keys of every matching row are read first (integers only: about 4 MB for 100,000), then
    each page's rows by key with the query's conditions applied again, so a row another worker
    handled in the meantime is left out. (Reading page after page with ``key > last`` instead made
    the database find every earlier row again for each page: 26 times slower for 10 times the rows.)
    """
    keys = session.scalars(query.with_only_columns(key).order_by(key)).all()
    for start in range(0, len(keys), batch):
        page = session.execute(query.where(key.in_(keys[start : start + batch])).order_by(key)).all()
        if page:
            yield page


def _note_quiet(summary: ReminderSummary, zone_name: str) -> None:
    if zone_name not in summary.quiet_zones:
        summary.quiet_zones.append(zone_name)


def _identities(session: Session, child_ids: set[int]) -> dict[int, list[_Identity]]:
    """Each child's identities, newest link first (no encrypted column is read)."""
    found: dict[int, list[_Identity]] = {}
    rows = session.execute(
        select(
            ChannelIdentity.child_id, ChannelIdentity.id, ChannelIdentity.channel, ChannelIdentity.opted_out
        )
        .where(ChannelIdentity.child_id.in_(child_ids))
        .order_by(ChannelIdentity.child_id, ChannelIdentity.linked_at.desc(), ChannelIdentity.id.desc())
    )
    for child_id, id_, channel, opted_out in rows:
        found.setdefault(child_id, []).append(_Identity(id_, channel, opted_out))
    return found


def _without_recorded_skips(session: Session, due: list[_Due]) -> list[_Due]:
    """Drop the skipped keys already recorded (the larger days sent or skipped on an earlier run)."""
    keys = {key for d in due for key in d.skipped_keys}
    if not keys:
        return due
    recorded = set(
        session.execute(
            select(ReminderSent.child_id, ReminderSent.key).where(
                ReminderSent.kind == INVITE,
                ReminderSent.child_id.in_({d.child_id for d in due}),
                ReminderSent.key.in_(keys),
            )
        ).all()
    )
    for item in due:
        item.skipped_keys = tuple(k for k in item.skipped_keys if (item.child_id, k) not in recorded)
    return due


def _write(session: Session, due: Sequence[_Due], now: datetime, texts: dict) -> list[tuple[_Due, str]]:
    """Insert the messages and the reminder log for ``due``; returns each one's outcome.

    Raises ``IntegrityError`` if another worker already recorded one of these keys.
    """
    outcomes: list[tuple[_Due, str]] = []
    log_rows: list[dict] = []
    sending: list[tuple[_Due, Outgoing]] = []

    def log_row(item: _Due, key: str, outcome: str, message_id: int | None = None) -> dict:
        return {
            "child_id": item.child_id,
            "kind": item.kind,
            "key": key,
            "message_id": message_id,
            "outcome": outcome,
            "at": now,
        }

    for item in due:
        log_rows += [log_row(item, key, "skipped") for key in item.skipped_keys]
        identity = next((i for i in item.identities if not i.opted_out), None)
        if identity is None:
            outcome = "opted_out" if item.identities else "no_channel"
            log_rows.append(log_row(item, item.key, outcome))
            outcomes.append((item, outcome))
            continue
        if (item.kind, item.locale) not in texts:
            texts[(item.kind, item.locale)] = reminder_text(item.kind, item.locale)
        text = texts[(item.kind, item.locale)]
        sending.append((item, Outgoing(item.child_id, identity.id, identity.channel, text)))
        outcomes.append((item, "queued"))
    ids = queue_messages(session, [outgoing for _, outgoing in sending], now)
    log_rows += [log_row(item, item.key, "queued", id_) for (item, _), id_ in zip(sending, ids, strict=True)]
    if log_rows:
        session.execute(insert(ReminderSent), log_rows)
    return outcomes


def _record(session: Session, due: list[_Due], now: datetime, summary: ReminderSummary, texts: dict) -> None:
    """Write one batch in a savepoint and commit; on a clash with another worker, child by child.
    On a SQLite file inside the database's write turn, as the web workers write."""
    if not due:
        return
    with committed_in_turn(session):
        try:
            with session.begin_nested():
                outcomes = _write(session, due, now, texts)
        except IntegrityError:
            outcomes = []
            for item in due:
                try:
                    with session.begin_nested():
                        written = _write(session, [item], now, texts)
                except IntegrityError:
                    summary.raced += 1
                else:
                    outcomes += written
    for item, outcome in outcomes:
        summary.skipped += len(item.skipped_keys)
        if outcome == "queued":
            if item.kind == INVITE:
                summary.invites += 1
            else:
                summary.nudges += 1
        elif outcome == "opted_out":
            summary.opted_out += 1
        else:
            summary.no_channel += 1
