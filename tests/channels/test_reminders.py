"""Review reminders with the clock moved: who gets one, when, in which language, and who never does.

The demo data is loaded for the real today (Jordan's review in 24 days, Cerys's in 40, Amir none);
each test then travels to moments relative to those review dates with ``time-machine``.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select

from app.conversations import InboundMessage, catalogs, handle, library
from app.extensions import db
from app.models import (
    ChannelIdentity,
    Child,
    ConversationState,
    Message,
    OutboxMessage,
    ReminderSent,
    Review,
    WishesSubmission,
)
from app.outbound import queue_message
from app.reminders import ReminderSummary, schedule_reminders

from ..fakes.twilio_server import FakeTwilio
from ..write_turn_helpers import sqlite_only, waiting_for_the_turn

LONDON = ZoneInfo("Europe/London")
TOKYO = ZoneInfo("Asia/Tokyo")  # no summer time: 8 or 9 hours ahead of London
JORDAN, CERYS, AMIR = "+447700900001", "+447700900002", "+447700900003"


def english(key: str) -> str:
    return library().messages.texts[key]


def welsh(key: str) -> str:
    return catalogs().translator("cy")(library().messages.context(key), english(key))


def child(phone: str) -> Child:
    identity = ChannelIdentity.find(db.session, "sms", phone)
    assert identity is not None
    return identity.child


def review_day(phone: str) -> date:
    return db.session.scalar(
        select(Review.scheduled_for).where(Review.child_id == child(phone).id, Review.status == "scheduled")
    )


def at(day: date, hour: int, minute: int = 0, zone: ZoneInfo = LONDON) -> datetime:
    """A moment on the wall clock of a time zone."""
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def run(moment: datetime) -> ReminderSummary:
    """The scheduler as the worker runs it, with the clock at ``moment``."""
    with time_machine.travel(moment, tick=False):
        return schedule_reminders(db.session)


def say(phone: str, text: str, moment: datetime) -> list[str]:
    with time_machine.travel(moment, tick=False):
        return handle(InboundMessage(channel="sms", sender=phone, text=text)).replies


def queued(phone: str) -> list[str]:
    """What the service queued for a child without being asked (the outbox), oldest first."""
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(Message.body)
            .join(OutboxMessage, OutboxMessage.message_id == Message.id)
            .where(Message.child_id == child(phone).id)
            .order_by(Message.id)
        )
    )


def recorded(phone: str) -> dict[str, str]:
    """The child's reminder log: key -> outcome."""
    rows = db.session.scalars(select(ReminderSent).where(ReminderSent.child_id == child(phone).id))
    return {row.key: row.outcome for row in rows}


def add_review(phone: str, day: date) -> Review:
    review = Review(child_id=child(phone).id, scheduled_for=day)
    db.session.add(review)
    db.session.commit()
    return review


def test_each_child_gets_one_invite_fourteen_and_then_seven_days_before_their_review(demo: Flask) -> None:
    jordan, cerys = review_day(JORDAN), review_day(CERYS)
    invite = english("reminder_invite")

    assert run(at(jordan - timedelta(days=15), 12)).queued == 0, "too early for anyone"
    first = run(at(jordan - timedelta(days=14), 12))
    assert first.invites == 1 and queued(JORDAN) == [invite]
    assert queued(CERYS) == [] and queued(AMIR) == [], "Cerys's review is weeks later; Amir has none"

    # Later the same day, and on the days between: nothing more.
    assert run(at(jordan - timedelta(days=14), 12, 1)).queued == 0
    assert run(at(jordan - timedelta(days=14), 18)).queued == 0
    assert run(at(jordan - timedelta(days=8), 12)).queued == 0
    assert queued(JORDAN) == [invite]

    assert run(at(jordan - timedelta(days=7), 9)).invites == 1
    assert queued(JORDAN) == [invite, invite]
    assert run(at(jordan - timedelta(days=1), 12)).queued == 0, "two invitations in all, no more"

    # Cerys, whose language is Welsh, gets hers in Welsh at her own 14 and 7 days.
    run(at(cerys - timedelta(days=14), 12))
    run(at(cerys - timedelta(days=7), 12))
    assert queued(CERYS) == [welsh("reminder_invite")] * 2 and welsh("reminder_invite") != invite
    assert queued(JORDAN) == [invite, invite], "Jordan's review has passed: nothing more for Jordan"
    assert queued(AMIR) == []


