"""The outbox worker sends through the real twilio client to a fake Twilio server on 127.0.0.1."""

from __future__ import annotations

import threading
from contextlib import nullcontext
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from app.conversations import InboundMessage, handle
from app.delivery import LEASE, MAX_ATTEMPTS, claim, deliver_due, retry_dead, twilio_sender
from app.extensions import db
from app.models import ChannelIdentity, OutboxMessage, utcnow
from app.write_turns import write_turn

from ..fakes.twilio_server import FakeTwilio
from ..write_turn_helpers import assert_sqlite_lock_free, sqlite_only, waiting_for_the_turn

JORDAN = "+447700900001"


@pytest.fixture
def fake(fake_twilio: FakeTwilio) -> FakeTwilio:
    return fake_twilio


@pytest.fixture
def sms_app(demo: Flask, fake: FakeTwilio) -> Flask:
    demo.config.update(fake.settings())
    return demo


def queue(text: str = "who is my iro") -> list[str]:
    """A message whose replies go to the outbox (as Telegram and staff replies will)."""
    return handle(InboundMessage(channel="sms", sender=JORDAN, text=text), inline=False).replies


def rows() -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def senders(app: Flask) -> dict:
    return {"sms": twilio_sender(app)}


def test_queued_replies_reach_the_provider_in_order_and_are_recorded(
    sms_app: Flask, fake: FakeTwilio
) -> None:
    replies = queue()
    result = deliver_due(db.session, senders(sms_app))
    assert result.sent == len(replies)
    assert [m["Body"] for m in fake.messages] == replies
    assert {m["To"] for m in fake.messages} == {JORDAN} and fake.messages[0]["From"] == "+447700900500"
    assert all(r.status == "sent" and r.message.provider_id.startswith("SM") for r in rows())


def test_a_messaging_service_is_used_when_the_sender_is_one(sms_app: Flask, fake: FakeTwilio) -> None:
    sms_app.config["TWILIO_FROM"] = "MG1234"
    queue()
    deliver_due(db.session, senders(sms_app))
    assert fake.messages[0]["MessagingServiceSid"] == "MG1234" and "From" not in fake.messages[0]


def test_a_provider_outage_delays_but_loses_nothing_and_sends_nothing_twice(
    sms_app: Flask, fake: FakeTwilio
) -> None:
    replies = queue()
    fake.fail_next = 5
    now = utcnow()
    first = deliver_due(db.session, senders(sms_app), now=now)
    assert first.retrying > 0 and all(r.next_attempt_at > now for r in rows() if r.status == "pending")
    for minutes in range(1, 30):
        deliver_due(db.session, senders(sms_app), now=now + timedelta(minutes=minutes))
    assert [r.status for r in rows()] == ["sent"] * len(replies)
    assert sorted(m["Body"] for m in fake.messages) == sorted(replies)


def test_a_refused_connection_is_retried_not_raised(sms_app: Flask) -> None:
    sms_app.config["TWILIO_API_BASE_URL"] = "http://127.0.0.1:9"  # nothing listens there
    queue()
    result = deliver_due(db.session, senders(sms_app))
    assert result.sent == 0 and result.retrying == len(rows())
    assert "ConnectionError" in rows()[0].last_error


def test_a_message_that_keeps_failing_is_dead_lettered_and_can_be_retried(
    sms_app: Flask, fake: FakeTwilio
) -> None:
    queue("HELP")
    fake.fail_next = 10_000
    now = utcnow()
    for hour in range(MAX_ATTEMPTS + 2):
        deliver_due(db.session, senders(sms_app), now=now + timedelta(hours=hour))
    (row,) = rows()
    assert row.status == "dead" and row.attempts == MAX_ATTEMPTS and row.message.status == "failed"
    fake.fail_next = 0
    retry_dead(db.session, row.id, now=now + timedelta(hours=20))
    db.session.commit()
    deliver_due(db.session, senders(sms_app), now=now + timedelta(hours=20))
    assert rows()[0].status == "sent" and len(fake.messages) == 1


def test_rows_claimed_by_a_worker_that_died_are_sent_once_the_lease_expires(
    sms_app: Flask, fake: FakeTwilio
) -> None:
    replies = queue()
    now = utcnow()
    claimed = claim(db.session, now, batch=100)  # ... and then the worker is killed
    assert len(claimed) == len(replies)
    assert deliver_due(db.session, senders(sms_app), now=now + timedelta(seconds=5)).sent == 0
    later = deliver_due(db.session, senders(sms_app), now=now + LEASE + timedelta(seconds=1))
    assert later.sent == len(replies) and len(fake.messages) == len(replies)


