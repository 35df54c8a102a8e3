"""Outbox delivery: the worker sends queued messages through their channel, with retries.

Delivery guarantee: at least once. Each row is claimed with a lease (and, on PostgreSQL, ``FOR
UPDATE SKIP LOCKED`` so several workers can run side by side); a worker that dies leaves its rows
to be claimed again when the lease expires. The provider's acceptance is written down after the
send (sending one at a time, straight after it; with ``DELIVERY_CONCURRENCY`` sends in flight,
in rounds, never more than ``MOST_UNWRITTEN`` behind), so a message is sent twice only if a worker
dies in between (at most one message, or ``DELIVERY_CONCURRENCY`` + ``MOST_UNWRITTEN``), or if the provider
accepts a message but does not answer within ``PROVIDER_TIMEOUT_SECONDS`` (a timeout is retried
like a 500: the worker cannot tell whether the message got through). A message that keeps failing
is moved to the dead-letter state ("dead"), where staff can see and retry it; nothing is dropped.
Nothing is sent to a child who has opted out: their messages are held, and Twilio's error 21610
(the number texted STOP to Twilio itself) marks the child opted out too.

On a SQLite file the sends' writes here (a claim, a round of results) take the database's write
turn (``app.write_turns``), as a message's handling does: for these the worker and the web workers
wait for each other in the kernel's queue for a file lock, not in SQLite's busy handler (which
sleeps). Scheduling reminders takes it too (``app.reminders``); staff's writes (a dead letter
retried, a reply) do not yet.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from operator import itemgetter

import requests
from flask import Flask
from sqlalchemy import Connection, Dialect, Engine, bindparam, column, text, update
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from app.direct_statements import read_rows, result_processors
from app.models import ChannelIdentity, Message, OutboxMessage, utcnow
from app.write_turns import committed_in_turn, engine_of

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
LEASE = timedelta(seconds=60)
FIRST_RETRY = timedelta(seconds=5)
LONGEST_RETRY = timedelta(hours=1)
DEFAULT_PROVIDER_TIMEOUT = 10.0  # seconds; the PROVIDER_TIMEOUT_SECONDS setting
# Twilio's "Attempt to send to unsubscribed recipient": the number texted STOP to Twilio.
TWILIO_UNSUBSCRIBED = 21610


class DeliveryError(Exception):
    """The provider did not accept the message; it will be retried."""


class RecipientOptedOut(DeliveryError):
    """The provider refuses the recipient because they opted out (STOP): hold until START."""


Sender = Callable[["Outgoing", "Recipient"], str]


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: 5 s, 10 s, 20 s ... at most an hour."""
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), LONGEST_RETRY)


def twilio_sender(app: Flask) -> Sender | None:
    """A sender using the official twilio client, or None if SMS is not configured."""
    config = app.config
    if not (
        config.get("TWILIO_ACCOUNT_SID") and config.get("TWILIO_AUTH_TOKEN") and config.get("TWILIO_FROM")
    ):
        return None
    # Without a timeout a provider that accepts the connection and never answers hangs the worker.
    timeout = float(config.get("PROVIDER_TIMEOUT_SECONDS") or DEFAULT_PROVIDER_TIMEOUT)
    base_url = config.get("TWILIO_API_BASE_URL") or "https://api.twilio.com"
    sender = config["TWILIO_FROM"]
    # One client (and so one HTTP connection pool) per sending thread: requests' sessions are not
    # promised to be safe to share between threads.
    local = threading.local()

    def client() -> Client:
        made = getattr(local, "client", None)
        if made is None:
            made = local.client = Client(
                config["TWILIO_ACCOUNT_SID"],
                config["TWILIO_AUTH_TOKEN"],
                http_client=TwilioHttpClient(timeout=timeout),
            )
            made.api.base_url = base_url
        return made

    def send(row: Outgoing, identity: Recipient) -> str:
        origin = {"messaging_service_sid": sender} if sender.startswith("MG") else {"from_": sender}
        try:
            sent = client().messages.create(to=identity.address, body=row.message.body, **origin)
        except (TwilioException, requests.exceptions.RequestException) as error:
            # A refused connection or a timeout is a requests error, not a Twilio one: all are retried.
            reason = f"{type(error).__name__}: {error}"[:480]
            if getattr(error, "code", None) == TWILIO_UNSUBSCRIBED:
                raise RecipientOptedOut(
                    f"Twilio {TWILIO_UNSUBSCRIBED}: the number texted STOP; {reason}"[:480]
                ) from error
            raise DeliveryError(reason) from error
        return sent.sid

    return send


