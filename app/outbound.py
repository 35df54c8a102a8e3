"""Messages the service starts (reminders, and later staff replies): queued for the outbox worker.

Each queued message is an outbound ``Message`` (with its SMS encoding and segment count) and its
``OutboxMessage``, written in the caller's transaction; nothing here commits, so a message exists
only if whatever caused it is committed too. The worker (``app.delivery``) sends it, and holds it
while the identity is opted out. ``queue_message`` queues one; ``queue_messages`` queues many in
two INSERT statements (reminders for thousands of children at once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.engine.sms import SmsCost, sms_cost
from app.models import ChannelIdentity, Message, OutboxMessage


@dataclass(frozen=True)
class Outgoing:
    """One message to queue: for which child, on which of their identities, what it says."""

    child_id: int
    identity_id: int
    channel: str
    text: str
    # Choices to show as buttons where the channel has them: [["1", "label"], ...].
    buttons: list[list[str]] | None = None


def _message_row(item: Outgoing, cost: SmsCost, now: datetime) -> dict[str, Any]:
    return {
        "child_id": item.child_id,
        "direction": "out",
        "channel": item.channel,
        "body": item.text,
        "status": "queued",
        "encoding": cost.encoding,
        "segments": cost.segments,
        "created_at": now,
    }


def _outbox_row(item: Outgoing, now: datetime) -> dict[str, Any]:
    return {
        "identity_id": item.identity_id,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "buttons": item.buttons,
        "created_at": now,
    }


def queue_message(
    session: Session,
    child_id: int,
    identity: ChannelIdentity,
    text: str,
    now: datetime,
    *,
    buttons: list[list[str]] | None = None,
) -> Message:
    """Queue ``text`` for a child on one of their identities; returns the pending message."""
    if identity.child_id != child_id:
        # Never let a caller's mix-up send one child's message to another child's phone.
        raise ValueError("the identity does not belong to this child")
    item = Outgoing(child_id, identity.id, identity.channel, text, buttons)
    message = Message(**_message_row(item, sms_cost(text), now))
    session.add(message)
    session.add(OutboxMessage(message=message, **_outbox_row(item, now)))
    return message


def queue_messages(session: Session, items: Sequence[Outgoing], now: datetime) -> list[int]:
    """Queue many messages at once; returns their message ids, in the order given.

    The caller has checked that each identity belongs to its child (e.g. by selecting them by
    ``child_id``). Rows are inserted directly, not as ORM objects, so nothing is loaded back.
    """
    if not items:
        return []
    costs: dict[str, SmsCost] = {}
    for item in items:
        if item.text not in costs:
            costs[item.text] = sms_cost(item.text)
    ids = list(
        session.scalars(
            insert(Message).returning(Message.id, sort_by_parameter_order=True),
            [_message_row(item, costs[item.text], now) for item in items],
        )
    )
    session.execute(
        insert(OutboxMessage),
        [{**_outbox_row(item, now), "message_id": id_} for item, id_ in zip(items, ids, strict=True)],
    )
    return ids


def reply_channel(session: Session, child_id: int) -> ChannelIdentity | None:
    """Where a message to the child goes: their most recently linked channel that is not opted out."""
    return session.scalar(
        select(ChannelIdentity)
        .where(ChannelIdentity.child_id == child_id, ChannelIdentity.opted_out.is_(False))
        .order_by(ChannelIdentity.linked_at.desc(), ChannelIdentity.id.desc())
        .limit(1)
    )