def test_a_child_who_shares_their_views_is_not_invited_again(demo: Flask) -> None:
    jordan = review_day(JORDAN)
    run(at(jordan - timedelta(days=14), 12))
    assert len(queued(JORDAN)) == 1

    # The child answers the invitation the way it says: VIEWS, then sends their views.
    day = jordan - timedelta(days=10)
    for text in ("VIEWS", "4", "no", "1"):
        replies = say(JORDAN, text, at(day, 17))
    assert "Thank you" in replies[0]
    assert db.session.scalar(select(WishesSubmission.review_id)) is not None

    assert run(at(jordan - timedelta(days=7), 12)).queued == 0
    assert len(queued(JORDAN)) == 1


def test_a_review_booked_late_gets_one_invite_not_two_at_once(demo: Flask) -> None:
    today = date.today() + timedelta(days=3)
    add_review(AMIR, today + timedelta(days=5))
    summary = run(at(today, 12))
    assert summary.invites == 1 and summary.skipped == 1
    assert len(queued(AMIR)) == 1
    assert set(recorded(AMIR).values()) == {"queued", "skipped"}
    assert run(at(today + timedelta(days=1), 12)).queued == 0
    assert len(queued(AMIR)) == 1


def test_nothing_is_sent_in_quiet_hours_and_it_goes_after_eight(demo: Flask) -> None:
    due = review_day(JORDAN) - timedelta(days=14)
    late = run(at(due, 22, 30))
    assert late.queued == 0 and "Europe/London" in late.quiet_zones
    assert run(at(due + timedelta(days=1), 7, 59)).queued == 0
    assert queued(JORDAN) == []
    assert run(at(due + timedelta(days=1), 8, 5)).invites == 1, "not dropped: sent after 08:00"
    assert queued(JORDAN) == [english("reminder_invite")]
    assert run(at(due + timedelta(days=1), 20, 59)).queued == 0


def test_quiet_hours_are_the_childs_own_time_zone(demo: Flask) -> None:
    jordan = review_day(JORDAN)
    child(JORDAN).time_zone = "Asia/Tokyo"
    db.session.commit()
    add_review(AMIR, jordan)  # Amir stays in London, same review day

    # 14:00 in London is 22:00 or 23:00 in Tokyo: Amir is invited, Jordan is not.
    run(at(jordan - timedelta(days=14), 14))
    assert len(queued(AMIR)) == 1 and queued(JORDAN) == []
    # 08:05 the next morning in Tokyo is the middle of the night in London.
    run(at(jordan - timedelta(days=13), 8, 5, zone=TOKYO))
    assert len(queued(JORDAN)) == 1 and len(queued(AMIR)) == 1

    # Seven days before, 10:00 in Tokyo (01:00 or 02:00 in London): Jordan only.
    run(at(jordan - timedelta(days=7), 10, zone=TOKYO))
    assert len(queued(JORDAN)) == 2 and len(queued(AMIR)) == 1
    run(at(jordan - timedelta(days=7), 8, 5))
    assert len(queued(JORDAN)) == 2 and len(queued(AMIR)) == 2


def test_an_unknown_time_zone_falls_back_to_london_rather_than_stopping_reminders(demo: Flask) -> None:
    due = review_day(JORDAN) - timedelta(days=14)
    child(JORDAN).time_zone = "Nowhere/Atlantis"
    db.session.commit()
    assert run(at(due, 22, 30)).queued == 0
    assert run(at(due, 12)).invites == 1


def test_nothing_is_sent_after_stop(demo: Flask) -> None:
    jordan = review_day(JORDAN)
    before = jordan - timedelta(days=20)
    say(JORDAN, "my views", at(before, 16))
    say(JORDAN, "later", at(before, 16, 1))
    assert say(JORDAN, "STOP", at(before, 16, 2))

    run(at(before + timedelta(days=2), 12))  # the pause is two days old: no nudge
    run(at(jordan - timedelta(days=14), 12))
    run(at(jordan - timedelta(days=7), 12))
    assert queued(JORDAN) == []
    assert set(recorded(JORDAN).values()) == {"opted_out"}, "due, and deliberately not sent"
    assert len(recorded(JORDAN)) == 3  # the nudge and both invitations

    # Other children are not affected.
    run(at(review_day(CERYS) - timedelta(days=14), 12))
    assert len(queued(CERYS)) == 1


