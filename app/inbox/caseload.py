"""The caseload (every child an IRO may see, with what needs attention), the urgent queue, the audit log.

The caseload is built with a fixed number of queries whatever the number of children (one per
kind of fact, each grouped by child), so 90 children cost what 5 do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from flask import render_template, request
from flask_login import current_user
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.access import CHILD_DATA_ROLES, audit, roles_required, visible_children
from app.extensions import db
from app.inbox import bp
from app.models import (
    AuditEvent,
    ChannelIdentity,
    Child,
    Concern,
    IroAssignment,
    Message,
    Review,
    ReviewAction,
    StaffUser,
    WishesSubmission,
    utcnow,
)

SORTS = {
    "attention": "Needs attention first",
    "review": "Next review (soonest first)",
    "name": "Name",
    "recent": "Latest message",
}
FILTERS = {
    "all": "All children",
    "concerns": "Open concerns",
    "urgent": "Urgent concerns",
    "no_views": "Views not in for next review",
    "late": "Late actions",
    "opted_out": "Opted out",
}


@dataclass
class CaseloadRow:
    child_id: int
    name: str
    iro_name: str = ""
    next_review: date | None = None
    views_in: bool = False
    open_concerns: int = 0
    urgent: int = 0
    late_actions: int = 0
    channels: list[tuple[str, bool]] = field(default_factory=list)  # (channel, opted out)
    last_message_at: datetime | None = None

    @property
    def opted_out(self) -> bool:
        return bool(self.channels) and all(opted for _, opted in self.channels)

    @property
    def any_opted_out(self) -> bool:
        return any(opted for _, opted in self.channels)

    def days_to_review(self, today: date) -> int | None:
        return (self.next_review - today).days if self.next_review else None


def caseload_rows(session: Session, staff: StaffUser, today: date) -> list[CaseloadRow]:
    """Every child this member of staff may see, with the facts the caseload shows."""
    ids = visible_children(staff).with_only_columns(Child.id).scalar_subquery()
    rows = {
        child_id: CaseloadRow(child_id, name)
        for child_id, name in session.execute(select(Child.id, Child.first_name).where(Child.id.in_(ids)))
    }
    if not rows:
        return []
    for child_id, iro_name in session.execute(
        select(IroAssignment.child_id, StaffUser.display_name)
        .join(StaffUser, StaffUser.id == IroAssignment.iro_id)
        .where(IroAssignment.child_id.in_(ids), IroAssignment.ended_at.is_(None))
    ):
        rows[child_id].iro_name = iro_name
    upcoming = (Review.status == "scheduled", Review.scheduled_for >= today, Review.child_id.in_(ids))
    for child_id, when in session.execute(
        select(Review.child_id, func.min(Review.scheduled_for)).where(*upcoming).group_by(Review.child_id)
    ):
        rows[child_id].next_review = when
    for child_id, when in session.execute(
        select(WishesSubmission.child_id, Review.scheduled_for)
        .join(Review, Review.id == WishesSubmission.review_id)
        .where(*upcoming)
    ):
        if rows[child_id].next_review == when:
            rows[child_id].views_in = True
    for child_id, count, urgent in session.execute(
        select(Concern.child_id, func.count(), func.sum(case((Concern.urgent.is_(True), 1), else_=0)))
        .where(Concern.child_id.in_(ids), Concern.status == "open")
        .group_by(Concern.child_id)
    ):
        rows[child_id].open_concerns, rows[child_id].urgent = count, int(urgent or 0)
    for child_id, count in session.execute(
        select(Review.child_id, func.count(ReviewAction.id))
        .join(ReviewAction, ReviewAction.review_id == Review.id)
        .where(
            Review.child_id.in_(ids),
            Review.status == "held",
            ReviewAction.status != "done",
            ReviewAction.due_on < today,
        )
        .group_by(Review.child_id)
    ):
        rows[child_id].late_actions = count
    for child_id, channel, opted_out in session.execute(
        select(ChannelIdentity.child_id, ChannelIdentity.channel, ChannelIdentity.opted_out)
        .where(ChannelIdentity.child_id.in_(ids))
        .order_by(ChannelIdentity.id)
    ):
        rows[child_id].channels.append((channel, opted_out))
    for child_id, when in session.execute(
        select(Message.child_id, func.max(Message.created_at))
        .where(Message.child_id.in_(ids), Message.direction == "in")
        .group_by(Message.child_id)
    ):
        rows[child_id].last_message_at = when
    return list(rows.values())


def _filtered(rows: list[CaseloadRow], name: str, query: str) -> list[CaseloadRow]:
    tests = {
        "concerns": lambda r: r.open_concerns > 0,
        "urgent": lambda r: r.urgent > 0,
        "no_views": lambda r: r.next_review is not None and not r.views_in,
        "late": lambda r: r.late_actions > 0,
        "opted_out": lambda r: r.any_opted_out,
    }
    test = tests.get(name)
    found = [r for r in rows if test is None or test(r)]
    if query:
        found = [
            r
            for r in found
            if query.casefold() in r.name.casefold() or query.casefold() in r.iro_name.casefold()
        ]
    return found


def _sorted(rows: list[CaseloadRow], by: str) -> list[CaseloadRow]:
    far = date.max
    keys = {
        "name": lambda r: r.name.casefold(),
        "review": lambda r: (r.next_review or far, r.name.casefold()),
        "recent": lambda r: (-(r.last_message_at.timestamp() if r.last_message_at else 0), r.name.casefold()),
        "attention": lambda r: (
            -r.urgent,
            -r.open_concerns,
            -r.late_actions,
            r.next_review or far,
            r.name.casefold(),
        ),
    }
    return sorted(rows, key=keys.get(by, keys["attention"]))


@bp.get("/")
@roles_required(*CHILD_DATA_ROLES)
def caseload() -> str:
    """The caseload: one row per child, what needs attention first."""
    today = utcnow().date()
    sort = request.args.get("sort", "attention")
    sort = sort if sort in SORTS else "attention"
    shown = request.args.get("show", "all")
    shown = shown if shown in FILTERS else "all"
    query = request.args.get("q", "").strip()[:100]
    rows = _sorted(_filtered(caseload_rows(db.session, current_user, today), shown, query), sort)
    audit(db.session, current_user, "viewed caseload", detail=f"{len(rows)} children")
    db.session.commit()
    return render_template(
        "inbox/caseload.html",
        rows=rows,
        today=today,
        sort=sort,
        shown=shown,
        q=query,
        sorts=SORTS,
        filters=FILTERS,
    )


def open_urgent(session: Session, staff: StaffUser) -> list[tuple[Concern, str]]:
    """Open urgent (safeguarding) concerns this member of staff may see, newest first, with names."""
    ids = visible_children(staff).with_only_columns(Child.id).scalar_subquery()
    rows = session.execute(
        select(Concern, Child.first_name)
        .join(Child, Child.id == Concern.child_id)
        .where(Concern.child_id.in_(ids), Concern.urgent.is_(True), Concern.status == "open")
        .order_by(Concern.created_at.desc(), Concern.id.desc())
    ).all()
    return [(concern, name) for concern, name in rows]


@bp.get("/urgent")
@roles_required(*CHILD_DATA_ROLES)
def urgent() -> str:
    """Open urgent (safeguarding) concerns: authority-wide for managers, own children for IROs."""
    concerns = open_urgent(db.session, current_user)
    audit(db.session, current_user, "viewed urgent queue", detail=f"{len(concerns)} concerns")
    db.session.commit()
    return render_template("inbox/urgent.html", concerns=concerns)


@bp.get("/audit")
@roles_required("iro_manager", "admin")
def audit_log() -> str:
    """Who saw or did what, newest first: managers check that every read had a reason."""
    staff_ids = (
        select(StaffUser.id).where(StaffUser.authority_id == current_user.authority_id).scalar_subquery()
    )
    events = db.session.execute(
        select(AuditEvent, StaffUser.display_name)
        .outerjoin(StaffUser, StaffUser.id == AuditEvent.staff_id)
        .where(AuditEvent.staff_id.in_(staff_ids))
        .order_by(AuditEvent.id.desc())
        .limit(500)
    ).all()
    return render_template("inbox/audit.html", events=events)