@dataclass
class Delivered:
    sent: int = 0
    retrying: int = 0
    dead: int = 0


@dataclass(slots=True)
class OutgoingText:
    """The part of a queued message a send needs (``row.message.body``)."""

    channel: str
    body: str


@dataclass(slots=True)
class Outgoing:
    """A claimed outbox row as a sender sees it: plain values, read once (building ORM objects
    for every row cost more than the database work of a claim)."""

    id: int
    message_id: int
    identity_id: int | None
    address: str | None
    attempts: int
    buttons: list[str] | None
    confirms_opt_out: bool
    message: OutgoingText


@dataclass(slots=True)
class Recipient:
    """Who a row goes to, as a sender sees it (``identity.address``)."""

    id: int | None  # None: a chat linked to no child yet, known by its address only
    address: str
    opted_out: bool


@dataclass(slots=True)
class _Claimed:
    """One claimed row with everything its send needs, and what the last check found."""

    outbox: Outgoing
    identity: Recipient | None
    pending: bool = True  # False: cancelled meanwhile (the child sent STOP), never to be sent
    # Who the row goes to: one child's (or chat's) messages are never in flight together. The
    # channel and address, so a chat's rows queued before it was linked (an address only) and
    # after (an identity) count as one recipient. Worked out once: it is asked for several times
    # a send.
    recipient: tuple[str, str | None] = field(init=False)

    def __post_init__(self) -> None:
        address = self.identity.address if self.identity is not None else self.outbox.address
        self.recipient = (self.channel, address)

    @property
    def channel(self) -> str:
        return self.outbox.message.channel


_OUTBOX, _MESSAGE, _IDENTITY = OutboxMessage.__table__, Message.__table__, ChannelIdentity.__table__
# Built once: each claim, check and record is the same statement with new values. A list of ids
# goes as one value (an array on PostgreSQL, a JSON array on SQLite), so the statement text never
# changes (an IN list is rendered again for each number of ids) and each database prepares it once.

# A check returns only the rows that must not go as they are: no longer pending (cancelled by a
# STOP, or sent by another worker after a lease ran out), or whose child has opted out. Every row
# it does not return is still pending to a child who has not: usually none come back.
_CHECK_SQL = """
    SELECT o.id, o.status, i.opted_out FROM outbox_message AS o
    LEFT JOIN channel_identity AS i ON i.id = o.identity_id
    WHERE o.id {one_of} AND (o.status <> 'pending' OR i.opted_out)
"""
_CHECK = {
    "postgresql": text(_CHECK_SQL.format(one_of="= ANY(CAST(:outbox_ids AS integer[]))")),
    "sqlite": text(_CHECK_SQL.format(one_of="IN (SELECT value FROM json_each(:outbox_ids))")),
}

# On PostgreSQL the rows sent and their messages are marked in one statement, the values as arrays.
_PG_SENT = text(
    """
    WITH sent AS (
        SELECT * FROM unnest(
            CAST(:outbox_ids AS integer[]), CAST(:message_ids AS integer[]), CAST(:provider_ids AS varchar[])
        ) AS s(outbox_id, message_id, provider_id)
    ), marked AS (
        UPDATE outbox_message SET status = 'sent', lease_until = NULL, last_error = NULL
        FROM sent WHERE outbox_message.id = sent.outbox_id
    )
    UPDATE message SET status = 'sent', provider_id = sent.provider_id
    FROM sent WHERE message.id = sent.message_id
    """
)
# On SQLite (which cannot update two tables in one statement) in two, each given one JSON value:
# the outbox ids, and the [message id, provider id] pairs.
_SQLITE_SENT = (
    text(
        """
        UPDATE outbox_message SET status = 'sent', lease_until = NULL, last_error = NULL
        WHERE id IN (SELECT value FROM json_each(:outbox_ids))
        """
    ),
    text(
        """
        UPDATE message SET status = 'sent', provider_id = json_extract(sent.value, '$[1]')
        FROM json_each(:sent) AS sent WHERE message.id = json_extract(sent.value, '$[0]')
        """
    ),
)
# What a claim returns: each row (an Outgoing's fields, in order) with its message's channel and
# text and its recipient.
_CLAIMED = (
    _OUTBOX.c.id,
    _OUTBOX.c.message_id,
    _OUTBOX.c.identity_id,
    _OUTBOX.c.address,
    _OUTBOX.c.attempts,
    _OUTBOX.c.buttons,
    _OUTBOX.c.confirms_opt_out,
    _MESSAGE.c.channel,
    _MESSAGE.c.body,
    column("identity_address", _IDENTITY.c.address.type),
    _IDENTITY.c.opted_out,
)
# A claim is one statement: the due rows are leased and returned. On PostgreSQL they are locked
# first, skipping any another worker is claiming, so several workers can run side by side.
_PG_CLAIM = text(
    """
    WITH due AS (
        SELECT id, message_id, identity_id FROM outbox_message
        WHERE status = 'pending' AND next_attempt_at <= :now
            AND (lease_until IS NULL OR lease_until < :now)
        ORDER BY id LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    UPDATE outbox_message AS o SET lease_until = :lease
    FROM due
        JOIN message AS m ON m.id = due.message_id
        LEFT JOIN channel_identity AS i ON i.id = due.identity_id
    WHERE o.id = due.id
    RETURNING o.id, o.message_id, o.identity_id, o.address, o.attempts, o.buttons,
        o.confirms_opt_out, m.channel, m.body,
        i.address AS identity_address, i.opted_out
    """
).columns(*_CLAIMED)
# On SQLite a claim is two statements in one transaction that holds the write lock from its start
# (BEGIN IMMEDIATE), so no other worker can lease the same rows meanwhile: the due rows with their
# message and recipient, read as ONE row (a JSON array of arrays), then their lease. The sqlite3
# module lets go of the GIL for every row it steps through, and in a worker whose sending threads
# keep the GIL busy each row then waited for it: a claim of 100 rows returned row by row took about
# 20 ms, holding the write lock (and so the recorder) all the while, for about 3 ms of work.
_SQLITE_DUE = text(
    """
    SELECT json_group_array(json_array(o.id, o.message_id, o.identity_id, o.address, o.attempts,
        o.buttons, o.confirms_opt_out, m.channel, m.body, i.address, i.opted_out))
    FROM (
        SELECT * FROM outbox_message
        WHERE status = 'pending' AND next_attempt_at <= :now
            AND (lease_until IS NULL OR lease_until < :now)
        ORDER BY id LIMIT :batch
    ) AS o
    JOIN message AS m ON m.id = o.message_id
    LEFT JOIN channel_identity AS i ON i.id = o.identity_id
    """
).bindparams(bindparam("now", type_=_OUTBOX.c.next_attempt_at.type))
_SQLITE_LEASE = text(
    "UPDATE outbox_message SET lease_until = :lease WHERE id IN (SELECT value FROM json_each(:ids))"
).bindparams(bindparam("lease", type_=_OUTBOX.c.lease_until.type))


def _sqlite_due(session: Session | Connection, now: datetime, batch: int, lease: datetime) -> list[tuple]:
    """SQLite's claim (the caller commits): the due rows as tuples of _CLAIMED's values, read as
    the columns' types read them (the text decrypted, 0 and 1 as booleans) before the commit, so a
    row that cannot be read leaves nothing leased."""
    session.execute(text("BEGIN IMMEDIATE"))
    found = json.loads(session.execute(_SQLITE_DUE, {"now": now, "batch": batch}).scalar_one())
    if found:
        session.execute(_SQLITE_LEASE, {"ids": json.dumps([row[0] for row in found]), "lease": lease})
    return read_rows(found, _sqlite_processors(engine_of(session).dialect))


@cache
def _sqlite_processors(dialect: Dialect) -> tuple[Callable[[object], object] | None, ...]:
    """What turns each of _CLAIMED's stored values into the value read (None: taken as it is)."""
    return result_processors(_CLAIMED, dialect)


def _dialect(session: Session | Connection) -> str:
    return engine_of(session).dialect.name


def _on_postgresql(session: Session | Connection) -> bool:
    return _dialect(session) == "postgresql"


