"""People: the authority, its staff, children, who their reviewing officer is, and how to reach them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, Select, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship
from sqlalchemy.orm.interfaces import ORMOption

from app.crypto import Encrypted, blind_index
from app.models.base import Base, utcnow

STAFF_ROLES = ("iro", "iro_manager", "participation_worker", "admin")
CHANNELS = ("sms", "telegram")


class Authority(Base):
    """A council (or advocacy provider) running the service, with its settings for children."""

    __tablename__ = "authority"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    nation: Mapped[str] = mapped_column(String(20), default="england")
    default_locale: Mapped[str] = mapped_column(String(10), default="en")
    # Per-locale wording, e.g. {"en": "Independent Reviewing Officer", "cy": "..."}.
    role_title: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    role_short: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    reply_time: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    reply_working_days: Mapped[int] = mapped_column(Integer, default=2)
    out_of_hours_phone: Mapped[str] = mapped_column(String(40), default="")
    # Office hours in the authority's local time (Europe/London), on working days (Monday=0).
    office_days: Mapped[list[int]] = mapped_column(JSON, default=lambda: [0, 1, 2, 3, 4])
    office_opens_at: Mapped[str] = mapped_column(String(5), default="09:00")
    office_closes_at: Mapped[str] = mapped_column(String(5), default="17:00")
    advocacy_contact: Mapped[str] = mapped_column(String(200), default="")
    # Days before each review to invite a child who has not shared their views yet.
    reminder_days: Mapped[list[int]] = mapped_column(JSON, default=lambda: [14, 7])
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def wording(self, field: str, locale: str) -> str:
        """A per-locale setting in the child's language, falling back to English."""
        return in_language(getattr(self, field), locale)


def in_language(values: dict[str, Any] | None, locale: str) -> str:
    """A per-locale setting (``{"en": ..., "cy": ...}``) in the given language, else English."""
    values = values or {}
    return values.get(locale) or values.get("en") or ""


class StaffUser(Base):
    """A member of staff who signs in: IRO, IRO manager, participation worker or admin."""

    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id"))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(30))
    password_hash: Mapped[str] = mapped_column(String(300))
    # How children reach this person, e.g. a work mobile; shown to their children only.
    contact_phone: Mapped[str] = mapped_column(String(40), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Two-factor sign-in with an authenticator app (TOTP); required for managers and admins.
    totp_secret: Mapped[str | None] = mapped_column(Encrypted(), nullable=True)
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # The last time step a TOTP code was accepted for, so a code cannot be replayed.
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_login_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    authority: Mapped[Authority] = relationship()

    # Flask-Login's user interface.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    @property
    def is_manager(self) -> bool:
        """Managers and admins see every child of their authority."""
        return self.role in ("iro_manager", "admin")

    @property
    def needs_two_factor(self) -> bool:
        return self.role in ("iro_manager", "admin")


class LoginAttempt(Base):
    """A sign-in attempt, by a keyed hash of the email and the client address: for throttling."""

    __tablename__ = "login_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_index: Mapped[str] = mapped_column(String(64), index=True)
    remote_addr: Mapped[str] = mapped_column(String(64), default="", index=True)
    succeeded: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class CannedReply(Base):
    """A reply staff can pick and edit before sending (the authority's own wording)."""

    __tablename__ = "canned_reply"

    id: Mapped[int] = mapped_column(primary_key=True)
    authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id"), index=True)
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(String(640))


class Child(Base):
    """A looked-after child who uses the service. Personal details are encrypted."""

    __tablename__ = "child"

    id: Mapped[int] = mapped_column(primary_key=True)
    authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id"))
    first_name: Mapped[str] = mapped_column(Encrypted())
    date_of_birth: Mapped[date | None] = mapped_column(Encrypted("date"), nullable=True)
    age: Mapped[int | None] = mapped_column(Encrypted("json"), nullable=True)
    locale: Mapped[str] = mapped_column(String(10), default="en")
    looked_after_since: Mapped[date | None] = mapped_column(Encrypted("date"), nullable=True)
    # For quiet hours: no message the child did not ask for between 21:00 and 08:00 here.
    time_zone: Mapped[str] = mapped_column(String(60), default="Europe/London")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    authority: Mapped[Authority] = relationship()
    assignments: Mapped[list[IroAssignment]] = relationship(
        back_populates="child", order_by="IroAssignment.started_at"
    )
    identities: Mapped[list[ChannelIdentity]] = relationship(back_populates="child")

    @property
    def current_iro(self) -> StaffUser | None:
        """The reviewing officer assigned now, if any (as one query: ``IroAssignment.current_iro_of``)."""
        for assignment in reversed(self.assignments):
            if assignment.ended_at is None:
                return assignment.iro
        return None


class IroAssignment(Base):
    """Which reviewing officer a child has had, and when; the open row is the current one."""

    __tablename__ = "iro_assignment"

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id"), index=True)
    iro_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)

    child: Mapped[Child] = relationship(back_populates="assignments")
    iro: Mapped[StaffUser] = relationship()

    @classmethod
    def current_iro_of(cls, child_id: Any) -> Select[tuple[str, str]]:
        """The name and phone of the child's reviewing officer now, as ``Child.current_iro`` finds
        them (the open assignment that started last), in one query without ORM objects."""
        return (
            select(StaffUser.display_name, StaffUser.contact_phone)
            .join(cls, cls.iro_id == StaffUser.id)
            .where(cls.child_id == child_id, cls.ended_at.is_(None))
            .order_by(cls.started_at.desc(), cls.id.desc())
            .limit(1)
        )


class ChannelIdentity(Base):
    """A phone number or Telegram chat linked to a child, found by its keyed hash."""

    __tablename__ = "channel_identity"
    __table_args__ = (UniqueConstraint("channel", "address_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(Encrypted())
    address_index: Mapped[str] = mapped_column(String(64))
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out_at: Mapped[datetime | None] = mapped_column(nullable=True)
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)

    child: Mapped[Child] = relationship(back_populates="identities")

    @staticmethod
    def address_key(channel: str, address: str) -> str:
        """The keyed hash an address is found by (and a sender linked to no one is recorded by)."""
        return blind_index(f"{channel}:{address}")

    @classmethod
    def link(cls, child: Child, channel: str, address: str) -> ChannelIdentity:
        """A new identity for a child; ``address`` must already be normalised (E.164, chat id)."""
        identity = cls(channel=channel, address=address, address_index=cls.address_key(channel, address))
        child.identities.append(identity)
        return identity

    @classmethod
    def find(
        cls, session: Session, channel: str, address: str, *options: ORMOption
    ) -> ChannelIdentity | None:
        """The identity for a normalised address, looked up by its keyed hash only (``options``:
        loader options, e.g. to load the child in the same query)."""
        index = cls.address_key(channel, address)
        return session.scalar(
            select(cls).where(cls.channel == channel, cls.address_index == index).options(*options)
        )


class LinkCode(Base):
    """A one-time code staff give a child to link a chat (Telegram ``/start CODE``).

    Only a keyed hash of the code is stored; it expires, and is used at most once.
    """

    __tablename__ = "link_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20), default="telegram")
    code_index: Mapped[str] = mapped_column(String(64), unique=True)
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), nullable=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)

    child: Mapped[Child] = relationship()


class LinkAttempt(Base):
    """A failed attempt to use a link code, by a sender's keyed hash: for rate limiting."""

    __tablename__ = "link_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    sender_index: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
