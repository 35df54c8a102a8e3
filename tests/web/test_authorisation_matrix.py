"""Every inbox route, not a sample: another IRO and a participation worker get nothing of a child.

The routes come from the app's URL map, so a route added later is checked without anyone
remembering to add it here. Each route's other ids (review, concern, action, outbox row) are
filled with ids that really belong to the child, so the child is the only reason to refuse.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.conversations import InboundMessage, handle
from app.extensions import db
from app.models import (
    AuditEvent,
    ChannelIdentity,
    Concern,
    IroAssignment,
    LinkCode,
    Message,
    OutboxMessage,
    Review,
    ReviewAction,
    StaffNote,
    WishesSubmission,
    utcnow,
)
from tests.web.staff import RHYS, SAM, csrf_token, sign_in

JORDAN = "+447700900001"
PARAMETERS = {"child_id", "review_id", "concern_id", "action_id", "outbox_id"}
# Tables whose rows a refused request must not change.
WATCHED = (
    Message,
    Concern,
    OutboxMessage,
    Review,
    ReviewAction,
    StaffNote,
    IroAssignment,
    LinkCode,
    WishesSubmission,
)


def jordan_ids() -> dict[str, int]:
    """Real ids of Jordan's things, for every kind of id a route can take."""
    handle(InboundMessage(channel="sms", sender=JORDAN, text="I am scared at home"), inline=False)
    child = ChannelIdentity.find(db.session, "sms", JORDAN).child
    review = db.session.scalar(select(Review).where(Review.child_id == child.id).order_by(Review.id))
    held = db.session.scalar(select(Review).where(Review.child_id == child.id, Review.status == "held"))
    action = held.actions[0]
    concern = db.session.scalar(select(Concern).where(Concern.child_id == child.id))
    outbox = db.session.scalar(select(OutboxMessage).join(Message).where(Message.child_id == child.id))
    outbox.status = "dead"
    db.session.commit()
    return {
        "child_id": child.id,
        "review_id": review.id if review.status == "scheduled" else held.id,
        "concern_id": concern.id,
        "action_id": action.id,
        "outbox_id": outbox.id,
    }


def child_routes(app: Flask) -> list[tuple[str, str, str]]:
    """(method, rule, endpoint) for every inbox route that takes a child id."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/inbox") or "child_id" not in rule.arguments:
            continue
        unknown = rule.arguments - PARAMETERS
        assert not unknown, f"{rule.rule} takes {unknown}: teach this matrix which ids to use"
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, rule.rule, rule.endpoint))
    return found


def fill(rule: str, ids: dict[str, int]) -> str:
    path = rule
    for name, value in ids.items():
        path = path.replace(f"<int:{name}>", str(value)).replace(f"<{name}>", str(value))
    return path


def snapshot() -> dict[str, object]:
    db.session.expire_all()
    state: dict[str, object] = {}
    for model in WATCHED:
        state[model.__tablename__] = db.session.scalar(select(func.count()).select_from(model))
    state["concerns"] = [
        (c.status, c.assigned_to_id, c.resolved_at)
        for c in db.session.scalars(select(Concern).order_by(Concern.id))
    ]
    state["actions"] = [
        (a.description, a.owner, a.due_on, a.status)
        for a in db.session.scalars(select(ReviewAction).order_by(ReviewAction.id))
    ]
    state["reviews"] = [
        (r.scheduled_for, r.status) for r in db.session.scalars(select(Review).order_by(Review.id))
    ]
    state["outbox"] = [o.status for o in db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]
    return state


FORM = {
    "text": "changed by someone who may not",
    "body": "changed by someone who may not",
    "description": "x",
    "owner": "y",
    "due_on": (utcnow().date() + timedelta(days=3)).isoformat(),
    "status": "done",
    "scheduled_for": (utcnow().date() + timedelta(days=10)).isoformat(),
    "phone": "+447700900777",
    "assign_to": "1",
    "iro_id": "1",
}


@pytest.mark.parametrize("who", [RHYS, SAM])
def test_no_route_shows_or_changes_a_child_for_someone_who_may_not_see_them(
    demo: Flask, client: FlaskClient, who: str
) -> None:
    ids = jordan_ids()
    routes = child_routes(demo)
    assert len(routes) >= 3, "the inbox's child routes were not found"
    sign_in(client, who)
    token = csrf_token(client, "/account")
    before = snapshot()
    reads_before = db.session.scalar(select(func.count()).where(AuditEvent.action.like("viewed%")))
    for method, rule, endpoint in routes:
        path = fill(rule, ids)
        if method == "GET":
            response = client.get(path)
        else:
            response = client.open(path, method=method, data={"csrf_token": token, **FORM})
        # 404 where the child decides; 403 where the role alone does (e.g. managers-only routes).
        allowed = {403, 404}
        assert response.status_code in allowed, (
            f"{who}: {method} {path} ({endpoint}) answered {response.status_code}"
        )
        assert "Jordan" not in response.get_data(as_text=True)
    assert snapshot() == before, f"{who} changed something they may not see"
    reads_after = db.session.scalar(select(func.count()).where(AuditEvent.action.like("viewed%")))
    assert reads_after == reads_before, "no read was allowed, so no read was audited as seen"


@pytest.mark.parametrize("who", [RHYS, SAM])
def test_lists_never_name_a_child_someone_may_not_see(demo: Flask, client: FlaskClient, who: str) -> None:
    jordan_ids()
    sign_in(client, who)
    for rule in demo.url_map.iter_rules():
        if not rule.rule.startswith("/inbox") or rule.arguments or "GET" not in rule.methods:
            continue
        response = client.get(rule.rule)
        if who == SAM:
            assert response.status_code in (403, 404), f"participation worker opened {rule.rule}"
        assert "Jordan" not in response.get_data(as_text=True), f"{who} saw Jordan on {rule.rule}"