def claim(session: Session | Connection, now: datetime, batch: int) -> list[_Claimed]:
    """Take due rows under a lease, committing so other workers skip them; each row is read with
    its message and recipient, as plain values."""
    lease = now + LEASE
    on_postgresql = _on_postgresql(session)
    if not on_postgresql:
        # What the caller left open is committed first, outside the turn: it may hold SQLite's
        # lock, which the turn's holder would then wait for (and BEGIN IMMEDIATE would refuse).
        session.commit()
    # Plain tuples: unpacked, not read by name (a Row reads through SQLAlchemy's machinery).
    with committed_in_turn(session):
        if on_postgresql:
            found = list(map(tuple, session.execute(_PG_CLAIM, {"now": now, "batch": batch, "lease": lease})))
        else:
            found = _sqlite_due(session, now, batch, lease)
    # In queue order (neither claim keeps one), sorted by id alone (a Row compares through
    # SQLAlchemy's operators, column by column).
    found.sort(key=itemgetter(0))
    claimed = []
    identities: dict[int, Recipient] = {}  # one object per recipient, shared by their rows
    # The claim's first seven columns are an Outgoing's fields, in order (_CLAIMED).
    for *fields, channel, body, to, opted_out in found:
        row = Outgoing(*fields, OutgoingText(channel, body))
        identity_id, address = row.identity_id, row.address
        identity = None
        if identity_id and to is not None:
            identity = identities.get(identity_id)
            if identity is None:
                identity = identities[identity_id] = Recipient(identity_id, to, opted_out)
        if identity is None and address:
            # A chat linked to no child yet (it is told how to link): an address, not an identity.
            identity = Recipient(None, address, False)
        claimed.append(_Claimed(row, identity))
    return claimed


# What a row about to be sent turned out to be: its sender, None (cancelled meanwhile: left as it
# is, never sent), or why it cannot go now.
Prepared = Sender | None | DeliveryError

# How long a row may wait between its check and its send before it is checked again.
FRESH_CHECK = 0.25  # seconds
# The lanes wait while this many results (beyond the sends in flight) are not yet written down,
# waiting or being written; so a killed worker can have sent at most DELIVERY_CONCURRENCY +
# MOST_UNWRITTEN messages that were not yet written down, and those are sent again. (Only at the
# speed of a local fake provider do this many gather: at Twilio's speed a round is written every
# RECORD_WAIT long before it fills.)
MOST_UNWRITTEN = 32
# The recorder writes a round once this many results are waiting, or once the oldest has waited
# RECORD_WAIT. Half of MOST_UNWRITTEN: while one round is written the next can gather, so the
# sends go on. Each round costs about the same whatever its size (on SQLite, a commit and two
# statements); rounds of 16 instead of 8 took the drain on SQLite from 0.83 to 0.88 of the
# provider's full speed.
RECORD_ROUND = 16
RECORD_WAIT = 0.05  # seconds
# With sends in parallel, one call claims batch after batch while it has run less than this (the
# worker looks for a stop signal and for reminders due between calls; every call ends with the
# lanes running dry, 2 % of the time with calls of 2 s).
KEEP_CLAIMING = 5.0  # seconds


def deliver_due(
    session: Session,
    senders: Mapping[str, Sender],
    now: datetime | None = None,
    batch: int = 100,
    concurrency: int = 1,
) -> Delivered:
    """Send every due outbox row once and record each result.

    The batch is read in one query when it is claimed. Just before rows are sent, a read asks
    whether each is still pending and whether its child opted out meanwhile (a STOP that arrives
    while the batch is being sent holds the rest of that child's messages).

    With ``concurrency`` 1, each row is checked, sent and recorded in turn. Above 1 (the worker's
    ``DELIVERY_CONCURRENCY``) that many lanes (threads kept from call to call) send at once,
    never two rows to one child, so each child's messages still go in the order they were queued:
    - each lane takes its next row itself as soon as its last send has finished;
    - this thread claims the next batch while the last one is still going (for up to
      ``KEEP_CLAIMING`` seconds a call, rows due by then included), and checks all the rows
      waiting in one read whenever the last check is getting old: no row is sent on a check more
      than ``FRESH_CHECK`` old, so a STOP holds that child's rows within that time;
    - a recorder thread, with its own connection, writes the results in rounds (once
      ``RECORD_ROUND`` have come in, or the oldest has waited ``RECORD_WAIT``), one commit a round
      (on PostgreSQL the sends of a round are one statement, in autocommit), while the sends go
      on; the lanes wait while ``concurrency`` + ``MOST_UNWRITTEN`` messages are sent and not yet
      written.
    A worker killed at any moment leaves at most those messages (one, sending one at a time) to
    be sent again.
    """
    now = now or utcnow()
    result = Delivered()
    claimed_at = time.monotonic()
    waiting = claim(session, now, batch)
    if concurrency <= 1:
        for item in waiting:
            _check(session, [item])
            prepared = _verdict(item, senders, set())
            if prepared is not None:
                outcome = prepared if isinstance(prepared, DeliveryError) else _send(prepared, item)
                with committed_in_turn(session):
                    _record(session, [(item, outcome)], now, result)
            session.commit()  # the check's read
        return result
    if not waiting:
        return result
    engine = session.get_bind()

    def more(reader: Connection) -> list[_Claimed]:
        """The next batch, while this call has run less than KEEP_CLAIMING and rows are due."""
        running = time.monotonic() - claimed_at
        if running > KEEP_CLAIMING:
            return []
        # Due by the call's clock: a reply queued while the call runs goes in this call. On the
        # reader, in autocommit: on PostgreSQL a claim is one statement, so that is one round
        # trip, not three (BEGIN, the claim, COMMIT).
        return claim(reader, now + timedelta(seconds=running), batch)

    with (
        _Recorder(engine, now, result) as recorder,
        # The checks read in autocommit, so each sees what the recorder has just committed.
        engine.connect().execution_options(isolation_level="AUTOCOMMIT") as reader,
    ):
        _dispatch(reader, waiting, claimed_at, more, senders, concurrency, _pool(concurrency), recorder)
    return result


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(concurrency: int) -> ThreadPoolExecutor:
    """The sending threads, kept from one call to the next, so each keeps its provider client and
    its open connection to the provider."""
    with _pools_lock:
        if concurrency not in _pools:
            _pools[concurrency] = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="deliver")
        return _pools[concurrency]


