"""A child's thread in the inbox: messages in order, notes, replies via the outbox, concerns, live updates."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.conversations import InboundMessage, handle
from app.delivery import MAX_ATTEMPTS, deliver_due, twilio_sender
from app.demo import CANNED_REPLIES
from app.engine.sms import sms_cost
from app.extensions import db
from app.models import (
    AuditEvent,
    Authority,
    CannedReply,
    ChannelIdentity,
    Child,
    Concern,
    IroAssignment,
    Message,
    OutboxMessage,
    StaffNote,
    StaffUser,
    utcnow,
)
from tests.fakes.twilio_server import FakeTwilio
from tests.web.staff import PRIYA, RHYS, SAM, csrf_token, post_form, sign_in

JORDAN = "+447700900001"
CERYS = "+447700900002"


def child_id(phone: str) -> int:
    identity = ChannelIdentity.find(db.session, "sms", phone)
    assert identity is not None
    return identity.child_id


def staff(email: str) -> StaffUser:
    return db.session.scalar(select(StaffUser).where(StaffUser.email == email))


def child_says(text: str, phone: str = JORDAN, **kwargs: object) -> None:
    handle(InboundMessage(channel="sms", sender=phone, text=text), **kwargs)  # type: ignore[arg-type]


def thread_url(phone: str = JORDAN) -> str:
    return f"/inbox/children/{child_id(phone)}"


def outbox_rows() -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def audited(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def urgent_concern(phone: str = JORDAN) -> Concern:
    child_says("I do not feel safe at home", phone)
    concern = db.session.scalar(
        select(Concern)
        .where(Concern.child_id == child_id(phone), Concern.urgent.is_(True))
        .order_by(Concern.id.desc())
    )
    assert concern is not None, "the triage should have raised an urgent concern"
    return concern


def dead_letter(phone: str = JORDAN) -> OutboxMessage:
    """A message to the child that kept failing and is now in the dead-letter state."""
    child_says("HELP", phone, inline=False)
    row = outbox_rows()[-1]
    row.status, row.attempts, row.message.status = "dead", MAX_ATTEMPTS, "failed"
    db.session.commit()
    return row


@pytest.fixture
def priya(client: FlaskClient) -> FlaskClient:
    sign_in(client, PRIYA)
    return client


@pytest.fixture
def fake(fake_twilio: FakeTwilio) -> FakeTwilio:
    return fake_twilio


def test_an_iro_sees_their_childs_thread_in_order_with_a_private_note_marked(priya: FlaskClient) -> None:
    child_says("who is my IRO")
    child_says("I miss my brother a lot and want to see him more")
    post_form(priya, thread_url(), f"{thread_url()}/notes", note="Talk to the social worker about contact.")
    child_says("thank you for listening")
    page = priya.get(thread_url())
    assert page.status_code == 200
    html = page.text
    assert "<h1>Jordan</h1>" in html and "Priya Shah" in html
    thread = html[html.index('<ol class="thread"') : html.index("</ol>")]
    order = [
        thread.index("who is my IRO"),
        thread.index("Your Independent Reviewing Officer (IRO) is Priya Shah."),
        thread.index("I miss my brother a lot"),
        thread.index("Talk to the social worker about contact."),
        thread.index("thank you for listening"),
    ]
    assert order == sorted(order)
    note = re.search(r'<li class="note"[^>]*>(.*?)</li>', thread, re.S)
    assert note and "Private note" in note.group(1) and "not sent to the child" in note.group(1)
    assert "Talk to the social worker" in note.group(1)
    # The note is staff-only: nothing with its words was queued or sent to the child.
    bodies = list(db.session.scalars(select(Message.body)))
    assert not any("social worker about contact" in body for body in bodies)
    # Header: channel, next review with the review workspace, child settings.
    assert (
        re.search(rf'href="{thread_url()}/reviews/\d+"', html) and f'href="{thread_url()}/settings"' in html
    )
    assert "SMS" in html and "(in 24 days)" in html
    assert audited("viewed thread") and audited("added note")


def test_a_reply_is_queued_for_the_childs_channel_and_reaches_the_sms_provider(
    demo: Flask, priya: FlaskClient, fake: FakeTwilio
) -> None:
    demo.config.update(fake.settings())
    text = "Hello Jordan, I got your message. I will call you on Thursday."
    response = post_form(priya, thread_url(), f"{thread_url()}/reply", text=text)
    assert response.status_code == 302
    (row,) = outbox_rows()
    jordan_sms = ChannelIdentity.find(db.session, "sms", JORDAN)
    assert row.status == "pending" and row.identity_id == jordan_sms.id
    assert row.message.body == text and row.message.status == "queued"
    assert row.message.staff_id == staff(PRIYA).id
    page = priya.get(thread_url()).text
    assert (
        "Reply queued for Jordan by SMS" in page
        and "Priya Shah, to Jordan by SMS" in page
        and "Queued" in page
    )
    assert not fake.messages, "a web request never sends: the worker does"

    assert deliver_due(db.session, {"sms": twilio_sender(demo)}).sent == 1
    assert [(m["To"], m["Body"]) for m in fake.messages] == [(JORDAN, text)]
    assert "Sent</span>" in priya.get(thread_url()).text
    assert audited("replied")[0].child_id == child_id(JORDAN)


def test_a_reply_goes_to_the_most_recently_linked_channel_that_is_not_opted_out(priya: FlaskClient) -> None:
    jordan = db.session.get(Child, child_id(JORDAN))
    chat = ChannelIdentity.link(jordan, "telegram", "123456789")
    db.session.commit()
    post_form(priya, thread_url(), f"{thread_url()}/reply", text="Hi Jordan")
    assert outbox_rows()[-1].identity_id == chat.id and outbox_rows()[-1].message.channel == "telegram"
    chat = db.session.get(ChannelIdentity, chat.id)
    chat.opted_out = True
    db.session.commit()
    post_form(priya, thread_url(), f"{thread_url()}/reply", text="Hi again")
    assert outbox_rows()[-1].message.channel == "sms"


def test_a_reply_to_a_child_who_opted_out_everywhere_is_refused_and_nothing_is_queued(
    priya: FlaskClient,
) -> None:
    child_says("STOP")
    before = len(outbox_rows())
    response = post_form(priya, thread_url(), f"{thread_url()}/reply", text="Are you OK?")
    assert response.status_code == 302
    page = priya.get(thread_url()).text
    assert "Not sent: Jordan has opted out on every channel" in page and "Nothing was queued" in page
    assert len(outbox_rows()) == before
    assert (
        db.session.scalar(select(func.count()).select_from(Message).where(Message.staff_id.is_not(None))) == 0
    )
    assert audited("reply refused")


def test_a_reply_to_a_child_with_no_channel_is_refused(priya: FlaskClient) -> None:
    authority = db.session.scalar(select(Authority))
    child = Child(authority_id=authority.id, first_name="Sol")
    db.session.add(child)
    db.session.flush()
    db.session.add(IroAssignment(child_id=child.id, iro_id=staff(PRIYA).id))
    db.session.commit()
    url = f"/inbox/children/{child.id}"
    assert "has no linked channel" in priya.get(url).text
    post_form(priya, url, f"{url}/reply", text="Hello")
    assert "Not sent: Sol has no linked channel" in priya.get(url).text and outbox_rows() == []


def test_a_reply_that_is_too_long_or_empty_is_refused_with_a_clear_error(priya: FlaskClient) -> None:
    long = post_form(priya, thread_url(), f"{thread_url()}/reply", text="a" * 641)
    assert long.status_code == 400 and "at most 640 characters" in long.text
    assert "a" * 641 in long.text, "what the IRO wrote is kept so they can shorten it"
    empty = post_form(priya, thread_url(), f"{thread_url()}/reply", text="   ")
    assert empty.status_code == 400 and "Write a reply first." in empty.text
    assert outbox_rows() == []
    assert post_form(priya, thread_url(), f"{thread_url()}/reply", text="a" * 640).status_code == 302


def test_canned_replies_are_offered_and_fill_the_reply_box(priya: FlaskClient) -> None:
    page = priya.get(thread_url()).text
    canned = list(db.session.scalars(select(CannedReply).order_by(CannedReply.id)))
    assert len(canned) == 3 and all(c.title in page for c in canned)
    filled = priya.get(f"{thread_url()}?canned={canned[1].id}").text
    box = re.search(r'<textarea id="text"[^>]*>(.*?)</textarea>', filled, re.S)
    assert box and box.group(1) == canned[1].body


def test_the_demo_canned_replies_are_short_plain_sms() -> None:
    for _, body in CANNED_REPLIES:
        cost = sms_cost(body)
        assert cost.encoding == "gsm7" and cost.segments == 1, body


def test_resolving_and_assigning_a_concern_work_and_are_audited(priya: FlaskClient) -> None:
    first = urgent_concern()
    page = priya.get(thread_url()).text
    assert f'id="concern-{first.id}"' in page and "Urgent" in page
    post_form(priya, thread_url(), f"{thread_url()}/concerns/{first.id}/resolve")
    db.session.expire_all()
    first = db.session.get(Concern, first.id)
    assert first.status == "resolved" and first.resolved_by_id == staff(PRIYA).id and first.resolved_at
    assert f'id="concern-{first.id}"' not in priya.get(thread_url()).text
    assert audited("resolved concern")[0].child_id == child_id(JORDAN)

    second = urgent_concern()
    rhys = staff(RHYS)
    post_form(priya, thread_url(), f"{thread_url()}/concerns/{second.id}/assign", assignee=str(rhys.id))
    db.session.expire_all()
    assert db.session.get(Concern, second.id).assigned_to_id == rhys.id
    assert "Concern assigned to Rhys Evans" in priya.get(thread_url()).text
    assert "to Rhys Evans" in audited("assigned concern")[0].detail
    # Rhys can now open Jordan's thread, because the concern is his to deal with.
    other = priya.application.test_client()
    sign_in(other, RHYS)
    assert other.get(thread_url()).status_code == 200


def test_a_concern_cannot_be_assigned_to_a_participation_worker_or_another_authority(
    priya: FlaskClient,
) -> None:
    concern = urgent_concern()
    elsewhere = Authority(name="Other Council")
    db.session.add(elsewhere)
    db.session.flush()
    stranger = StaffUser(
        authority_id=elsewhere.id, email="x@other.invalid", display_name="X", role="iro", password_hash="x"
    )
    db.session.add(stranger)
    db.session.commit()
    for target in (staff(SAM).id, stranger.id, 999_999):
        post_form(priya, thread_url(), f"{thread_url()}/concerns/{concern.id}/assign", assignee=str(target))
        db.session.expire_all()
        assert db.session.get(Concern, concern.id).assigned_to_id is None
    assert "Not assigned" in priya.get(thread_url()).text and not audited("assigned concern")


def test_another_iro_gets_404_for_the_thread_and_every_action_and_nothing_changes(
    client: FlaskClient,
) -> None:
    concern = urgent_concern()
    dead = dead_letter()
    messages_before = db.session.scalar(select(func.count()).select_from(Message))
    sign_in(client, RHYS)
    token = csrf_token(client, "/account")
    url = thread_url()
    assert client.get(url).status_code == 404
    assert client.get(f"{url}/messages?after=0").status_code == 404
    posts = {
        f"{url}/reply": {"text": "hello from the wrong IRO"},
        f"{url}/notes": {"note": "a note by the wrong IRO"},
        f"{url}/concerns/{concern.id}/resolve": {},
        f"{url}/concerns/{concern.id}/assign": {"assignee": str(staff(RHYS).id)},
        f"{url}/outbox/{dead.id}/retry": {},
    }
    for action, data in posts.items():
        assert client.post(action, data={"csrf_token": token, **data}).status_code == 404, action
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Message)) == messages_before
    assert db.session.scalar(select(func.count()).select_from(StaffNote)) == 0
    concern = db.session.get(Concern, concern.id)
    assert concern.status == "open" and concern.assigned_to_id is None
    assert db.session.get(OutboxMessage, dead.id).status == "dead"
    assert len(audited("denied")) == 2 + len(posts)
    assert client.get("/inbox/urgent.json").json == []


def test_a_concern_or_message_of_another_child_cannot_be_reached_through_this_childs_thread(
    client: FlaskClient,
) -> None:
    cerys_concern = urgent_concern(CERYS)
    cerys_dead = dead_letter(CERYS)
    sign_in(client, PRIYA)
    token = csrf_token(client, thread_url())
    url = thread_url(JORDAN)
    assert (
        client.post(f"{url}/concerns/{cerys_concern.id}/resolve", data={"csrf_token": token}).status_code
        == 404
    )
    assert client.post(f"{url}/outbox/{cerys_dead.id}/retry", data={"csrf_token": token}).status_code == 404
    db.session.expire_all()
    assert db.session.get(Concern, cerys_concern.id).status == "open"
    assert db.session.get(OutboxMessage, cerys_dead.id).status == "dead"


def test_a_participation_worker_cannot_open_or_change_a_thread(client: FlaskClient) -> None:
    concern = urgent_concern()
    dead = dead_letter()
    sign_in(client, SAM)
    token = csrf_token(client, "/account")
    url = thread_url()
    for path in (url, f"{url}/messages?after=0", "/inbox/urgent.json"):
        response = client.get(path)
        assert response.status_code in (403, 404) and "I do not feel safe" not in response.text, path
    for action in (
        f"{url}/reply",
        f"{url}/notes",
        f"{url}/concerns/{concern.id}/resolve",
        f"{url}/concerns/{concern.id}/assign",
        f"{url}/outbox/{dead.id}/retry",
    ):
        data = {"csrf_token": token, "text": "x", "note": "x", "assignee": str(staff(SAM).id)}
        assert client.post(action, data=data).status_code in (403, 404), action
    db.session.expire_all()
    assert db.session.get(Concern, concern.id).status == "open"
    assert db.session.get(OutboxMessage, dead.id).status == "dead"
    assert db.session.scalar(select(func.count()).select_from(StaffNote)) == 0


def test_a_childs_html_is_shown_as_plain_text_in_the_page_and_the_json(priya: FlaskClient) -> None:
    child_says("<script>alert(1)</script> <b>hi</b>")
    page = priya.get(thread_url()).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &lt;b&gt;hi&lt;/b&gt;" in page
    assert "<script>alert(1)" not in page and "<b>hi</b>" not in page
    messages = priya.get(f"{thread_url()}/messages?after=0").json
    assert messages[0]["text"] == "<script>alert(1)</script> <b>hi</b>"


def test_the_poll_returns_only_messages_newer_than_the_last_one_shown(priya: FlaskClient) -> None:
    child_says("who is my IRO")
    page = priya.get(thread_url()).text
    last = int(re.search(r'data-last-id="(\d+)"', page).group(1))
    assert last > 0
    assert priya.get(f"{thread_url()}/messages?after={last}").json == []
    child_says("I do not feel safe at home")
    newer = priya.get(f"{thread_url()}/messages?after={last}").json
    assert newer and all(m["id"] > last for m in newer)
    assert newer[0]["direction"] == "in" and newer[0]["text"] == "I do not feel safe at home"
    assert newer[0]["urgent"] is True and newer[0]["channel"] == "sms" and newer[0]["status"] == "received"
    assert all(m["direction"] == "out" and not m["urgent"] for m in newer[1:])
    assert priya.get(f"{thread_url()}/messages?after={newer[-1]['id']}").json == []


def test_a_dead_letter_shows_as_not_delivered_and_retry_puts_it_back_to_pending(priya: FlaskClient) -> None:
    row = dead_letter()
    page = priya.get(thread_url()).text
    assert "Not delivered" in page and f'action="{thread_url()}/outbox/{row.id}/retry"' in page
    before = utcnow()
    post_form(priya, thread_url(), f"{thread_url()}/outbox/{row.id}/retry")
    row = outbox_rows()[-1]
    assert row.status == "pending" and row.attempts == 0 and row.message.status == "queued"
    assert before - timedelta(seconds=1) <= row.next_attempt_at <= utcnow()
    assert "The message will be sent again." in priya.get(thread_url()).text
    assert audited("retried message")


def test_the_urgent_queue_lists_urgent_concerns_as_json_for_who_may_see_them(
    priya: FlaskClient,
) -> None:
    urgent_concern(JORDAN)
    urgent_concern(CERYS)
    listed = priya.get("/inbox/urgent.json").json
    assert [c["child"] for c in listed] == ["Jordan"]
    assert listed[0]["url"] == thread_url(JORDAN)
    page = priya.get("/inbox/urgent").text
    assert 'data-poll-url="/inbox/urgent.json"' in page and "inbox.js" in page