def test_nothing_is_sent_to_a_child_who_opted_out(sms_app: Flask, fake: FakeTwilio) -> None:
    queue()
    ChannelIdentity.find(db.session, "sms", JORDAN).opted_out = True
    db.session.commit()
    deliver_due(db.session, senders(sms_app))
    assert fake.messages == [] and all(r.status == "pending" for r in rows())


def test_the_worker_command_delivers_the_outbox(sms_app: Flask, fake: FakeTwilio) -> None:
    replies = queue()
    result = sms_app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert f"sent {len(replies)}" in result.output and len(fake.messages) == len(replies)


def test_delivery_status_callbacks_update_the_sent_message(sms_app: Flask, fake: FakeTwilio) -> None:
    from twilio.request_validator import RequestValidator

    queue("HELP")
    deliver_due(db.session, senders(sms_app))
    sid = rows()[0].message.provider_id
    client = sms_app.test_client()
    url = "http://localhost/webhooks/twilio/status"
    for state in ("sent", "delivered"):
        data = {"MessageSid": sid, "MessageStatus": state, "AccountSid": "AC123"}
        signature = RequestValidator("token").compute_signature(url, data)
        response = client.post(
            "/webhooks/twilio/status", data=data, headers={"X-Twilio-Signature": signature}
        )
        assert response.status_code == 204
    assert rows()[0].message.status == "delivered"
    forged = client.post("/webhooks/twilio/status", data={"MessageSid": sid, "MessageStatus": "failed"})
    assert forged.status_code == 403 and rows()[0].message.status == "delivered"


@pytest.mark.parametrize("turns", [True, False], ids=["with write turns", "without"])
def test_workers_claiming_at_the_same_time_each_get_different_rows_and_together_all(
    sms_app: Flask, monkeypatch: pytest.MonkeyPatch, turns: bool
) -> None:
    if not turns:  # the database alone keeps them apart (on SQLite, BEGIN IMMEDIATE)
        monkeypatch.setattr("app.write_turns.write_turn", lambda engine: nullcontext())
    for _ in range(4):
        queue()
    due = {r.id for r in rows() if r.status == "pending"}
    assert len(due) >= 8
    now = utcnow()
    claimed: list[list[int]] = [[], []]
    start = threading.Barrier(2)

    def worker(index: int) -> None:
        with sms_app.app_context():
            start.wait()
            while batch := claim(db.session, now, batch=3):
                claimed[index] += [item.outbox.id for item in batch]
            db.session.remove()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not set(claimed[0]) & set(claimed[1])
    assert sorted(claimed[0] + claimed[1]) == sorted(due)
    assert all(r.lease_until == now + LEASE for r in rows() if r.id in due)


def test_a_row_another_worker_is_claiming_is_skipped_not_waited_for(sms_app: Flask) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: there is nothing to skip")
    queue()
    due = [r.id for r in rows() if r.status == "pending"]
    assert len(due) >= 2
    with db.engine.connect() as other:  # another worker, in the middle of its claim
        other.execute(text("SELECT id FROM outbox_message WHERE id = :id FOR UPDATE"), {"id": due[0]})
        db.session.execute(text("SET LOCAL lock_timeout = '5s'"))  # waiting would fail, not hang
        got = [item.outbox.id for item in claim(db.session, utcnow(), batch=100)]
        other.rollback()
    assert got == due[1:]


def test_a_claim_gives_the_rows_in_queue_order_each_child_one_recipient_and_a_new_chat_its_address(
    sms_app: Flask,
) -> None:
    replies = queue() + queue("menu")
    handle(InboundMessage(channel="telegram", sender="424242", text="hello"), inline=False)
    claimed = claim(db.session, utcnow(), batch=100)
    assert [item.outbox.id for item in claimed] == [row.id for row in rows()]
    jordans = [item for item in claimed if item.outbox.identity_id is not None]
    assert [item.outbox.message.body for item in jordans] == replies
    # One recipient for all of a child's rows: Twilio's "opted out" on one holds the rest.
    assert all(item.identity is jordans[0].identity for item in jordans)
    assert jordans[0].identity.address == JORDAN and not jordans[0].identity.opted_out
    chat = [item for item in claimed if item.outbox.identity_id is None]
    assert chat and all(item.identity.address == "424242" and item.identity.id is None for item in chat)