def _dispatch(
    reader: Connection,
    waiting: list[_Claimed],
    claimed_at: float,
    more: Callable[[Connection], list[_Claimed]],
    senders: Mapping[str, Sender],
    concurrency: int,
    pool: ThreadPoolExecutor,
    recorder: _Recorder,
) -> None:
    """Run ``concurrency`` sending lanes until every claimed row has gone. Each lane takes the
    next row itself as soon as its last send has finished (handing each send to a waiting thread
    cost up to a GIL switch interval, 5 ms, per row), and hands its result to the recorder. This
    thread keeps the lanes supplied: it claims the next batch while the last one is still going,
    and checks the rows waiting again whenever their last check is more than ``FRESH_CHECK`` old."""
    lanes = _Lanes(waiting, claimed_at, senders, concurrency, recorder)
    recorder.on_written = lanes.poke
    running = [pool.submit(lanes.run) for _ in range(concurrency)]
    abandon = True
    try:
        claiming = True
        while True:
            need = lanes.wait_for_need(low=concurrency * 4 if claiming else 0)
            if need == "done":
                break
            if need == "rows":
                claimed_at = time.monotonic()  # a claim reads what a check reads
                claimed = more(reader)
                claiming = bool(claimed)
                lanes.add(claimed, claimed_at)
            else:
                rows = lanes.waiting_rows()
                checked_at = time.monotonic()
                _check(reader, rows)
                lanes.checked(checked_at)
        abandon = False
    finally:
        # On an error the rows not yet started are left, under their lease, for a later claim.
        lanes.close(abandon)
        wait(running)  # every lane has stopped and handed over its last result
    for lane in running:
        lane.result()


