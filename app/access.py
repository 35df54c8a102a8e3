"""Who may see which child: the one authorisation function every staff read of a child's data uses.

- An IRO sees the children they are the current reviewing officer for, and a child whose concern
  has been assigned to them.
- An IRO manager (and an admin) sees every child of their authority.
- A participation worker sees no child's data at all.

``child_for_staff`` is the gate: it answers 404 (never 403, which would confirm the child exists)
for a child the member of staff may not see, and writes an audit row for every read it allows.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, request
from flask_login import current_user
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from app.models import AuditEvent, Child, Concern, IroAssignment, StaffUser, utcnow

F = TypeVar("F", bound=Callable[..., Any])
CHILD_DATA_ROLES = ("iro", "iro_manager", "admin")


def visible_children(staff: StaffUser) -> Select[tuple[Child]]:
    """A query for the children this member of staff may see (none for participation workers)."""
    query = select(Child).where(Child.authority_id == staff.authority_id)
    if staff.role not in CHILD_DATA_ROLES:
        return query.where(Child.id.is_(None))
    if staff.is_manager:
        return query
    current = select(IroAssignment.child_id).where(
        IroAssignment.iro_id == staff.id, IroAssignment.ended_at.is_(None)
    )
    assigned = select(Concern.child_id).where(
        Concern.assigned_to_id == staff.id, Concern.resolved_at.is_(None)
    )
    return query.where(or_(Child.id.in_(current), Child.id.in_(assigned)))


def may_see(session: Session, staff: StaffUser, child_id: int) -> bool:
    return (
        session.scalar(visible_children(staff).where(Child.id == child_id).with_only_columns(Child.id))
        is not None
    )


def audit(
    session: Session, staff: StaffUser | None, action: str, child_id: int | None = None, detail: str = ""
) -> None:
    """Record who did or saw what (rows are only ever added)."""
    session.add(
        AuditEvent(
            at=utcnow(),
            staff_id=staff.id if staff else None,
            child_id=child_id,
            action=action[:60],
            detail=detail[:500],
        )
    )


def child_for_staff(
    session: Session, staff: StaffUser, child_id: int, purpose: str, *, audit_read: bool = True
) -> Child:
    """The child, if this member of staff may see them (else 404); the read is audited.

    ``audit_read=False`` is for a caller that audits the read itself once it knows whether
    anything was shown (a page polling for new messages); a refusal is always audited.
    """
    if not may_see(session, staff, child_id):
        audit(session, staff, "denied", child_id, f"{purpose} {request.path}" if request else purpose)
        session.commit()
        abort(404)
    child = session.get(Child, child_id)
    assert child is not None
    if audit_read:
        audit(session, staff, f"viewed {purpose}", child_id, request.path if request else "")
    return child


def roles_required(*roles: str) -> Callable[[F], F]:
    """Allow a view only to signed-in staff with one of these roles (403 for other roles)."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                from flask import current_app

                return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator
