"""The review workspace: views with private answers apart, actions that become "my plan", updates."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.conversations import InboundMessage, handle
from app.extensions import db
from app.models import (
    AuditEvent,
    ChannelIdentity,
    Message,
    OutboxMessage,
    Review,
    ReviewAction,
    WishesSubmission,
    utcnow,
)

from .staff import GRACE, PRIYA, RHYS, SAM, csrf_token, post_form, sign_in

JORDAN = "+447700900001"
CERYS = "+447700900002"
AMIR = "+447700900003"

HOME = "I like my room but the house is <b>noisy</b>"
SECRET = "Please do not talk about my dad in the meeting"


def child_id(phone: str) -> int:
    identity = ChannelIdentity.find(db.session, "sms", phone)
    assert identity is not None
    return identity.child_id


def reviews_of(phone: str) -> tuple[Review, Review | None]:
    """The child's held review (their current "my plan") and their next scheduled one."""
    rows = db.session.scalars(select(Review).where(Review.child_id == child_id(phone))).all()
    held = next(r for r in rows if r.status == "held")
    upcoming = next((r for r in rows if r.status == "scheduled"), None)
    return held, upcoming


def url(phone: str, review: Review, tail: str = "") -> str:
    return f"/inbox/children/{child_id(phone)}/reviews/{review.id}{tail}"


def text(phone: str, words: str) -> str:
    outcome = handle(InboundMessage(channel="sms", sender=phone, text=words))
    return "\n".join(outcome.replies)


def send_views(phone: str = JORDAN) -> None:
    """The child goes through "my views" by text and sends it (with one private answer)."""
    assert "How are things going for you" in text(phone, "my views")
    assert "How are things where you live?" in text(phone, "3")
    for answer in [
        HOME,
        "I see my mum on Sundays",
        "School is fine",
        "I feel OK",
        "I play football with friends",
        "I want to be a vet",
        "Football is going well",
        "Homework club is boring",
        "My carer and my teacher",
        "Nobody else",
        "After school on a Friday",
        "Seeing my brother more",
        SECRET,
        "1",  # yes, I want to go to my review
        "no",  # no advocate
    ]:
        reply = text(phone, answer)
    assert "Here is what you told me" in reply
    assert "Thank you" in text(phone, "1")


def signed_in(demo: Flask, email: str) -> FlaskClient:
    client = demo.test_client()
    response = sign_in(client, email)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def my_plan(phone: str = JORDAN) -> str:
    reply = text(phone, "my plan")
    text(phone, "menu")
    return reply


# -- views ---------------------------------------------------------------------------------


def test_an_iro_sees_the_views_newest_first_with_private_answers_marked_apart_and_they_become_seen(
    demo: Flask,
) -> None:
    send_views()
    _, upcoming = reviews_of(JORDAN)
    older = WishesSubmission(
        child_id=child_id(JORDAN),
        review_id=upcoming.id,
        answers={"answers": {"wishes.overall": "ok", "wishes.future": "An earlier answer"}, "private": []},
        submitted_at=utcnow() - timedelta(days=3),
    )
    db.session.add(older)
    db.session.commit()
    assert db.session.scalar(select(func.count()).where(WishesSubmission.seen_at.is_not(None))) == 0

    page = signed_in(demo, PRIYA).get(url(JORDAN, upcoming)).get_data(as_text=True)

    # Each answer under the English text of the question that asked it, the child's words escaped.
    assert "How are things where you live?" in page
    assert "I like my room but the house is &lt;b&gt;noisy&lt;/b&gt;" in page and "<b>noisy" not in page
    assert "What would you like to happen in the future?" in page and "I want to be a vet" in page
    assert "Only your IRO will see this answer." in page  # the question, with the role filled in
    # The private answer sits apart, under a clear label, and nowhere else.
    private = re.findall(r'<div class="private-answers">(.*?)</div>', page, re.S)
    assert len(private) == 1
    assert "Private: for the IRO only" in private[0] and SECRET in private[0]
    assert page.count(SECRET) == 1
    assert "I like my room" not in private[0]
    # Newest first.
    assert page.index("I want to be a vet") < page.index("An earlier answer")
    assert page.count('class="tag warn">New</span>') == 2

    db.session.expire_all()
    seen = db.session.scalars(select(WishesSubmission.seen_at)).all()
    assert len(seen) == 2 and all(seen)
    again = signed_in(demo, PRIYA).get(url(JORDAN, upcoming)).get_data(as_text=True)
    assert "New</span>" not in again and "Seen " in again


def test_a_manager_reading_the_views_does_not_mark_them_seen_for_the_iro(demo: Flask) -> None:
    send_views()
    _, upcoming = reviews_of(JORDAN)
    page = signed_in(demo, GRACE).get(url(JORDAN, upcoming)).get_data(as_text=True)
    assert SECRET in page and "Not yet seen by the IRO" in page
    db.session.expire_all()
    assert db.session.scalar(select(WishesSubmission.seen_at)) is None


def test_the_print_view_has_the_views_private_marked_and_the_actions_but_no_forms_or_navigation(
    demo: Flask,
) -> None:
    send_views()
    held, upcoming = reviews_of(JORDAN)
    client = signed_in(demo, PRIYA)
    page = client.get(url(JORDAN, upcoming, "/print")).get_data(as_text=True)
    assert "How are things where you live?" in page and "&lt;b&gt;noisy" in page
    private = re.findall(r'<div class="private-answers">(.*?)</div>', page, re.S)
    assert len(private) == 1 and SECRET in private[0] and "Private: for the IRO only" in private[0]
    assert "<form" not in page and "<nav" not in page and "<button" not in page
    assert page.count("<h1") == 1

    held_page = client.get(url(JORDAN, held, "/print")).get_data(as_text=True)
    assert "Get you a laptop for school work" in held_page and "(late)" in held_page
    assert "<form" not in held_page
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.child_id == child_id(JORDAN)))
    assert "viewed review print" in list(actions)


# -- actions and "my plan" -----------------------------------------------------------------


def test_an_action_added_to_the_held_review_and_then_changed_is_what_the_child_sees_in_my_plan(
    demo: Flask,
) -> None:
    held, _ = reviews_of(JORDAN)
    client = signed_in(demo, PRIYA)
    assert "Join the after-school art club" not in my_plan()

    page = url(JORDAN, held)
    response = post_form(
        client,
        page,
        page + "/actions",
        description="Join the after-school art club",
        owner="your carer",
        due_on=(date.today() + timedelta(days=20)).isoformat(),
        status="agreed",
    )
    assert response.status_code == 302
    assert "Join the after-school art club - your carer - by" in my_plan()
    assert "Join the after-school art club" in client.get(page).get_data(as_text=True)

    action = db.session.scalar(
        select(ReviewAction).where(ReviewAction.review_id == held.id).order_by(ReviewAction.id.desc())
    )
    prefix = f"action{action.id}-"
    response = post_form(
        client,
        page,
        f"{page}/actions/{action.id}",
        **{
            prefix + "description": "Join the art club on Tuesdays",
            prefix + "owner": "your carer and you",
            prefix + "due_on": (date.today() - timedelta(days=2)).isoformat(),
            prefix + "status": "agreed",
        },
    )
    assert response.status_code == 302
    plan = my_plan()
    assert "Join the after-school art club" not in plan
    assert "Join the art club on Tuesdays - your carer and you - was due" in plan and "- late" in plan
    assert 'class="tag urgent">Late</span>' in client.get(page).get_data(as_text=True)

    post_form(
        client,
        page,
        f"{page}/actions/{action.id}",
        **{
            prefix + "status": "done",
            prefix + "description": "Join the art club on Tuesdays",
            prefix + "owner": "your carer and you",
        },
    )
    assert "Join the art club on Tuesdays - your carer and you - done" in my_plan()
    db.session.expire_all()
    assert db.session.get(ReviewAction, action.id).completed_on == date.today()
    audited = list(
        db.session.scalars(select(AuditEvent.action).where(AuditEvent.child_id == child_id(JORDAN)))
    )
    assert "added review action" in audited and audited.count("changed review action") == 2