def test_a_claim_reads_each_value_as_its_column_does(sms_app: Flask) -> None:
    """Choices, a STOP's confirmation and an opt-out come back as a list and as true or false,
    the text decrypted, on both databases (SQLite's claim reads its rows as one JSON value)."""
    queue()
    first, *rest = rows()
    first.buttons = [["1", "Who is my IRO?"], ["2", "Ask for an advocate"]]
    first.confirms_opt_out = True
    first.attempts = 2
    ChannelIdentity.find(db.session, "sms", JORDAN).opted_out = True
    db.session.commit()
    claimed = {item.outbox.id: item for item in claim(db.session, utcnow(), batch=100)}
    got = claimed[first.id]
    assert got.outbox.buttons == [["1", "Who is my IRO?"], ["2", "Ask for an advocate"]]
    assert got.outbox.confirms_opt_out is True and got.outbox.attempts == 2
    assert got.identity.opted_out is True and got.identity.address == JORDAN
    assert got.outbox.message.channel == "sms" and got.outbox.message.body == first.message.body
    assert rest and all(
        claimed[row.id].outbox.buttons is None and claimed[row.id].outbox.confirms_opt_out is False
        for row in rest
    )


def test_a_claim_waits_for_the_write_turn_a_web_worker_holds(sms_app: Flask) -> None:
    """On SQLite the worker takes turns with the web workers (app.write_turns), so neither waits
    in SQLite's busy handler, which sleeps up to 100 ms between tries."""
    sqlite_only()
    queue()
    with waiting_for_the_turn(sms_app, lambda: claim(db.session, utcnow(), batch=100), "the claim") as got:
        assert all(row.lease_until is None for row in rows())
        # ... and it waits without holding SQLite's lock, which the turn's holder takes at once.
        assert_sqlite_lock_free()
    claimed = [item.outbox.id for item in got[0]]
    assert sorted(claimed) == [row.id for row in rows()] and all(row.lease_until for row in rows())


@pytest.mark.parametrize("concurrency", [1, 4])
def test_the_worker_writes_what_was_sent_in_its_turn(
    sms_app: Flask, fake: FakeTwilio, concurrency: int
) -> None:
    """The worker's record of what the provider took waits for the write turn too (one send at a
    time, or in rounds), and is written as soon as the turn is free."""
    sqlite_only()
    replies = queue()
    accepted, go_on = threading.Event(), threading.Event()

    def first_accepted(message: dict[str, str]) -> None:
        accepted.set()
        go_on.wait(10)

    fake.on_accept = first_accepted
    results = []

    def worker() -> None:
        with sms_app.app_context():
            results.append(deliver_due(db.session, senders(sms_app), concurrency=concurrency))
            db.session.remove()

    thread = threading.Thread(target=worker)
    thread.start()
    assert accepted.wait(10)
    with write_turn(db.engine):
        go_on.set()
        thread.join(0.5)  # the results would be written within RECORD_WAIT (0.05 s)
        assert thread.is_alive() and fake.messages
        assert all(row.status == "pending" for row in rows())
    thread.join(10)
    assert results[0].sent == len(replies) and all(row.status == "sent" for row in rows())


def test_a_claim_that_fails_leaves_nothing_leased_and_nothing_locked(
    sms_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_only()
    queue()
    monkeypatch.setattr("app.delivery._SQLITE_LEASE", text("UPDATE no_such_table SET lease = :lease"))
    with pytest.raises(OperationalError):
        claim(db.session, utcnow(), batch=100)
    assert_sqlite_lock_free()  # SQLite's lock was let go ...
    with write_turn(db.engine):  # ... and the turn (this would wait if the claim still held it)
        pass
    monkeypatch.undo()
    assert all(row.lease_until is None for row in rows())
    assert len(claim(db.session, utcnow(), batch=100)) == len(rows())  # the session still works


def test_a_claim_commits_what_its_caller_left_open_first(sms_app: Flask) -> None:
    """A write sent but not committed holds SQLite's lock: the claim commits it before it waits
    for the write turn (and BEGIN IMMEDIATE would refuse to start inside it)."""
    queue()
    first = rows()[0]
    first.attempts = 3
    db.session.flush()  # sent, not committed
    claimed = claim(db.session, utcnow(), batch=100)
    assert len(claimed) == len(rows()) and rows()[0].attempts == 3
