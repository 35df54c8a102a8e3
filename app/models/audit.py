"""Audit: who did or saw what, when. Rows are only ever added."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class AuditEvent(Base):
    """One audited event: a staff read of a child's data, a publish, a key rotation..."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), nullable=True)
    child_id: Mapped[int | None] = mapped_column(ForeignKey("child.id"), nullable=True, index=True)
    action: Mapped[str] = mapped_column(String(60))
    detail: Mapped[str] = mapped_column(String(500), default="")