def test_marking_the_next_review_held_makes_its_actions_the_childs_plan(demo: Flask) -> None:
    _, upcoming = reviews_of(JORDAN)
    client = signed_in(demo, PRIYA)
    page = url(JORDAN, upcoming)
    assert "Mark review held" in client.get(page).get_data(as_text=True)
    post_form(
        client, page, page + "/actions", description="Choose a new bike", owner="your IRO", status="agreed"
    )
    assert "Choose a new bike" not in my_plan()  # not held yet: the last held review is still the plan

    response = post_form(client, page, page + "/held")
    assert response.status_code == 302
    followed = client.get(page).get_data(as_text=True)
    assert "Review marked as held" in followed and "Mark review held" not in followed
    plan = my_plan()
    assert "Choose a new bike - your IRO - " in plan and "laptop" not in plan
    db.session.expire_all()
    review = db.session.get(Review, upcoming.id)
    assert review.status == "held" and review.scheduled_for == utcnow().date()  # held today, not in 24 days


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"description": " ", "owner": "your carer"}, "Say what needs to happen."),
        ({"description": "Something", "owner": ""}, "Say who will do it."),
        ({"description": "x" * 301, "owner": "your carer"}, "Keep it to 300 characters or fewer."),
        ({"description": "Something", "owner": "your carer", "due_on": "2026-02-31"}, "Give a real date"),
        ({"description": "Something", "owner": "your carer", "due_on": "next week"}, "Give a real date"),
    ],
)
def test_an_action_that_is_not_complete_is_refused_with_a_clear_error(
    demo: Flask, fields: dict[str, str], error: str
) -> None:
    held, _ = reviews_of(JORDAN)
    client = signed_in(demo, PRIYA)
    before = db.session.scalar(select(func.count()).select_from(ReviewAction))
    page = url(JORDAN, held)
    response = post_form(client, page, page + "/actions", status="agreed", **fields)
    assert response.status_code == 400 and error in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(ReviewAction)) == before

    action = held.actions[0]
    prefix = f"action{action.id}-"
    response = post_form(
        client, page, f"{page}/actions/{action.id}", **{prefix + k: v for k, v in fields.items()}
    )
    assert response.status_code == 400 and error in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(ReviewAction, action.id).description == "Start swimming lessons on Saturdays"


# -- updates to the child ------------------------------------------------------------------


UPDATE = "Hi Jordan, I asked your social worker about the laptop. It is ordered and comes next week."


def test_an_update_is_queued_as_written_for_the_childs_latest_channel_and_refused_when_there_is_none(
    demo: Flask,
) -> None:
    held, _ = reviews_of(JORDAN)
    client = signed_in(demo, PRIYA)
    page = url(JORDAN, held)
    response = post_form(client, page, page + "/update", message=UPDATE)
    assert response.status_code == 302
    assert "Update queued to Jordan by SMS" in client.get(page).get_data(as_text=True)
    message = db.session.scalar(
        select(Message).where(Message.direction == "out", Message.staff_id.is_not(None))
    )
    assert message.body == UPDATE and message.child_id == child_id(JORDAN) and message.channel == "sms"
    outbox = db.session.scalar(select(OutboxMessage).where(OutboxMessage.message_id == message.id))
    sms = ChannelIdentity.find(db.session, "sms", JORDAN)
    assert outbox.status == "pending" and outbox.identity_id == sms.id
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sent review update")) is not None

    # A Telegram chat linked later is the channel the child uses now.
    from app.models import Child

    jordan = db.session.get(Child, child_id(JORDAN))
    chat = ChannelIdentity.link(jordan, "telegram", "555001")
    chat.linked_at = utcnow() + timedelta(seconds=5)
    db.session.commit()
    post_form(client, page, page + "/update", message="Second update")
    latest = db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc()))
    assert latest.identity_id == chat.id and latest.message.body == "Second update"

    # Opted out everywhere: nothing can be sent, and the IRO is told so.
    sms.opted_out = chat.opted_out = True
    db.session.commit()
    before = db.session.scalar(select(func.count()).select_from(OutboxMessage))
    assert "cannot be sent" in client.get(page).get_data(as_text=True)
    response = post_form(client, page, page + "/update", message="Third update")
    assert response.status_code == 409
    assert "Not sent: Jordan has no linked channel that can receive messages" in response.get_data(
        as_text=True
    )
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == before

    response = post_form(client, page, page + "/update", message="   ")
    assert response.status_code == 400 and "Write the update before sending it." in response.get_data(
        as_text=True
    )


# -- who may see what ----------------------------------------------------------------------


def routes(phone: str, review: Review, action: ReviewAction) -> tuple[list[str], list[str]]:
    """Every GET and POST route of the workspace for this child and review."""
    base = url(phone, review)
    gets = [f"/inbox/children/{child_id(phone)}/reviews", base, base + "/print"]
    posts = [base + "/actions", f"{base}/actions/{action.id}", base + "/held", base + "/update"]
    return gets, posts


