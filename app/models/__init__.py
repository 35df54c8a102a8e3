"""The data model, one module per aggregate. Model methods never commit."""

from app.models.audit import AuditEvent
from app.models.base import Base, utcnow
from app.models.flows import ContentVersion, Translation
from app.models.messaging import (
    Concern,
    ConversationState,
    Message,
    OutboxMessage,
    ReminderSent,
    StaffNote,
)
from app.models.people import (
    Authority,
    CannedReply,
    ChannelIdentity,
    Child,
    IroAssignment,
    LinkAttempt,
    LinkCode,
    LoginAttempt,
    StaffUser,
)
from app.models.reviews import Review, ReviewAction, WishesSubmission

__all__ = [
    "AuditEvent",
    "Authority",
    "CannedReply",
    "Base",
    "ChannelIdentity",
    "Child",
    "Concern",
    "ContentVersion",
    "ConversationState",
    "IroAssignment",
    "LinkAttempt",
    "LinkCode",
    "LoginAttempt",
    "Message",
    "OutboxMessage",
    "ReminderSent",
    "Review",
    "ReviewAction",
    "StaffNote",
    "StaffUser",
    "Translation",
    "WishesSubmission",
    "utcnow",
]
