"""Link codes: how a child's Telegram chat is linked to them, without the chat learning anything.

Staff issue a one-time code for a child (shown as a ``t.me/<bot>?start=CODE`` link or a QR code).
The child sends ``/start CODE``; a valid, unused, unexpired code links that chat to the child. Only
a keyed hash of the code is stored. A wrong, used or expired code gets the same reply, so a guess
reveals nothing, and a chat that keeps guessing is stopped for an hour.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.crypto import blind_index
from app.models import AuditEvent, ChannelIdentity, Child, LinkAttempt, LinkCode, StaffUser

# No 0/O or 1/I: a code read aloud or copied from paper still works.
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 10  # 50 bits: guessing is hopeless even without the rate limit
CODE_LIFETIME = timedelta(days=7)
MAX_FAILED_TRIES = 5
FAILED_TRIES_WINDOW = timedelta(hours=1)

START = re.compile(r"^\s*/start(?:@\w+)?(?:\s+(?P<code>\S+))?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Redeemed:
    """What a ``/start CODE`` did: linked (with the identity), failed, or rate limited."""

    outcome: str  # "linked", "failed", "too_many"
    identity: ChannelIdentity | None = None


def normalise_code(raw: str) -> str:
    """Upper case without spaces or dashes, so "abcd-efgh 23" is "ABCDEFGH23"."""
    return re.sub(r"[\s\-]", "", raw).upper()


def code_index(code: str) -> str:
    return blind_index(f"link:{normalise_code(code)}")


def start_code(text: str) -> tuple[bool, str | None]:
    """Whether the text is Telegram's ``/start`` command, and the code after it if any."""
    found = START.match(text)
    if not found:
        return False, None
    return True, found.group("code")


def issue_code(
    session: Session, child: Child, staff: StaffUser | None, now: datetime, channel: str = "telegram"
) -> str:
    """A new one-time code for the child; earlier unused codes stay valid until they expire."""
    code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    session.add(
        LinkCode(
            child_id=child.id,
            channel=channel,
            code_index=code_index(code),
            issued_by=staff.id if staff else None,
            issued_at=now,
            expires_at=now + CODE_LIFETIME,
        )
    )
    session.add(
        AuditEvent(
            at=now,
            staff_id=staff.id if staff else None,
            child_id=child.id,
            action="link_code_issued",
            detail=f"{channel} link code, expires {now + CODE_LIFETIME:%Y-%m-%d %H:%M} UTC",
        )
    )
    return code


def deep_link(bot_username: str, code: str) -> str:
    """The link that opens the bot and sends ``/start CODE`` when the child taps Start."""
    return f"https://t.me/{bot_username}?start={code}"


def redeem(session: Session, channel: str, address: str, code: str, now: datetime) -> Redeemed:
    """Link the chat at ``address`` to the code's child, if the code is good and unused."""
    sender = ChannelIdentity.address_key(channel, address)
    recent_failures = session.scalar(
        select(func.count())
        .select_from(LinkAttempt)
        .where(LinkAttempt.sender_index == sender, LinkAttempt.at > now - FAILED_TRIES_WINDOW)
    )
    if recent_failures >= MAX_FAILED_TRIES:
        # Not even looked up: a chat that keeps guessing learns nothing more.
        return Redeemed("too_many")
    link = session.scalar(
        select(LinkCode).where(
            LinkCode.code_index == code_index(code),
            LinkCode.channel == channel,
            LinkCode.used_at.is_(None),
            LinkCode.expires_at > now,
        )
    )
    # Used once, also when two copies of the code arrive at the same moment.
    claimed = (
        link is not None
        and session.execute(
            update(LinkCode).where(LinkCode.id == link.id, LinkCode.used_at.is_(None)).values(used_at=now)
        ).rowcount
        == 1
    )
    if not claimed:
        session.add(LinkAttempt(sender_index=sender, at=now))
        return Redeemed("failed")
    assert link is not None
    identity = ChannelIdentity.link(link.child, channel, address)
    identity.linked_at = now
    session.add(
        AuditEvent(at=now, child_id=link.child_id, action="chat_linked", detail=f"{channel} chat, by code")
    )
    return Redeemed("linked", identity)
