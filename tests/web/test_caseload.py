"""The caseload, the urgent queue and the audit log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from app.conversations import InboundMessage, handle
from app.extensions import db
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
    utcnow,
)
from tests.web.staff import GRACE, PRIYA, RHYS, sign_in


def staff(email: str) -> StaffUser:
    return db.session.scalar(select(StaffUser).where(StaffUser.email == email))


def add_children(count: int, iro_email: str = PRIYA) -> None:
    """Children for an IRO, each with a review, an action, a concern, a message and a phone."""
    iro = staff(iro_email)
    today = utcnow().date()
    for n in range(count):
        child = Child(authority_id=iro.authority_id, first_name=f"Child {n:03d}-{iro.id}", locale="en")
        db.session.add(child)
        db.session.flush()
        db.session.add(IroAssignment(child_id=child.id, iro_id=iro.id))
        ChannelIdentity.link(child, "sms", f"+4477009{child.id:05d}")
        held = Review(child_id=child.id, scheduled_for=today - timedelta(days=90), status="held")
        db.session.add(held)
        db.session.flush()
        db.session.add(
            ReviewAction(review_id=held.id, description="x", owner="y", due_on=today - timedelta(days=1))
        )
        db.session.add(Review(child_id=child.id, scheduled_for=today + timedelta(days=n % 60 + 1)))
        db.session.add(Concern(child_id=child.id, category="message", urgent=n % 7 == 0))
        db.session.add(Message(child_id=child.id, direction="in", channel="sms", body="hello"))
    db.session.commit()


@contextmanager
def counted_queries() -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def rows(page: str) -> list[str]:
    return re.findall(r'<tr data-child="\d+">\s*<th scope="row"><a [^>]*>([^<]+)</a>', page)


def test_an_iro_sees_their_children_with_what_needs_attention(client: FlaskClient) -> None:
    handle(InboundMessage(channel="sms", sender="+447700900001", text="I am scared to go home"))
    sign_in(client, PRIYA)
    page = client.get("/inbox/").text
    assert rows(page)[:2] == ["Jordan", "Amir"], "the child with an urgent concern comes first"
    jordan = page[page.index("Jordan") : page.index("Amir")]
    assert "1 urgent" in jordan and "Not yet" in jordan and "1 late" in jordan and "SMS" in jordan
    amir = page[page.index("Amir") :]
    assert "Not set" in amir, "no review date yet"
    assert "Cerys" not in page


def test_filters_sorting_and_search(client: FlaskClient) -> None:
    handle(InboundMessage(channel="sms", sender="+447700900003", text="STOP"))
    sign_in(client, PRIYA)
    assert rows(client.get("/inbox/?show=opted_out").text) == ["Amir"]
    assert rows(client.get("/inbox/?show=late").text) == ["Jordan"]
    assert rows(client.get("/inbox/?sort=name").text) == ["Amir", "Jordan"]
    assert rows(client.get("/inbox/?q=jor").text) == ["Jordan"]
    assert "opted out" in client.get("/inbox/?show=opted_out").text


def test_a_manager_sees_every_child_of_the_authority_with_their_iro(client: FlaskClient) -> None:
    sign_in(client, GRACE)
    page = client.get("/inbox/").text
    assert sorted(rows(page)) == ["Amir", "Cerys", "Jordan"]
    assert "Rhys Evans" in page and "Priya Shah" in page


def test_the_caseload_costs_the_same_queries_for_5_children_as_for_90(
    demo: Flask, client: FlaskClient
) -> None:
    sign_in(client, RHYS)
    add_children(4, RHYS)  # Rhys now has 5 children
    client.get("/inbox/")
    with counted_queries() as few:
        assert len(rows(client.get("/inbox/").text)) == 5
    add_children(85, RHYS)  # and now 90
    with counted_queries() as many:
        assert len(rows(client.get("/inbox/").text)) == 90
    assert len(many) == len(few), f"{len(few)} queries for 5 children, {len(many)} for 90"


def test_the_urgent_queue_shows_urgent_concerns_by_visibility(demo: Flask) -> None:
    handle(InboundMessage(channel="sms", sender="+447700900002", text="he hits me"))
    rhys, priya, grace = demo.test_client(), demo.test_client(), demo.test_client()
    sign_in(rhys, RHYS)
    sign_in(priya, PRIYA)
    sign_in(grace, GRACE)
    assert "Cerys" in rhys.get("/inbox/urgent").text
    assert "Cerys" not in priya.get("/inbox/urgent").text, "another IRO's child stays private"
    assert "Cerys" in grace.get("/inbox/urgent").text, "the manager sees the whole authority"


def test_every_caseload_view_is_audited_and_managers_can_read_the_log(demo: Flask) -> None:
    priya, grace = demo.test_client(), demo.test_client()
    sign_in(priya, PRIYA)
    priya.get("/inbox/")
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "viewed caseload")).all()
    assert [e.staff_id for e in events] == [staff(PRIYA).id]
    assert priya.get("/inbox/audit").status_code == 403, "IROs cannot read the audit log"
    sign_in(grace, GRACE)
    log = grace.get("/inbox/audit").text
    assert "Priya Shah" in log and "viewed caseload" in log
