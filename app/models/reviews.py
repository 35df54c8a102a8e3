"""Reviews: review meetings, the actions agreed at them, and the child's wishes and feelings."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Select, String, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.crypto import Encrypted
from app.models.base import Base, utcnow

REVIEW_KINDS = ("first", "second", "regular", "early")
REVIEW_STATUSES = ("scheduled", "held", "postponed", "cancelled")
ACTION_STATUSES = ("agreed", "awaiting_manager", "done")


class Review(Base):
    """A child's review meeting."""

    __tablename__ = "review"

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id"), index=True)
    scheduled_for: Mapped[date] = mapped_column(Date, index=True)
    kind: Mapped[str] = mapped_column(String(20), default="regular")
    status: Mapped[str] = mapped_column(String(20), default="scheduled")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    actions: Mapped[list[ReviewAction]] = relationship(back_populates="review", order_by="ReviewAction.id")

    @classmethod
    def next_of(cls, child_id: Any, today: Any) -> Select[tuple[Review]]:
        """The child's next scheduled review on or after ``today`` (values, or bound parameters
        for a statement built once)."""
        return (
            select(cls)
            .where(cls.child_id == child_id, cls.status == "scheduled", cls.scheduled_for >= today)
            .order_by(cls.scheduled_for)
            .limit(1)
        )

    @classmethod
    def last_held_of(cls, child_id: Any) -> Select[tuple[Review]]:
        """The child's most recent held review: its actions are the child's "my plan"."""
        return (
            select(cls)
            .where(cls.child_id == child_id, cls.status == "held")
            .order_by(cls.scheduled_for.desc())
            .limit(1)
        )


class ReviewAction(Base):
    """Something agreed at a review: what, who does it, by when, and where it has got to."""

    __tablename__ = "review_action"

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("review.id"), index=True)
    description: Mapped[str] = mapped_column(Encrypted())
    owner: Mapped[str] = mapped_column(Encrypted())
    due_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="agreed")
    completed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    review: Mapped[Review] = relationship(back_populates="actions")

    def is_late(self, today: date) -> bool:
        """Late is derived from the due date, never stored by hand."""
        return action_is_late(self.status, self.due_on, today)


def action_is_late(status: str, due_on: date | None, today: date) -> bool:
    """An action is late once its due date has passed and it is not done."""
    return status != "done" and due_on is not None and due_on < today


class WishesSubmission(Base):
    """A child's confirmed wishes and feelings for a review; private answers are marked inside."""

    __tablename__ = "wishes_submission"

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id"), index=True)
    review_id: Mapped[int | None] = mapped_column(ForeignKey("review.id"), nullable=True)
    answers: Mapped[dict[str, Any]] = mapped_column(Encrypted("json"))
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime | None] = mapped_column(nullable=True)