class _Lanes:
    """The rows waiting to be sent, shared by the sending threads (each a lane) and the thread
    that supplies them. Each side is woken only when it has something to do: a wake-up is a GIL
    hand-off, and one per send slowed the sends."""

    def __init__(
        self,
        waiting: list[_Claimed],
        claimed_at: float,
        senders: Mapping[str, Sender],
        concurrency: int,
        recorder: _Recorder,
    ) -> None:
        self._waiting = list(waiting)
        self._senders, self._recorder = senders, recorder
        self._most_at_risk = concurrency + MOST_UNWRITTEN  # sent, not yet written down
        self._in_flight: set[tuple[str, str | None]] = set()  # recipients with a send in flight
        self._stopped: set[tuple[str, str | None]] = (
            set()
        )  # recipients the provider said opted out, in this call
        self._checked_at = claimed_at  # the claim read what a check reads
        self._closed = False
        self._low = 0  # the supplying thread wants more rows below this many
        lock = threading.Lock()
        self._lanes_wake, self._supply_wake = threading.Condition(lock), threading.Condition(lock)

    # -- the supplying thread --

    def _supply_needed(self) -> bool:
        return (
            self._recorder.failed()
            or len(self._waiting) < self._low
            or (not self._waiting and not self._in_flight)
        )

    def wait_for_need(self, low: int) -> str:
        """Wait until the lanes need something: "rows" (fewer than ``low`` waiting), "check" (the
        last check is getting old), or "done" (nothing waiting, nothing in flight)."""
        with self._supply_wake:
            self._low = low
            while True:
                if self._recorder.failed() or (not self._waiting and not self._in_flight and low == 0):
                    return "done"
                if len(self._waiting) < low:
                    return "rows"
                age = time.monotonic() - self._checked_at
                if self._waiting and age > FRESH_CHECK / 2:
                    return "check"
                self._supply_wake.wait(FRESH_CHECK / 2 - age if self._waiting else None)

    def add(self, claimed: list[_Claimed], claimed_at: float) -> None:
        with self._lanes_wake:
            if claimed and not self._waiting:
                self._checked_at = claimed_at
            self._waiting += claimed
            self._lanes_wake.notify_all()

    def waiting_rows(self) -> list[_Claimed]:
        with self._lanes_wake:
            return list(self._waiting)

    def checked(self, at: float) -> None:
        with self._lanes_wake:
            self._checked_at = at
            self._lanes_wake.notify_all()

    def close(self, abandon: bool = False) -> None:
        with self._lanes_wake:
            self._closed = True
            if abandon:
                self._waiting.clear()
            self._lanes_wake.notify_all()

    def poke(self) -> None:
        """Something the lanes wait for has changed (the recorder has written a round)."""
        with self._lanes_wake:
            self._lanes_wake.notify_all()
            if self._supply_needed():
                self._supply_wake.notify()

    # -- the lanes --

    def run(self) -> None:
        """One lane: send rows until none are left."""
        sent: tuple[_Claimed, str | DeliveryError | None] | None = None
        while (taken := self._next(sent)) is not None:
            item, sender = taken
            sent = (item, None)
            try:
                outcome = _send(sender, item)
                self._recorder.put([(item, outcome)])
                sent = (item, outcome)
            except BaseException:
                with self._lanes_wake:
                    self._finished(*sent)
                raise

    def _finished(self, item: _Claimed, outcome: str | DeliveryError | None) -> None:
        """Under the lock: a lane's send is over (its result is with the recorder)."""
        self._in_flight.discard(item.recipient)
        if isinstance(outcome, RecipientOptedOut):
            self._stopped.add(item.recipient)  # the rest of their rows wait until START
        self._lanes_wake.notify()  # a lane waiting for this child, if any
        if self._supply_needed():
            self._supply_wake.notify()

    def _next(
        self, sent: tuple[_Claimed, str | DeliveryError | None] | None = None
    ) -> tuple[_Claimed, Sender] | None:
        """The next row this lane may send, in queue order, never a second row to a child with one
        in flight (nor any later row to that child); None when there is nothing more to send.
        ``sent``: the lane's last row and its result, finished under the same lock (one lock
        taken a send, not two)."""
        with self._lanes_wake:
            if sent is not None:
                self._finished(*sent)
            while True:
                if self._recorder.failed() or (self._closed and not self._waiting):
                    return None
                if (
                    time.monotonic() - self._checked_at <= FRESH_CHECK
                    and len(self._in_flight) + self._recorder.backlog() < self._most_at_risk
                ):
                    taken = self._take()
                    if self._supply_needed():
                        self._supply_wake.notify()
                    if taken is not None:
                        return taken
                self._lanes_wake.wait(RECORD_WAIT)

    def _take(self) -> tuple[_Claimed, Sender] | None:
        """Under the lock: the first row that may go now. Rows refused (a retry later) and rows
        cancelled meanwhile are taken off on the way."""
        busy = set(self._in_flight)
        index = 0
        while index < len(self._waiting):
            item = self._waiting[index]
            if item.recipient in busy:
                index += 1
                continue
            busy.add(item.recipient)
            del self._waiting[index]
            prepared = _verdict(item, self._senders, self._stopped)
            if isinstance(prepared, DeliveryError):
                self._recorder.put([(item, prepared)])
            elif prepared is not None:
                self._in_flight.add(item.recipient)
                return item, prepared
        return None


def _check(reader: Session | Connection, items: list[_Claimed]) -> None:
    """Read again, in one query, whether each row is still pending and whether its child opted
    out (two columns, nothing decrypted; only the rows where either has changed come back)."""
    dialect = _dialect(reader)
    ids: list[int] | str = [i.outbox.id for i in items]
    if dialect != "postgresql":
        ids = json.dumps(ids)  # SQLite reads it with json_each
    changed = {row.id: row for row in reader.execute(_CHECK[dialect], {"outbox_ids": ids})}
    for item in items:
        row = changed.get(item.outbox.id)
        item.pending = row is None or row.status == "pending"
        if item.outbox.identity_id is not None and item.identity is not None:
            item.identity.opted_out = row is not None and bool(row.opted_out)


def _verdict(item: _Claimed, senders: Mapping[str, Sender], stopped: set[tuple[str, str | None]]) -> Prepared:
    """What a checked row should do now: go with its sender, nothing, or wait (an error)."""
    sender = senders.get(item.channel)
    if sender is None or item.identity is None:
        return DeliveryError(f"no way to send on {item.channel!r} to this child")
    if not item.pending:
        return None  # cancelled meanwhile (the child sent STOP): never sent
    opted_out = item.identity.opted_out or item.recipient in stopped
    if opted_out and not item.outbox.confirms_opt_out:
        return DeliveryError("the child has opted out (STOP); held until they text START")
    return sender


class _Recorder:
    """Writes the results of finished sends on a thread and a connection of its own, all that has
    come in together in one round of statements and one commit, while the sends go on."""

    def __init__(self, engine: Engine, now: datetime, result: Delivered) -> None:
        self._engine, self._now, self._result = engine, now, result
        self._queue: list[tuple[_Claimed, str | DeliveryError]] = []
        self._oldest = 0.0  # when the oldest result in the queue came in
        self._writing = 0
        self._closed = False
        self._error: BaseException | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="deliver-record", daemon=True)
        self.on_written: Callable[[], None] = lambda: None

    def __enter__(self) -> _Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join()
        if self._error is not None and self._queue:
            self._last_try()
        if exc[0] is None:
            self.raise_if_failed()

    def _last_try(self) -> None:
        """After a failed write, once the sends have stopped: all that is left, once more on a
        fresh connection. If that fails too, the rows the provider took are named in the log:
        they will be sent again when their lease runs out."""
        try:
            with self._engine.connect() as connection, committed_in_turn(connection):
                _record(connection, self._queue, self._now, self._result)
        except Exception:  # noqa: BLE001 - the first error is the one raised
            accepted = [item.outbox.id for item, outcome in self._queue if isinstance(outcome, str)]
            log.exception(
                "delivery results still not written; outbox rows the provider accepted, to be sent "
                "again when their lease runs out: %s",
                accepted,
            )
        else:
            self._queue = []

    def put(self, outcomes: list[tuple[_Claimed, str | DeliveryError]]) -> None:
        if outcomes:
            with self._changed:
                first = not self._queue
                if first:
                    self._oldest = time.monotonic()
                self._queue.extend(outcomes)
                if first or len(self._queue) >= RECORD_ROUND:
                    # The first wakes the recorder to time RECORD_WAIT from now; a full round, to write.
                    self._changed.notify_all()

    def backlog(self) -> int:
        """How many results are waiting to be written, or being written."""
        with self._changed:
            return len(self._queue) + self._writing

    def failed(self) -> bool:
        return self._error is not None

    def raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _take(self) -> list[tuple[_Claimed, str | DeliveryError]] | None:
        """The next round to write, once it is due; None when closed and all is written."""
        with self._changed:
            while True:
                if self._queue and (
                    len(self._queue) >= RECORD_ROUND
                    or self._closed
                    or time.monotonic() - self._oldest >= RECORD_WAIT
                ):
                    taken, self._queue = self._queue, []
                    self._writing = len(taken)
                    return taken
                if self._closed:
                    return None
                timeout = RECORD_WAIT - (time.monotonic() - self._oldest) if self._queue else None
                self._changed.wait(timeout)

    def _write(
        self, connection: Connection, taken: list[tuple[_Claimed, str | DeliveryError]], autocommit: bool
    ) -> None:
        """Write one round and commit it. What has been written is taken off ``taken``: on an
        error, the rest is kept for another try."""
        if not autocommit:
            _record(connection, taken, self._now, self._result)
            connection.commit()
            taken.clear()
            return
        accepted = [outcome for outcome in taken if isinstance(outcome[1], str)]
        if accepted:
            _record(connection, accepted, self._now, self._result)  # one statement
            taken[:] = [outcome for outcome in taken if not isinstance(outcome[1], str)]
        if taken:
            # The rest (a retry later, or a dead letter) is several statements: one transaction.
            with self._engine.begin() as transaction:
                _record(transaction, taken, self._now, self._result)
            taken.clear()

    def _run(self) -> None:
        # One connection held throughout: a session would check one out (and ping it) per commit.
        with self._engine.connect() as connection:
            autocommit = _on_postgresql(connection)
            if autocommit:
                # There the sends of a round are one statement, so in autocommit it is a
                # transaction of its own: one round trip, not three (BEGIN, the statement, COMMIT).
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            while (taken := self._take()) is not None:
                try:
                    # _write commits what it writes; the turn's commit then finds nothing left.
                    with committed_in_turn(connection):
                        self._write(connection, taken, autocommit)
                except BaseException as error:  # noqa: BLE001 - handed to the sending thread
                    log.exception("delivery results could not be written; the sends stop")
                    self._error = error
                    with self._changed:
                        self._queue[:0] = taken  # kept, with what the sends in flight still bring
                with self._changed:
                    self._writing = 0
                    self._changed.notify_all()
                self.on_written()
                if self._error is not None:
                    return