def test_the_newest_channel_that_has_not_opted_out_is_used(demo: Flask) -> None:
    jordan = review_day(JORDAN)
    sms = ChannelIdentity.find(db.session, "sms", JORDAN)
    telegram = ChannelIdentity.link(child(JORDAN), "telegram", "123456789")
    telegram.linked_at = sms.linked_at + timedelta(days=1)
    db.session.commit()
    run(at(jordan - timedelta(days=14), 12))
    sent = db.session.scalars(select(OutboxMessage).join(Message).where(Message.child_id == child(JORDAN).id))
    assert [(r.identity_id, r.message.channel) for r in sent] == [(telegram.id, "telegram")]

    telegram = ChannelIdentity.find(db.session, "telegram", "123456789")
    telegram.opted_out = True
    db.session.commit()
    run(at(jordan - timedelta(days=7), 12))
    sent = db.session.scalars(select(OutboxMessage).join(Message).where(Message.child_id == child(JORDAN).id))
    assert [r.message.channel for r in sent] == ["telegram", "sms"]


def test_a_message_is_never_queued_on_another_childs_phone(demo: Flask) -> None:
    amirs_phone = ChannelIdentity.find(db.session, "sms", AMIR)
    with pytest.raises(ValueError):
        queue_message(db.session, child(JORDAN).id, amirs_phone, "Hi", datetime(2026, 1, 5, 12))
    message = queue_message(db.session, child(AMIR).id, amirs_phone, "Hi", datetime(2026, 1, 5, 12))
    db.session.commit()
    assert queued(AMIR) == ["Hi"] and queued(JORDAN) == []
    assert (message.encoding, message.segments, message.status) == ("gsm7", 1, "queued")


def test_a_child_with_no_way_to_reach_them_is_recorded_not_retried(demo: Flask) -> None:
    authority_id = child(AMIR).authority_id
    unreachable = Child(authority_id=authority_id, first_name="Robin")
    db.session.add(unreachable)
    db.session.commit()
    day = date.today() + timedelta(days=60)  # after the demo children's reviews
    db.session.add(Review(child_id=unreachable.id, scheduled_for=day))
    db.session.commit()
    summary = run(at(day - timedelta(days=14), 12))
    assert summary.no_channel == 1 and summary.queued == 0
    assert run(at(day - timedelta(days=14), 12, 1)).no_channel == 0
    outcomes = db.session.scalars(select(ReminderSent.outcome).where(ReminderSent.child_id == unreachable.id))
    assert list(outcomes) == ["no_channel"]


@pytest.mark.parametrize(("phone", "locale"), [(JORDAN, "en"), (CERYS, "cy")])
def test_reminders_say_nothing_about_care_or_anyone(demo: Flask, phone: str, locale: str) -> None:
    who = child(phone)
    day = review_day(phone)
    say(phone, "my views", at(day - timedelta(days=30), 10))
    say(phone, "later", at(day - timedelta(days=30), 10, 1))
    run(at(day - timedelta(days=28), 12))  # the nudge
    run(at(day - timedelta(days=14), 12))  # the invitation
    texts = queued(phone)
    assert len(texts) == 2
    forbidden = [
        who.first_name,
        who.current_iro.display_name,
        *who.current_iro.display_name.split(),
        who.authority.name,
        who.authority.wording("role_title", locale),
        who.authority.wording("role_short", locale),
        "care",
        "review",
        "IRO",
        "reviewing officer",
        "social worker",
        "looked after",
        "gofal",
        "adolyg",
        "SAA",
    ]
    for text in texts:
        for word in forbidden:
            assert not re.search(rf"\b{re.escape(word)}", text, re.IGNORECASE), f"{word!r} in {text!r}"
    assert texts == (
        [english("reminder_nudge"), english("reminder_invite")]
        if locale == "en"
        else [welsh("reminder_nudge"), welsh("reminder_invite")]
    )


def test_a_paused_form_gets_one_nudge_a_day_later(demo: Flask) -> None:
    start = at(date.today() + timedelta(days=2), 10)
    say(AMIR, "my views", start)
    say(AMIR, "later", start)
    assert db.session.scalar(select(ConversationState.paused_at)) is not None

    assert run(start + timedelta(hours=23)).queued == 0, "not before a day has passed"
    assert run(start + timedelta(hours=25)).nudges == 1
    assert run(start + timedelta(hours=49)).queued == 0, "once per pause"
    assert queued(AMIR) == [english("reminder_nudge")]

    # Carrying on and pausing again is a new pause: one more nudge, a day later.
    say(AMIR, "carry on", start + timedelta(hours=50))
    say(AMIR, "later", start + timedelta(hours=50))
    assert run(start + timedelta(hours=51)).queued == 0
    assert run(start + timedelta(hours=75)).nudges == 1
    assert queued(AMIR) == [english("reminder_nudge")] * 2
    # A child who finished (or never paused) gets none.
    assert queued(CERYS) == [] and queued(JORDAN) == []


