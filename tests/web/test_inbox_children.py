"""Child admin through the test client, signed in with the real form: adding a child, changing the
IRO, review dates, linking an SMS number and issuing a Telegram link code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.conversations import InboundMessage, catalogs, handle, library
from app.extensions import db
from app.inbox.children import uk_today
from app.models import (
    AuditEvent,
    ChannelIdentity,
    Child,
    Concern,
    IroAssignment,
    LinkCode,
    Message,
    OutboxMessage,
    Review,
    StaffUser,
)
from app.review_schedule import propose_next
from tests.fakes.telegram_server import BOT_USER, FakeBotApi

from .staff import ALEX, GRACE, PRIYA, RHYS, SAM, csrf_token, post_form, sign_in

JORDAN, CERYS = "+447700900001", "+447700900002"
NEW_NUMBER = "+447700900123"


def signed_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    response = sign_in(client, email)
    assert response.status_code == 302, response.status_code
    return client


def child_by_phone(phone: str) -> Child:
    identity = ChannelIdentity.find(db.session, "sms", phone)
    assert identity is not None
    return identity.child


def staff(email: str) -> StaffUser:
    found = db.session.scalar(select(StaffUser).where(StaffUser.email == email))
    assert found is not None
    return found


def count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def audited(action: str, child_id: int) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == action, AuditEvent.child_id == child_id)
    )


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def new_child_form(**overrides: str) -> dict[str, str]:
    today = uk_today()
    return {
        "first_name": "Noor",
        "date_of_birth": "2013-05-01",
        "locale": "en",
        "looked_after_since": (today - timedelta(days=3)).isoformat(),
        "time_zone": "Europe/London",
        "phone": "07700 900123",
        **overrides,
    }


def settings(child: Child) -> str:
    return f"/inbox/children/{child.id}/settings"


def english(key: str) -> str:
    return library().messages.texts[key]


def welsh(key: str) -> str:
    return catalogs().translator("cy")(library().messages.context(key), english(key))


def say(phone: str, text: str) -> list[str]:
    return handle(InboundMessage(channel="sms", sender=phone, text=text)).replies


# -- adding a child ------------------------------------------------------------------------------


def test_an_iro_adds_a_child_with_their_first_review_from_the_timetable_and_their_number_works(
    demo: Flask,
) -> None:
    priya = signed_in(demo, PRIYA)
    caseload = priya.get("/inbox/")
    assert 'href="/inbox/children/new"' in caseload.text
    response = post_form(priya, "/inbox/children/new", "/inbox/children/new", **new_child_form())
    assert response.status_code == 302
    noor = child_by_phone(NEW_NUMBER)
    assert response.location.endswith(settings(noor))
    assert (noor.first_name, noor.locale, noor.current_iro.email) == ("Noor", "en", PRIYA)

    today = uk_today()
    expected = propose_next(today - timedelta(days=3), [], "england", today)
    assert expected is not None and expected.kind == "first"
    review = db.session.scalar(select(Review).where(Review.child_id == noor.id))
    assert (review.kind, review.status, review.scheduled_for) == ("first", "scheduled", expected.due_by)
    page = text_of(priya.get(response.location).text)
    assert f"Added. Their first review is proposed for {expected.due_by:%-d %B %Y}" in page
    assert f"the first review by {expected.due_by:%A %-d %B %Y}" in page
    assert "Noor" in priya.get("/inbox/").text
    assert audited("added child", noor.id) == 1

    # A text from the number is recognised as Noor's and answered with her IRO.
    outcome = handle(InboundMessage(channel="sms", sender=NEW_NUMBER, text="who is my IRO"))
    assert outcome.child_id == noor.id
    assert any("Priya Shah" in reply for reply in outcome.replies)


def test_a_manager_picks_the_iro_of_a_new_child(demo: Flask) -> None:
    grace = signed_in(demo, GRACE)
    page = grace.get("/inbox/children/new")
    assert '<label for="iro_id">IRO</label>' in page.text and "Rhys Evans" in page.text
    rhys = staff(RHYS)
    form = new_child_form(first_name="Ifan", locale="cy", phone="", iro_id=str(rhys.id))
    response = post_form(grace, "/inbox/children/new", "/inbox/children/new", **form)
    assert response.status_code == 302
    ifan = db.session.scalar(select(Child).order_by(Child.id.desc()).limit(1))
    assert (ifan.first_name, ifan.locale, ifan.current_iro.id, ifan.identities) == ("Ifan", "cy", rhys.id, [])
    assert "Ifan" in signed_in(demo, RHYS).get("/inbox/").text
    # Without a choice of IRO nothing is added.
    before = count(Child)
    response = post_form(grace, "/inbox/children/new", "/inbox/children/new", **{**form, "iro_id": "0"})
    assert response.status_code == 400 and "Choose the child&#39;s IRO." in response.text
    assert count(Child) == before


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("phone", "12345", "Enter a UK mobile number, like 07700 900123."),
        ("phone", "+33612345678", "Enter a UK mobile number, like 07700 900123."),
        ("phone", CERYS, "That number is already in use."),
        ("date_of_birth", "2099-01-01", "The date of birth cannot be in the future."),
        ("looked_after_since", "2099-01-01", "This date cannot be in the future."),
        ("time_zone", "Mars/Olympus", "Use a time zone name like Europe/London."),
    ],
)
def test_a_bad_or_taken_number_or_a_future_date_is_refused_and_nothing_is_stored(
    demo: Flask, field: str, value: str, error: str
) -> None:
    priya = signed_in(demo, PRIYA)
    before = (count(Child), count(ChannelIdentity), count(Review), count(IroAssignment))
    response = post_form(
        priya, "/inbox/children/new", "/inbox/children/new", **new_child_form(**{field: value})
    )
    assert response.status_code == 400
    assert error in text_of(response.text).replace("&#39;", "'")
    assert (count(Child), count(ChannelIdentity), count(Review), count(IroAssignment)) == before
    # A taken number says only that: not whose it is, nor who their IRO is.
    assert "Cerys" not in response.text and "Rhys" not in response.text


# -- changing the IRO ----------------------------------------------------------------------------


def change_iro(client: FlaskClient, child: Child, email: str):  # type: ignore[no-untyped-def]
    return post_form(client, settings(child), f"/inbox/children/{child.id}/iro", iro_id=str(staff(email).id))


def queued_to(child: Child) -> list[tuple[str, str]]:
    """(text, outbox status) of every message queued for the child through the outbox."""
    rows = db.session.execute(
        select(Message.body, OutboxMessage.status)
        .join(OutboxMessage, OutboxMessage.message_id == Message.id)
        .where(Message.child_id == child.id)
        .order_by(Message.id)
    ).all()
    return [(body, status) for body, status in rows]


def test_a_manager_changes_the_iro_concerns_follow_the_child_and_the_child_is_told_discreetly(
    demo: Flask,
) -> None:
    jordan = child_by_phone(JORDAN)
    priya, rhys = staff(PRIYA), staff(RHYS)
    db.session.add(Concern(child_id=jordan.id, category="general", detail="school", assigned_to_id=priya.id))
    db.session.commit()

    grace = signed_in(demo, GRACE)
    response = change_iro(grace, jordan, RHYS)
    assert response.status_code == 302
    page = text_of(grace.get(settings(jordan)).text)
    assert "Rhys Evans is now Jordan's IRO. 1 open concern(s) moved with them." in page.replace("&#39;", "'")

    db.session.expire_all()
    assert jordan.current_iro.id == rhys.id
    assert [a.ended_at is None for a in jordan.assignments] == [False, True]
    concern = db.session.scalar(select(Concern).where(Concern.child_id == jordan.id))
    assert concern.assigned_to_id is None and concern.status == "open"
    assert audited("changed IRO", jordan.id) == 1

    # The new IRO has the child; the old one no longer sees anything about them.
    assert "Jordan" in signed_in(demo, RHYS).get("/inbox/").text
    old = signed_in(demo, PRIYA)
    assert old.get(settings(jordan)).status_code == 404
    assert "Jordan" not in old.get("/inbox/").text

    # One discreet text waits in the outbox: no names, nothing about care, reviews or IROs.
    assert queued_to(jordan) == [(english("iro_changed"), "pending")]
    text = english("iro_changed")
    for word in ("Priya", "Rhys", "Shah", "Evans", "Jordan", "IRO", "care", "review", "officer"):
        assert word.lower() not in text.lower()
    # Replying 1 tells the child who their IRO is now.
    replies = say(JORDAN, "1")
    assert any("Rhys Evans" in r for r in replies) and not any("Priya" in r for r in replies)


def test_a_child_halfway_through_a_form_still_gets_their_new_iro_by_replying_1_and_can_carry_on(
    demo: Flask,
) -> None:
    jordan = child_by_phone(JORDAN)
    first_question = say(JORDAN, "my views")
    assert first_question
    assert change_iro(signed_in(demo, GRACE), jordan, RHYS).status_code == 302
    assert any("Rhys Evans" in r for r in say(JORDAN, "1"))
    resumed = say(JORDAN, "carry on")
    assert resumed[0] == english("resume") and resumed[-1] == first_question[-1]


def test_a_welsh_child_is_told_in_welsh(demo: Flask) -> None:
    cerys = child_by_phone(CERYS)
    assert change_iro(signed_in(demo, ALEX), cerys, PRIYA).status_code == 302
    assert welsh("iro_changed") != english("iro_changed")
    assert queued_to(cerys) == [(welsh("iro_changed"), "pending")]
    assert any("Priya Shah" in r for r in say(CERYS, "1"))


def test_the_introduction_waits_for_the_morning_in_quiet_hours(demo: Flask) -> None:
    jordan = child_by_phone(JORDAN)
    night = datetime(2026, 3, 10, 22, 30, tzinfo=ZoneInfo("Europe/London"))
    with time_machine.travel(night, tick=False):
        assert change_iro(signed_in(demo, GRACE), jordan, RHYS).status_code == 302
    outbox = db.session.scalar(
        select(OutboxMessage)
        .join(Message, Message.id == OutboxMessage.message_id)
        .where(Message.child_id == jordan.id)
    )
    assert outbox.next_attempt_at == datetime(2026, 3, 11, 8, 0)  # 08:00 in London is 08:00 UTC in March


def test_a_child_who_has_opted_out_is_not_texted_about_a_new_iro(demo: Flask) -> None:
    jordan = child_by_phone(JORDAN)
    say(JORDAN, "STOP")
    before = len(queued_to(jordan))
    grace = signed_in(demo, GRACE)
    assert change_iro(grace, jordan, RHYS).status_code == 302
    assert len(queued_to(jordan)) == before
    assert "Jordan was not sent a text (opted out)." in text_of(grace.get(settings(jordan)).text)


def test_an_iro_cannot_change_the_iro(demo: Flask) -> None:
    jordan = child_by_phone(JORDAN)
    priya = signed_in(demo, PRIYA)
    page = priya.get(settings(jordan))
    assert page.status_code == 200 and "Change IRO" not in page.text
    assert change_iro(priya, jordan, RHYS).status_code == 403
    db.session.expire_all()
    assert jordan.current_iro.email == PRIYA and queued_to(jordan) == []


# -- review dates --------------------------------------------------------------------------------


def test_the_proposed_next_review_is_scheduled_by_default_and_can_be_moved(demo: Flask) -> None:
    amir = child_by_phone("+447700900003")  # no review yet
    priya = signed_in(demo, PRIYA)
    page = priya.get(settings(amir)).text
    proposed = re.search(r'id="next-when" name="when" value="([0-9-]+)"', page)
    assert proposed, "the schedule form offers the proposed date"
    today = uk_today()
    expected = propose_next(amir.looked_after_since, [], "england", today)
    assert expected is not None and proposed.group(1) == expected.proposed.isoformat()

    response = post_form(
        priya, settings(amir), f"/inbox/children/{amir.id}/reviews", kind="next", when=proposed.group(1)
    )
    assert response.status_code == 302
    review = db.session.scalar(select(Review).where(Review.child_id == amir.id))
    assert (review.kind, review.scheduled_for) == ("first", expected.proposed)
    # A second "next" review is refused while one is booked.
    again = post_form(
        priya, settings(amir), f"/inbox/children/{amir.id}/reviews", kind="next", when=proposed.group(1)
    )
    assert again.status_code == 400 and "Move it instead." in again.text

    later = review.scheduled_for + timedelta(days=7)
    moved = post_form(
        priya, settings(amir), f"/inbox/children/{amir.id}/reviews/{review.id}", when=later.isoformat()
    )
    assert moved.status_code == 302
    db.session.expire_all()
    assert review.scheduled_for == later
    assert audited("scheduled review", amir.id) == 1 and audited("moved review", amir.id) == 1
    past = post_form(
        priya,
        settings(amir),
        f"/inbox/children/{amir.id}/reviews/{review.id}",
        when=(today - timedelta(days=1)).isoformat(),
    )
    assert past.status_code == 400 and "cannot be in the past" in past.text
    db.session.expire_all()
    assert review.scheduled_for == later


def test_an_early_review_is_booked_before_the_next_one_and_not_after_it(demo: Flask) -> None:
    jordan = child_by_phone(JORDAN)  # a review booked in 24 days
    booked = db.session.scalar(
        select(Review).where(Review.child_id == jordan.id, Review.status == "scheduled")
    )
    priya = signed_in(demo, PRIYA)
    url = f"/inbox/children/{jordan.id}/reviews"
    too_late = post_form(priya, settings(jordan), url, kind="early", when=booked.scheduled_for.isoformat())
    assert too_late.status_code == 400
    assert f"booked for {booked.scheduled_for:%-d %B %Y}" in too_late.text
    soon = uk_today() + timedelta(days=5)
    assert post_form(priya, settings(jordan), url, kind="early", when=soon.isoformat()).status_code == 302
    early = db.session.scalar(select(Review).where(Review.child_id == jordan.id, Review.kind == "early"))
    assert early is not None and early.scheduled_for == soon and early.status == "scheduled"
    # It is Jordan's next review now, for the caseload and for Jordan.
    assert f"{soon:%-d %b %Y}" in priya.get("/inbox/").text


def test_a_review_of_another_child_cannot_be_moved_through_this_child(demo: Flask) -> None:
    jordan, amir = child_by_phone(JORDAN), child_by_phone("+447700900003")
    jordans = db.session.scalar(
        select(Review).where(Review.child_id == jordan.id, Review.status == "scheduled")
    )
    priya = signed_in(demo, PRIYA)
    response = post_form(
        priya, settings(amir), f"/inbox/children/{amir.id}/reviews/{jordans.id}", when=uk_today().isoformat()
    )
    assert response.status_code == 404


# -- channels ------------------------------------------------------------------------------------


def test_an_sms_number_is_linked_and_a_taken_one_refused(demo: Flask) -> None:
    amir = child_by_phone("+447700900003")
    priya = signed_in(demo, PRIYA)
    url = f"/inbox/children/{amir.id}/sms"
    taken = post_form(priya, settings(amir), url, phone=CERYS)
    assert taken.status_code == 400 and "That number is already in use." in taken.text
    assert "Cerys" not in taken.text
    bad = post_form(priya, settings(amir), url, phone="0161 496 0000")  # a landline
    assert bad.status_code == 400 and "Enter a UK mobile number" in bad.text
    assert len(amir.identities) == 1
    assert post_form(priya, settings(amir), url, phone="07700 900123").status_code == 302
    assert handle(InboundMessage(channel="sms", sender=NEW_NUMBER, text="hello")).child_id == amir.id
    assert audited("linked SMS number", amir.id) == 1
    assert "07700 900123" in priya.get(settings(amir)).text


@pytest.fixture
def tg_demo(demo: Flask, fake_bot_api: FakeBotApi) -> Iterator[Flask]:
    demo.config.update(
        TELEGRAM_BOT_TOKEN=fake_bot_api.token,
        TELEGRAM_WEBHOOK_SECRET="test-webhook-secret_1",
        TELEGRAM_API_BASE_URL=fake_bot_api.url,
        PROVIDER_TIMEOUT_SECONDS=0.5,
    )
    yield demo
    runner = demo.extensions.pop("reviewline.telegram", None)
    if runner is not None:
        runner.close()


def test_a_telegram_code_is_shown_once_with_its_link_and_qr_code_and_then_links_a_chat(
    tg_demo: Flask,
) -> None:
    amir = child_by_phone("+447700900003")
    priya = signed_in(tg_demo, PRIYA)
    response = post_form(priya, settings(amir), f"/inbox/children/{amir.id}/telegram-code")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    code = re.search(r"Telegram code for Amir: <code>([A-Z2-9]{10})</code>", response.text).group(1)
    link = f"https://t.me/{BOT_USER['username']}?start={code}"
    assert f'<a href="{link}">{link}</a>' in response.text
    assert "<svg" in response.text and "Scan to open the chat" in response.text
    assert code not in priya.get(settings(amir)).text  # shown once
    assert count(LinkCode) == 1 and audited("link_code_issued", amir.id) == 1

    update = {
        "update_id": 9001,
        "message": {
            "message_id": 1,
            "date": 1_790_000_000,
            "chat": {"id": 5550042, "type": "private", "first_name": "A"},
            "from": {"id": 5550042, "is_bot": False, "first_name": "A", "language_code": "en"},
            "text": f"/start {code}",
        },
    }
    hook = tg_demo.test_client().post(
        "/webhooks/telegram",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": "test-webhook-secret_1"},
    )
    assert hook.status_code == 200
    chat = ChannelIdentity.find(db.session, "telegram", "5550042")
    assert chat is not None and chat.child_id == amir.id
    assert "Telegram chat, linked" in priya.get(settings(amir)).text


def test_without_telegram_the_code_is_shown_and_the_page_says_telegram_is_not_set_up(demo: Flask) -> None:
    amir = child_by_phone("+447700900003")
    priya = signed_in(demo, PRIYA)
    response = post_form(priya, settings(amir), f"/inbox/children/{amir.id}/telegram-code")
    assert response.status_code == 200
    assert re.search(r"<code>[A-Z2-9]{10}</code>", response.text)
    assert "Telegram is not set up" in response.text and "t.me" not in response.text


# -- who may do what -----------------------------------------------------------------------------


def child_routes(child: Child, review: Review) -> list[tuple[str, str, dict[str, str]]]:
    base = f"/inbox/children/{child.id}"
    soon = (uk_today() + timedelta(days=3)).isoformat()
    return [
        ("GET", f"{base}/settings", {}),
        ("POST", f"{base}/iro", {"iro_id": "1"}),
        ("POST", f"{base}/reviews", {"kind": "early", "when": soon}),
        ("POST", f"{base}/reviews/{review.id}", {"when": soon}),
        ("POST", f"{base}/sms", {"phone": "07700 900123"}),
        ("POST", f"{base}/telegram-code", {}),
    ]


def state() -> tuple[int, ...]:
    return tuple(count(m) for m in (Review, ChannelIdentity, LinkCode, IroAssignment, OutboxMessage, Child))


def test_another_iro_gets_404_and_a_participation_worker_403_on_every_route(demo: Flask) -> None:
    jordan = child_by_phone(JORDAN)
    review = db.session.scalar(
        select(Review).where(Review.child_id == jordan.id, Review.status == "scheduled")
    )
    before, moved_from = state(), review.scheduled_for
    for email, allowed in ((RHYS, (404,)), (SAM, (403,))):
        client = signed_in(demo, email)
        token = csrf_token(client, "/account")
        for method, path, data in child_routes(jordan, review):
            if method == "GET":
                response = client.get(path)
            else:
                response = client.post(path, data={"csrf_token": token, **data})
            # Changing the IRO is for managers: any IRO gets 403 there before the child is looked up.
            expected = (403,) if path.endswith("/iro") else allowed
            assert response.status_code in expected, (email, method, path, response.status_code)
            assert "Jordan" not in response.text
    sam = signed_in(demo, SAM)
    assert sam.get("/inbox/children/new").status_code == 403
    assert post_form(sam, "/account", "/inbox/children/new", **new_child_form()).status_code == 403
    db.session.expire_all()
    assert state() == before and review.scheduled_for == moved_from
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "denied", AuditEvent.child_id == jordan.id)
        )
        == 5
    )


def test_a_form_without_its_csrf_token_is_refused(demo: Flask) -> None:
    priya = signed_in(demo, PRIYA)
    jordan = child_by_phone(JORDAN)
    response = priya.post(f"/inbox/children/{jordan.id}/sms", data={"phone": "07700 900123"})
    assert response.status_code == 400
    assert ChannelIdentity.find(db.session, "sms", NEW_NUMBER) is None


def test_the_settings_page_shows_the_booked_review_and_the_timetable_and_the_read_is_audited(
    demo: Flask,
) -> None:
    jordan = child_by_phone(JORDAN)  # a regular review held 150 days ago, the next booked in 24 days
    page = text_of(signed_in(demo, PRIYA).get(settings(jordan)).text)
    booked = db.session.scalar(
        select(Review).where(Review.child_id == jordan.id, Review.status == "scheduled")
    )
    assert f"Next review booked: {booked.scheduled_for:%A %-d %B %Y} (regular)" in page
    held = db.session.scalar(select(Review).where(Review.child_id == jordan.id, Review.status == "held"))
    expected = propose_next(jordan.looked_after_since, [held.scheduled_for], "england", uk_today(), "regular")
    assert expected is not None and expected.kind == "regular" and not expected.overdue
    assert f"the regular review by {expected.due_by:%A %-d %B %Y} (six months after the last review" in page
    assert "Later than the timetable" not in page
    assert "07700 900001" in page and "IRO Priya Shah" in page
    assert audited("viewed child settings", jordan.id) == 1