def snapshot() -> tuple:
    db.session.expire_all()
    return (
        db.session.scalar(select(func.count()).select_from(ReviewAction)),
        tuple(db.session.scalars(select(ReviewAction.description).order_by(ReviewAction.id))),
        tuple(db.session.scalars(select(Review.status).order_by(Review.id))),
        db.session.scalar(select(func.count()).select_from(Message)),
        tuple(db.session.scalars(select(WishesSubmission.seen_at))),
    )


def post_everything(client: FlaskClient, token: str, posts: list[str], action: ReviewAction) -> list[int]:
    prefix = f"action{action.id}-"
    data = {
        "csrf_token": token,
        "description": "Taken over",
        "owner": "someone",
        "status": "done",
        "message": "Hello from someone else",
        prefix + "description": "Taken over",
        prefix + "owner": "someone",
        prefix + "status": "done",
    }
    return [client.post(path, data=data).status_code for path in posts]


def test_another_iro_gets_404_on_every_route_and_nothing_changes(demo: Flask) -> None:
    send_views()
    held, upcoming = reviews_of(JORDAN)
    client = signed_in(demo, RHYS)
    before = snapshot()
    for review in (held, upcoming):
        gets, posts = routes(JORDAN, review, held.actions[0])
        assert [client.get(path).status_code for path in gets] == [404] * len(gets)
        assert post_everything(client, csrf_token(client, "/account"), posts, held.actions[0]) == [404] * len(
            posts
        )
    assert snapshot() == before
    denied = db.session.scalars(
        select(AuditEvent.action).where(AuditEvent.child_id == child_id(JORDAN))
    ).all()
    assert denied and set(denied) == {"denied"}


def test_a_participation_worker_is_refused_every_route(demo: Flask) -> None:
    send_views()
    held, upcoming = reviews_of(JORDAN)
    client = signed_in(demo, SAM)
    before = snapshot()
    gets, posts = routes(JORDAN, upcoming, held.actions[0])
    for path in gets:
        response = client.get(path)
        assert response.status_code in (403, 404) and SECRET not in response.get_data(as_text=True)
    assert set(post_everything(client, csrf_token(client, "/account"), posts, held.actions[0])) <= {403, 404}
    assert snapshot() == before


def test_a_review_or_action_of_another_child_under_this_childs_url_is_404(demo: Flask) -> None:
    send_views()
    jordan_held, jordan_next = reviews_of(JORDAN)
    cerys_held, _ = reviews_of(CERYS)
    client = signed_in(demo, PRIYA)
    before = snapshot()
    amir = child_id(AMIR)  # also Priya's child: she may see him, but not Jordan's reviews under his URL
    for child, review in ((amir, jordan_next), (amir, jordan_held), (child_id(JORDAN), cerys_held)):
        base = f"/inbox/children/{child}/reviews/{review.id}"
        assert client.get(base).status_code == 404
        assert client.get(base + "/print").status_code == 404
        posts = [
            base + "/actions",
            f"{base}/actions/{review.actions[0].id if review.actions else 1}",
            base + "/held",
            base + "/update",
        ]
        assert (
            post_everything(client, csrf_token(client, "/account"), posts, jordan_held.actions[0])
            == [404] * 4
        )
    # An action of Jordan's held review, under his next review's URL.
    action = jordan_held.actions[0]
    path = f"{url(JORDAN, jordan_next)}/actions/{action.id}"
    assert post_everything(client, csrf_token(client, "/account"), [path], action) == [404]
    assert snapshot() == before


def test_a_child_with_no_reviews_gets_a_page_saying_so(demo: Flask) -> None:
    client = signed_in(demo, PRIYA)
    response = client.get(f"/inbox/children/{child_id(AMIR)}/reviews")
    assert response.status_code == 200 and "No reviews are recorded for Amir yet" in response.get_data(
        as_text=True
    )
    _, upcoming = reviews_of(JORDAN)
    response = client.get(f"/inbox/children/{child_id(JORDAN)}/reviews")
    assert response.status_code == 302 and response.location.endswith(url(JORDAN, upcoming))


def test_the_workspace_switches_between_the_childs_reviews(demo: Flask) -> None:
    held, upcoming = reviews_of(JORDAN)
    page = signed_in(demo, PRIYA).get(url(JORDAN, upcoming)).get_data(as_text=True)
    assert f'href="{url(JORDAN, held)}"' in page
    assert re.search(rf'href="{re.escape(url(JORDAN, upcoming))}" aria-current="page"', page)
    assert f'href="{url(JORDAN, upcoming, "/print")}"' in page
