"""Messaging: every message in and out, conversation state, concerns, and the outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.crypto import Encrypted
from app.models.base import Base, utcnow

MESSAGE_CHANNELS = ("sms", "telegram", "web")


class ConversationState(Base):
    """Where a child is in a flow, and their answers so far (encrypted: answers are personal)."""

    __tablename__ = "conversation_state"

    child_id: Mapped[int] = mapped_column(ForeignKey("child.id"), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(Encrypted("json"))
    # When the child said LATER in a form (kept in the clear so reminders can find it); else None.
    paused_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Counts every change: an UPDATE made from an older read matches no row and fails, so of two
    # messages from one child handled at once, the second is handled again on the state the first
    # left (see app.conversations.handle) instead of overwriting it.
    revision: Mapped[int] = mapped_column(default=1, server_default="1")

    __mapper_args__ = {"version_id_col": revision}


class Message(Base):
    """One message in or out. Inbound messages are unique per channel and provider id."""

    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("channel", "direction", "provider_id"),
        # A child's messages one way since a time: the previous text read with every message
        # (the split-risk check) and the caseload's last message from each child. With only an
        # index on child_id, PostgreSQL joined it with the created_at index and walked every
        # message of the last 15 minutes from every child (0.9 ms a message with 20,000 recent).
        Index("ix_message_child_id_direction_created_at", "child_id", "direction", "created_at"),
        # Only messages from senders linked to no child have a sender index: a child's messages
        # are not written into this index at all (every index is one more write per message).
        Index(
            "ix_message_sender_index",
            "sender_index",
            postgresql_where=text("sender_index IS NOT NULL"),
            sqlite_where=text("sender_index IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int | None] = mapped_column(ForeignKey("child.id"), nullable=True)
    direction: Mapped[str] = mapped_column(String(3))  # "in" or "out"
    channel: Mapped[str] = mapped_column(String(20))
    provider_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # For senders who are not linked to a child: a keyed hash, so repeats can be seen, not read.
    sender_index: Mapped[str | None] = mapped_column(String(64), nullable=True)
    body: Mapped[str] = mapped_column(Encrypted())
    status: Mapped[str] = mapped_column(String(20), default="received")
    encoding: Mapped[str | None] = mapped_column(String(10), nullable=True)
    segments: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Who wrote an outbound message (a staff reply); None for the service's own replies.
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), nullable=True)
    # Not indexed on its own: a child's messages by time use the index above, and nothing reads
    # every child's messages by time (one index fewer to write with every message).
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Concern(Base):
    """Something a child raised for staff; urgent ones go to the safeguarding queue."""

    __tablename__ = "concern"

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int | None] = mapped_column(ForeignKey("child.id"), index=True, nullable=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"), nullable=True)
    review_action_id: Mapped[int | None] = mapped_column(ForeignKey("review_action.id"), nullable=True)
    category: Mapped[str] = mapped_column(String(40), default="general")
    # Who acts on it: "iro", "manager" (a concern about the reviewing officer) or "advocacy".
    route: Mapped[str] = mapped_column(String(20), default="iro")
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    status: Mapped[str] = mapped_column(String(20), default="open")
    detail: Mapped[str | None] = mapped_column(Encrypted(), nullable=True)
    # Who is dealing with it: None means the child's IRO (or the manager, by route).
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    message: Mapped[Message | None] = relationship()


class StaffNote(Base):
    """A private note on a child's thread: staff only, never sent to the child."""

    __tablename__ = "staff_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id"), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    body: Mapped[str] = mapped_column(Encrypted())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    """An outbound message waiting for the worker, written in the same transaction as its cause."""

    __tablename__ = "outbox_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("message.id"), unique=True)
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("channel_identity.id"), nullable=True)
    # Where to send when the recipient is linked to no child (a chat that has not linked yet).
    address: Mapped[str | None] = mapped_column(Encrypted(), nullable=True)
    # pending, sent, dead (kept failing: staff can retry) or cancelled (the child sent STOP first)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # Choices to show as buttons where the channel has them: [["1", "label"], ...].
    buttons: Mapped[list[list[str]] | None] = mapped_column(Encrypted("json"), nullable=True)
    # The reply to STOP itself: the one message sent to a child who has just opted out.
    confirms_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    message: Mapped[Message] = relationship()

    __table_args__ = (
        # The worker's claim walks pending rows in id order. Without this it walked the primary
        # key past every row ever sent (90,000 sent rows: 101 ms a claim on PostgreSQL).
        Index(
            "ix_outbox_message_pending_id",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )


class ReminderSent(Base):
    """A message the service started (a review invitation or a nudge), recorded once per key."""

    __tablename__ = "reminder_sent"
    __table_args__ = (UniqueConstraint("child_id", "kind", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # "invite" or "nudge"
    # What it was for, e.g. "review-12-14" (review 12, 14 days before) or the paused time.
    key: Mapped[str] = mapped_column(String(80))
    # None when it was due but not sent (opted out, no channel): recorded so it is not retried.
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"), nullable=True)
    outcome: Mapped[str] = mapped_column(String(20), default="queued")
    at: Mapped[datetime] = mapped_column(default=utcnow)
