"""The data model, one module per aggregate. Model methods never commit."""

from app.models.audit import AuditEvent
from app.models.base import Base, utcnow
from app.models.messaging import Concern, ConversationState, Message, OutboxMessage, ReminderSent
from app.models.people import (
    Authority,
    ChannelIdentity,
    Child,
    IroAssignment,
    LinkAttempt,
    LinkCode,
    StaffUser,
)
from app.models.reviews import Review, ReviewAction, WishesSubmission

__all__ = [
    "AuditEvent",
    "Authority",
    "Base",
    "ChannelIdentity",
    "Child",
    "Concern",
    "ConversationState",
    "IroAssignment",
    "LinkAttempt",
    "LinkCode",
    "Message",
    "OutboxMessage",
    "ReminderSent",
    "Review",
    "ReviewAction",
    "StaffUser",
    "WishesSubmission",
    "utcnow",
]