def test_a_nudge_waits_for_quiet_hours_and_for_a_day_after_an_invite(demo: Flask) -> None:
    jordan = review_day(JORDAN)
    paused = at(jordan - timedelta(days=16), 20)
    say(JORDAN, "my views", paused)
    say(JORDAN, "later", paused)
    assert run(paused + timedelta(hours=25, minutes=30)).queued == 0, "21:30: quiet hours"
    # The next morning is also 14 days before the review: one text, the invitation.
    summary = run(at(jordan - timedelta(days=14), 8, 5))
    assert (summary.invites, summary.nudges) == (1, 0)
    assert run(at(jordan - timedelta(days=14), 20)).queued == 0, "not two texts in a day"
    assert run(at(jordan - timedelta(days=13), 8, 10)).nudges == 1
    assert queued(JORDAN) == [english("reminder_invite"), english("reminder_nudge")]


def test_two_workers_at_the_same_moment_queue_each_reminder_once(demo: Flask) -> None:
    moment = at(review_day(JORDAN) - timedelta(days=14), 12)
    now = moment.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
    barrier = threading.Barrier(2)
    summaries: list[ReminderSummary] = []
    errors: list[BaseException] = []

    def worker() -> None:
        with demo.app_context():
            barrier.wait()
            try:
                summaries.append(schedule_reminders(db.session, now))
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(s.invites for s in summaries) == 1
    assert queued(JORDAN) == [english("reminder_invite")]
    assert schedule_reminders(db.session, now).queued == 0


@pytest.fixture
def fake(fake_twilio: FakeTwilio) -> FakeTwilio:
    return fake_twilio


def test_the_worker_command_sends_the_reminder_by_sms(demo: Flask, fake: FakeTwilio) -> None:
    demo.config.update(fake.settings())
    runner = demo.test_cli_runner()
    with time_machine.travel(at(review_day(JORDAN) - timedelta(days=15), 12), tick=False):
        assert runner.invoke(args=["worker", "--once"]).exit_code == 0
    assert fake.messages == []
    with time_machine.travel(at(review_day(JORDAN) - timedelta(days=14), 12), tick=False):
        result = runner.invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "queued 1 invite" in result.output and "sent 1" in result.output
    assert [(m["To"], m["Body"]) for m in fake.messages] == [(JORDAN, english("reminder_invite"))]


def test_more_children_than_one_page_are_each_invited_once(demo: Flask) -> None:
    """The scheduler reads and commits a page of reviews at a time: no child is missed or doubled."""
    day = review_day(JORDAN)
    authority_id = child(JORDAN).authority_id
    phones = [f"+4477009001{n:02d}" for n in range(7)]
    for n, phone in enumerate(phones):
        young = Child(
            authority_id=authority_id, first_name=f"Page {n}", locale="en", time_zone="Europe/London"
        )
        db.session.add(young)
        db.session.flush()
        identity = ChannelIdentity.link(young, "sms", phone)
        identity.opted_out = n == 3  # one of them sent STOP: recorded, not sent
        db.session.add(identity)
        db.session.add(Review(child_id=young.id, scheduled_for=day))
    db.session.commit()
    moment = at(day - timedelta(days=14), 12)
    now = moment.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)

    summary = schedule_reminders(db.session, now, batch=2)
    assert (summary.invites, summary.opted_out) == (7, 1)  # Jordan and six of the seven
    invite = english("reminder_invite")
    assert [queued(phone) for phone in phones] == [[invite]] * 3 + [[]] + [[invite]] * 3
    assert list(recorded(phones[3]).values()) == ["opted_out"]
    assert queued(JORDAN) == [invite]
    assert schedule_reminders(db.session, now, batch=2).queued == 0
    assert schedule_reminders(db.session, now + timedelta(hours=3), batch=3).queued == 0


def test_reminders_are_written_in_the_write_turn_a_web_worker_holds(demo: Flask) -> None:
    """On a SQLite file the scheduler takes turns with the web workers (app.write_turns), so
    neither waits in SQLite's busy handler, which sleeps up to 100 ms between tries."""
    sqlite_only()
    moment = at(review_day(JORDAN) - timedelta(days=14), 12).astimezone(UTC).replace(tzinfo=None)
    with waiting_for_the_turn(
        demo, lambda: schedule_reminders(db.session, now=moment), "the scheduler"
    ) as got:
        assert queued(JORDAN) == []
    assert got[0].invites == 1 and queued(JORDAN) == [english("reminder_invite")]