def _send(send: Sender, item: _Claimed) -> str | DeliveryError:
    """On a pool thread: the provider's id for the message, or why it was not accepted."""
    try:
        return send(item.outbox, item.identity)  # type: ignore[arg-type]
    except DeliveryError as error:
        return error
    except Exception as error:  # noqa: BLE001 - a bug in one send must not lose the others' results
        log.exception("outbox %s: the send failed unexpectedly; it will be retried", item.outbox.id)
        return DeliveryError(f"{type(error).__name__}: {error}"[:480])


def _record(
    session: Session | Connection,
    outcomes: list[tuple[_Claimed, str | DeliveryError]],
    now: datetime,
    result: Delivered,
) -> None:
    """Write rows' results (not committed): sent, or a retry later, or a dead letter. The rows the
    provider accepted take, whatever their number, one statement on PostgreSQL and two on SQLite."""
    sent = [(item.outbox, outcome) for item, outcome in outcomes if isinstance(outcome, str)]
    if sent:
        # The one write between the provider accepting and us knowing it.
        if _on_postgresql(session):
            session.execute(
                _PG_SENT,
                {
                    "outbox_ids": [row.id for row, _ in sent],
                    "message_ids": [row.message_id for row, _ in sent],
                    "provider_ids": [sid for _, sid in sent],
                },
            )
        else:
            outbox, messages = _SQLITE_SENT
            session.execute(outbox, {"outbox_ids": json.dumps([row.id for row, _ in sent])})
            session.execute(messages, {"sent": json.dumps([[row.message_id, sid] for row, sid in sent])})
        result.sent += len(sent)
    for item, outcome in outcomes:
        if isinstance(outcome, DeliveryError):
            _record_failure(session, item, now, outcome, result)


def _record_failure(
    session: Session | Connection, item: _Claimed, now: datetime, outcome: DeliveryError, result: Delivered
) -> None:
    """A row the provider did not take: a retry later, or a dead letter."""
    row, identity = item.outbox, item.identity
    if isinstance(outcome, RecipientOptedOut) and identity is not None:
        # Twilio already blocks this number (it texted STOP): nothing more is tried for this
        # child, later rows in this batch included, until START.
        identity.opted_out = True
        if identity.id is not None:
            session.execute(
                update(_IDENTITY)
                .where(_IDENTITY.c.id == identity.id)
                .values(opted_out=True, opted_out_at=now)
            )
        log.warning("outbox %s: the provider says the child opted out; held until START", row.id)
    attempts = row.attempts + 1
    values: dict[str, object] = {"attempts": attempts, "last_error": str(outcome), "lease_until": None}
    if attempts >= MAX_ATTEMPTS:
        values["status"] = "dead"
        session.execute(update(_MESSAGE).where(_MESSAGE.c.id == row.message_id).values(status="failed"))
        result.dead += 1
        log.error("outbox %s moved to dead letters after %s attempts: %s", row.id, attempts, outcome)
    else:
        values["next_attempt_at"] = now + retry_delay(attempts)
        result.retrying += 1
    session.execute(update(_OUTBOX).where(_OUTBOX.c.id == row.id).values(**values))


def retry_dead(session: Session, outbox_id: int, now: datetime | None = None) -> None:
    """Staff retry a dead-lettered message: it is due again at once."""
    row = session.get(OutboxMessage, outbox_id)
    if row is None or row.status != "dead":
        raise ValueError("only a dead-lettered message can be retried")
    row.status, row.attempts, row.next_attempt_at = "pending", 0, now or utcnow()
    row.message.status = "queued"
