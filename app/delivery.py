"""Outbox delivery: the worker sends queued messages through their channel, with retries.

Delivery guarantee: at least once. Each row is claimed with a lease (and, on PostgreSQL, ``FOR
UPDATE SKIP LOCKED`` so several workers can run side by side); a worker that dies leaves its rows
to be claimed again when the lease expires. The provider's acceptance is recorded in one database
write straight after the send, so a message is sent twice only if a worker dies between the two
(with ``DELIVERY_CONCURRENCY`` sends in flight at once, at most that many),
or if the provider accepts a message but does not answer within ``PROVIDER_TIMEOUT_SECONDS`` (a
timeout is retried like a 500: the worker cannot tell whether the message got through). A message
that keeps failing is moved to the dead-letter state ("dead"), where staff can see and retry it;
nothing is dropped. Nothing is sent to a child who has opted out: their messages are held, and
Twilio's error 21610 (the number texted STOP to Twilio itself) marks the child opted out too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from flask import Flask
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from app.models import ChannelIdentity, Message, OutboxMessage, utcnow

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


Sender = Callable[[OutboxMessage, ChannelIdentity], str]


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

    def send(row: OutboxMessage, identity: ChannelIdentity) -> str:
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


@dataclass
class _Claimed:
    """One claimed row, read once with everything its send needs (the session's objects expire on
    every commit; these do not, so a batch costs one read, not three lazy loads per row)."""

    outbox: OutboxMessage  # detached: carries the decrypted body, buttons and address
    identity: ChannelIdentity | None
    channel: str

    @property
    def recipient(self) -> object:
        """Who the row goes to: one child's (or chat's) messages are never in flight together. The
        channel and address, so a chat's rows queued before it was linked (an address only) and
        after (an identity) count as one recipient."""
        address = self.identity.address if self.identity is not None else self.outbox.address
        return (self.channel, address)


def claim(session: Session, now: datetime, batch: int) -> list[_Claimed]:
    """Take due rows under a lease, committing so other workers skip them; each row is read with
    its message and identity in the same query, as detached copies."""
    outbox, message = OutboxMessage.__table__, Message.__table__
    query = (
        select(outbox, message.c.channel, message.c.body)
        .join(message, message.c.id == outbox.c.message_id)
        .where(
            outbox.c.status == "pending",
            outbox.c.next_attempt_at <= now,
            or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now),
        )
        .order_by(outbox.c.id)
        .limit(batch)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Several workers side by side: each skips the rows another is claiming.
        query = query.with_for_update(skip_locked=True, of=outbox)
    found = session.execute(query).all()
    if not found:
        session.commit()
        return []
    lease = now + LEASE
    session.execute(update(outbox).where(outbox.c.id.in_([r.id for r in found])).values(lease_until=lease))
    identity_ids = {r.identity_id for r in found if r.identity_id}
    identities: dict[int, ChannelIdentity] = {}
    if identity_ids:
        table = ChannelIdentity.__table__
        for r in session.execute(
            select(table.c.id, table.c.child_id, table.c.channel, table.c.address, table.c.opted_out).where(
                table.c.id.in_(identity_ids)
            )
        ):
            identities[r.id] = ChannelIdentity(
                id=r.id, child_id=r.child_id, channel=r.channel, address=r.address, opted_out=r.opted_out
            )
    session.commit()
    claimed = []
    for r in found:
        row = OutboxMessage(
            id=r.id,
            message_id=r.message_id,
            identity_id=r.identity_id,
            address=r.address,
            status=r.status,
            attempts=r.attempts,
            next_attempt_at=r.next_attempt_at,
            lease_until=lease,
            buttons=r.buttons,
            confirms_opt_out=r.confirms_opt_out,
            message=Message(id=r.message_id, channel=r.channel, body=r.body, direction="out"),
        )
        identity = identities.get(r.identity_id) if r.identity_id else None
        if identity is None and r.address:
            # A chat linked to no child yet (it is told how to link): an address, not an identity.
            identity = ChannelIdentity(channel=r.channel, address=r.address, opted_out=False)
        claimed.append(_Claimed(row, identity, r.channel))
    return claimed


_OUTBOX, _MESSAGE, _IDENTITY = OutboxMessage.__table__, Message.__table__, ChannelIdentity.__table__
# Built once: each round's reads and writes are the same statements with new values.
_CHECK = (
    select(_OUTBOX.c.id, _OUTBOX.c.status, _IDENTITY.c.opted_out)
    .outerjoin(_IDENTITY, _IDENTITY.c.id == _OUTBOX.c.identity_id)
    .where(_OUTBOX.c.id.in_(bindparam("outbox_ids", expanding=True)))
)
_OUTBOX_SENT = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id.in_(bindparam("outbox_ids", expanding=True)))
    .values(status="sent", lease_until=None, last_error=None)
)
_MESSAGE_SENT = (
    update(_MESSAGE)
    .where(_MESSAGE.c.id == bindparam("message_id"))
    .values(status="sent", provider_id=bindparam("provider_id"))
)

# What a row about to be sent turned out to be: its sender, None (cancelled meanwhile: left as it
# is, never sent), or why it cannot go now.
Prepared = Sender | None | DeliveryError


def deliver_due(
    session: Session,
    senders: Mapping[str, Sender],
    now: datetime | None = None,
    batch: int = 100,
    concurrency: int = 1,
) -> Delivered:
    """Send every due outbox row once and record each result.

    The batch is read in one query when it is claimed. Just before rows are sent, one small read
    asks whether each is still pending and whether its child opted out meanwhile (a STOP that
    arrives while the batch is being sent holds the rest of that child's messages). With
    ``concurrency`` above 1 (the worker's ``DELIVERY_CONCURRENCY``) that many sends are in flight
    at once on a thread pool while this thread, the only one touching the database, records the
    results of those that have finished: the results that came in together, and the check of the
    rows that take their places, cost one round of statements and one commit. Two messages to one
    child are never in flight together, so each child's messages still go in the order they were
    queued. A worker killed at any moment leaves at most the ``concurrency`` messages in flight to
    be sent again.
    """
    now = now or utcnow()
    result = Delivered()
    waiting = claim(session, now, batch)
    if concurrency <= 1:
        for item in waiting:
            [(_, prepared)] = _prepare(session, [item], senders)
            if prepared is not None:
                outcome = prepared if isinstance(prepared, DeliveryError) else _send(prepared, item)
                _record(session, [(item, outcome)], now, result)
            session.commit()
        return result
    running: dict[Future[str | DeliveryError], _Claimed] = {}
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="deliver") as pool:
        while waiting or running:
            refused: list[tuple[_Claimed, str | DeliveryError]] = []
            for item, prepared in _prepare(session, _next_up(waiting, running, concurrency), senders):
                if isinstance(prepared, DeliveryError):
                    refused.append((item, prepared))
                elif prepared is not None:
                    running[pool.submit(_send, prepared, item)] = item
            _record(session, refused, now, result)
            session.commit()  # the results recorded below, with this round's refusals
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            _record(session, [(running.pop(future), future.result()) for future in done], now, result)
        session.commit()
    return result


def _next_up(
    waiting: list[_Claimed], running: Mapping[Future[str | DeliveryError], _Claimed], concurrency: int
) -> list[_Claimed]:
    """Take from ``waiting`` the rows that may start now: as many as there are free places, never
    a second row to a child with one in flight (nor any later row to that child)."""
    busy = {item.recipient for item in running.values()}
    chosen: list[_Claimed] = []
    for item in list(waiting):
        if len(running) + len(chosen) >= concurrency:
            break
        if item.recipient in busy:
            continue
        busy.add(item.recipient)  # every later row to this child waits its turn
        waiting.remove(item)
        chosen.append(item)
    return chosen


def _prepare(
    session: Session, items: list[_Claimed], senders: Mapping[str, Sender]
) -> list[tuple[_Claimed, Prepared]]:
    """For rows about to be sent, read again in one query whether each is still pending and whether
    its child opted out (two columns, nothing decrypted), and say what each should do now."""
    if not items:
        return []
    current = {
        row.id: row for row in session.execute(_CHECK, {"outbox_ids": [item.outbox.id for item in items]})
    }
    prepared: list[tuple[_Claimed, Prepared]] = []
    for item in items:
        sender = senders.get(item.channel)
        row = current.get(item.outbox.id)
        if sender is None or item.identity is None:
            prepared.append((item, DeliveryError(f"no way to send on {item.channel!r} to this child")))
            continue
        if row is None or row.status != "pending":
            prepared.append((item, None))  # cancelled meanwhile (the child sent STOP): never sent
            continue
        if item.outbox.identity_id is not None:
            item.identity.opted_out = row.opted_out
        if item.identity.opted_out and not item.outbox.confirms_opt_out:
            prepared.append(
                (item, DeliveryError("the child has opted out (STOP); held until they text START"))
            )
            continue
        prepared.append((item, sender))
    return prepared


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
    session: Session,
    outcomes: list[tuple[_Claimed, str | DeliveryError]],
    now: datetime,
    result: Delivered,
) -> None:
    """Write rows' results (not committed): sent, or a retry later, or a dead letter. The rows the
    provider accepted take two statements together, whatever their number."""
    sent = [(item.outbox, outcome) for item, outcome in outcomes if isinstance(outcome, str)]
    if sent:
        # The one write between the provider accepting and us knowing it.
        session.execute(_OUTBOX_SENT, {"outbox_ids": [row.id for row, _ in sent]})
        session.execute(
            _MESSAGE_SENT, [{"message_id": row.message_id, "provider_id": sid} for row, sid in sent]
        )
        result.sent += len(sent)
    for item, outcome in outcomes:
        if isinstance(outcome, DeliveryError):
            _record_failure(session, item, now, outcome, result)


def _record_failure(
    session: Session, item: _Claimed, now: datetime, outcome: DeliveryError, result: Delivered
) -> None:
    """A row the provider did not take: a retry later, or a dead letter."""
    row, identity = item.outbox, item.identity
    if isinstance(outcome, RecipientOptedOut) and identity is not None:
        # Twilio already blocks this number (it texted STOP): nothing more is tried for this
        # child, later rows in this batch included (each reads this before its send), until START.
        identity.opted_out, identity.opted_out_at = True, now
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
