"""Flow content staff can change: versions of flows and phrase lists, and translations.

The files in ``flows/`` and ``locales/`` are the shipped defaults. A published row here takes the
place of its file; older published rows stay, so a child finishes on the version they started.
None of this is a child's data, so none of it is encrypted.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, utcnow
from app.models.people import StaffUser

FLOW = "flow"  # ContentVersion.kind for a conversation flow; key is the flow id
PHRASES = "safeguarding"  # ContentVersion.kind for a safeguarding phrase file; key is its locale


class ContentVersion(Base):
    """One version of a flow or a phrase list: a draft being edited, or a published version.

    A kind and key have at most one draft. Publishing gives the draft the next ``number``; the
    current version is the published one with the highest number. Rolling back publishes a copy of
    an earlier version, so history only grows.
    """

    __tablename__ = "content_version"
    __table_args__ = (
        UniqueConstraint("kind", "key", "number"),
        # At most one draft of a flow or list, even when two people start one at the same moment.
        Index(
            "uq_content_version_one_draft",
            "kind",
            "key",
            unique=True,
            sqlite_where=text("status = 'draft'"),
            postgresql_where=text("status = 'draft'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(60), index=True)
    number: Mapped[int | None] = mapped_column(nullable=True)  # None while a draft
    status: Mapped[str] = mapped_column(String(12), default="draft")  # draft | published
    content: Mapped[str] = mapped_column(Text)  # YAML, as in the shipped file
    digest: Mapped[str] = mapped_column(String(64), default="")  # the engine's version of a flow
    note: Mapped[str] = mapped_column(String(300), default="")  # e.g. "Re-published version 2"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(nullable=True)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), nullable=True)
    # The published version a draft was started from (0: the shipped file), to warn when a newer
    # one was published since.
    based_on: Mapped[int | None] = mapped_column(nullable=True)
    # Counts every change of the row; an UPDATE made from an older read changes nothing and fails,
    # so a save can never rewrite a version someone has just published.
    revision: Mapped[int] = mapped_column(default=1)

    updated_by: Mapped[StaffUser | None] = relationship(foreign_keys=[updated_by_id])
    published_by: Mapped[StaffUser | None] = relationship(foreign_keys=[published_by_id])

    __mapper_args__ = {"version_id_col": revision}


def message_key(locale: str, context: str, msgid: str) -> str:
    """A fixed-length key for one message in one locale (English texts can be long)."""
    return hashlib.sha256(f"{locale}\x04{context}\x04{msgid}".encode()).hexdigest()


class Translation(Base):
    """A translation made or imported in the editor. Children get ``approved_text``, approved by a
    second person; a newer ``text`` waits for review while the approved one (or, if none, the
    reviewed translation in ``locales/``) stays in use."""

    __tablename__ = "translation"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # message_key(locale, context, msgid)
    locale: Mapped[str] = mapped_column(String(10), index=True)
    context: Mapped[str] = mapped_column(String(120))
    msgid: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)  # the latest translation proposed
    approved_text: Mapped[str | None] = mapped_column(Text, nullable=True)  # what children get
    status: Mapped[str] = mapped_column(String(16), default="needs_review")  # needs_review | approved
    reason: Mapped[str] = mapped_column(String(120), default="")  # why it needs review
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), nullable=True)

    updated_by: Mapped[StaffUser | None] = relationship(foreign_keys=[updated_by_id])
    approved_by: Mapped[StaffUser | None] = relationship(foreign_keys=[approved_by_id])
