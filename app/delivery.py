"""Outbox delivery: the worker sends queued messages through their channel, with retries.

Delivery guarantee: at least once. Each row is claimed with a lease (and, on PostgreSQL, ``FOR
UPDATE SKIP LOCKED`` so several workers can run side by side); a worker that dies leaves its rows
to be claimed again when the lease expires. The provider's acceptance is recorded in one database
write straight after the send, so a message is sent twice only if a worker dies between the two,
or if the provider accepts a message but does not answer within ``PROVIDER_TIMEOUT_SECONDS`` (a
timeout is retried like a 500: the worker cannot tell whether the message got through). A message
that keeps failing is moved to the dead-letter state ("dead"), where staff can see and retry it;
nothing is dropped. Nothing is sent to a child who has opted out: their messages are held, and
Twilio's error 21610 (the number texted STOP to Twilio itself) marks the child opted out too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from flask import Flask
from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from app.models import ChannelIdentity, OutboxMessage, utcnow

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
    client = Client(
        config["TWILIO_ACCOUNT_SID"],
        config["TWILIO_AUTH_TOKEN"],
        http_client=TwilioHttpClient(timeout=timeout),
    )
    client.api.base_url = config.get("TWILIO_API_BASE_URL") or "https://api.twilio.com"
    sender = config["TWILIO_FROM"]

    def send(row: OutboxMessage, identity: ChannelIdentity) -> str:
        origin = {"messaging_service_sid": sender} if sender.startswith("MG") else {"from_": sender}
        try:
            sent = client.messages.create(to=identity.address, body=row.message.body, **origin)
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


def claim(session: Session, now: datetime, batch: int) -> list[OutboxMessage]:
    """Take due rows under a lease, committing so other workers skip them."""
    query = (
        select(OutboxMessage)
        .where(
            OutboxMessage.status == "pending",
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now),
        )
        .order_by(OutboxMessage.id)
        .limit(batch)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(session.scalars(query))
    for row in rows:
        row.lease_until = now + LEASE
    session.commit()
    return rows


def deliver_due(
    session: Session, senders: Mapping[str, Sender], now: datetime | None = None, batch: int = 100
) -> Delivered:
    """Send every due outbox row once; record each result in its own small commit."""
    now = now or utcnow()
    result = Delivered()
    for row in claim(session, now, batch):
        identity = session.get(ChannelIdentity, row.identity_id) if row.identity_id else None
        if identity is None and row.address:
            # A chat linked to no child yet (it is told how to link): an address, not an identity.
            identity = ChannelIdentity(channel=row.message.channel, address=row.address, opted_out=False)
        sender = senders.get(row.message.channel)
        try:
            if sender is None or identity is None:
                raise DeliveryError(f"no way to send on {row.message.channel!r} to this child")
            if identity.opted_out and not row.confirms_opt_out:
                raise DeliveryError("the child has opted out (STOP); held until they text START")
            provider_id = sender(row, identity)
        except DeliveryError as error:
            if isinstance(error, RecipientOptedOut) and identity is not None:
                # Twilio already blocks this number (it texted STOP): nothing more is tried for
                # this child, this row and later ones in this batch included, until START.
                identity.opted_out, identity.opted_out_at = True, now
                log.warning("outbox %s: the provider says the child opted out; held until START", row.id)
            row.attempts += 1
            row.last_error = str(error)
            row.lease_until = None
            if row.attempts >= MAX_ATTEMPTS:
                row.status = "dead"
                row.message.status = "failed"
                result.dead += 1
                log.error(
                    "outbox %s moved to dead letters after %s attempts: %s", row.id, row.attempts, error
                )
            else:
                row.next_attempt_at = now + retry_delay(row.attempts)
                result.retrying += 1
        else:
            # The one write between the provider accepting and us knowing it.
            row.status, row.lease_until, row.last_error = "sent", None, None
            row.message.status, row.message.provider_id = "sent", provider_id
            result.sent += 1
        session.commit()
    return result


def retry_dead(session: Session, outbox_id: int, now: datetime | None = None) -> None:
    """Staff retry a dead-lettered message: it is due again at once."""
    row = session.get(OutboxMessage, outbox_id)
    if row is None or row.status != "dead":
        raise ValueError("only a dead-lettered message can be retried")
    row.status, row.attempts, row.next_attempt_at = "pending", 0, now or utcnow()
    row.message.status = "queued"
