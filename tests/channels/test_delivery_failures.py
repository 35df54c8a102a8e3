"""The outbox never loses a message: provider errors, timeouts, opt-outs and a killed worker.

Everything goes through the real twilio client to the fake Twilio server on 127.0.0.1. Bodies are
numbered per child, so "every message exactly once" is checked by counting (number, body) pairs at
the fake, not by trusting the database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from app import PROJECT_ROOT, delivery
from app.config import load_settings
from app.conversations import InboundMessage, handle
from app.delivery import FRESH_CHECK, LEASE, MAX_ATTEMPTS, MOST_UNWRITTEN, deliver_due, twilio_sender
from app.extensions import db
from app.models import ChannelIdentity, Message, OutboxMessage, utcnow

from ..fakes.twilio_server import FakeTwilio

JORDAN, CERYS, AMIR = "+447700900001", "+447700900002", "+447700900003"
TIMEOUT = 0.2  # PROVIDER_TIMEOUT_SECONDS in these tests; the fake hangs for much longer


@pytest.fixture
def fake(fake_twilio: FakeTwilio) -> FakeTwilio:
    return fake_twilio


@pytest.fixture
def sms_app(demo: Flask, fake: FakeTwilio) -> Flask:
    demo.config.update(
        **fake.settings(),
        PROVIDER_TIMEOUT_SECONDS=TIMEOUT,
    )
    return demo


def senders(app: Flask) -> dict:
    return {"sms": twilio_sender(app)}


def identity(number: str) -> ChannelIdentity:
    found = ChannelIdentity.find(db.session, "sms", number)
    assert found is not None
    return found


def queue_numbered(counts: dict[str, int]) -> list[tuple[str, str]]:
    """Outbox rows with distinct bodies, interleaved between children as real traffic is.

    Returns (number, body) in the order the rows were written.
    """
    written = []
    for i in range(max(counts.values())):
        for number, count in counts.items():
            if i < count:
                ident = identity(number)
                body = f"Message {i + 1} for {number[-3:]}"
                message = Message(
                    child_id=ident.child_id, direction="out", channel="sms", body=body, status="queued"
                )
                db.session.add(OutboxMessage(message=message, identity_id=ident.id))
                written.append((number, body))
    db.session.commit()
    return written


def rows() -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def addressed(row: OutboxMessage) -> tuple[str, str]:
    return db.session.get(ChannelIdentity, row.identity_id).address, row.message.body


def at_fake(fake: FakeTwilio) -> Counter[tuple[str, str]]:
    return Counter((m["To"], m["Body"]) for m in fake.messages)


def per_child(pairs: list[tuple[str, str]], number: str) -> list[str]:
    return [body for to, body in pairs if to == number]


def test_the_provider_timeout_is_a_setting_with_a_default_of_ten_seconds(tmp_path: Path) -> None:
    assert load_settings(str(tmp_path), environ={})["PROVIDER_TIMEOUT_SECONDS"] == 10
    configured = load_settings(str(tmp_path), environ={"PROVIDER_TIMEOUT_SECONDS": "2.5"})
    assert configured["PROVIDER_TIMEOUT_SECONDS"] == 2.5


def test_sends_in_flight_together_are_to_different_children_each_in_the_order_queued(
    sms_app: Flask, fake: FakeTwilio
) -> None:
    assert load_settings(str(sms_app.instance_path), environ={})["DELIVERY_CONCURRENCY"] == 4
    written = queue_numbered({JORDAN: 4, CERYS: 4, AMIR: 4})
    sms_app.config["PROVIDER_TIMEOUT_SECONDS"] = 5  # slow, not timing out, on a busy machine too
    fake.delay_seconds = 0.05  # a slow provider: several sends overlap
    result = deliver_due(db.session, senders(sms_app), now=utcnow(), concurrency=4)
    assert result.sent == len(written)
    assert at_fake(fake) == Counter(written) and len(fake.messages) == len(written)
    delivered = [(m["To"], m["Body"]) for m in fake.messages]
    for number in (JORDAN, CERYS, AMIR):
        assert per_child(delivered, number) == per_child(written, number)
    # Three children: three sends at once, never two to one child.
    assert fake.peak_active == 3 and fake.overlaps == []
    assert all(r.status == "sent" for r in rows())
    assert {r.message.provider_id for r in rows()} == {m["sid"] for m in fake.messages}


def test_500s_then_timeouts_then_recovery_deliver_every_message_once_and_in_order(
    sms_app: Flask, fake: FakeTwilio
) -> None:
    written = queue_numbered({JORDAN: 2, CERYS: 2, AMIR: 2})
    start = utcnow()
    passes = (start + timedelta(minutes=10 * i) for i in range(100))  # every row is due at each

    fake.fail_next = 10_000  # the provider answers 500 ...
    for _ in range(3):
        result = deliver_due(db.session, senders(sms_app), now=next(passes))
        assert (result.sent, result.retrying, result.dead) == (0, len(written), 0)
    assert all("500" in r.last_error for r in rows())

    fake.fail_next, fake.hang_next = 0, 10_000  # ... then accepts connections and never answers
    for _ in range(2):
        began = time.monotonic()
        result = deliver_due(db.session, senders(sms_app), now=next(passes))
        # Each send gave up after the timeout; the worker did not wait for the hanging provider.
        assert time.monotonic() - began < len(written) * (TIMEOUT + 0.5) < fake.hang_seconds
        assert (result.sent, result.retrying, result.dead) == (0, len(written), 0)
    assert all("Timeout" in r.last_error for r in rows())
    assert fake.messages == [] and fake.requests == 5 * len(written)

    fake.hang_next = 0  # recovered
    result = deliver_due(db.session, senders(sms_app), now=next(passes))
    assert result.sent == len(written)
    assert at_fake(fake) == Counter(written) and len(fake.messages) == len(written)
    delivered = [(m["To"], m["Body"]) for m in fake.messages]
    for number in (JORDAN, CERYS, AMIR):
        assert per_child(delivered, number) == per_child(written, number)
    assert all(r.status == "sent" and r.attempts == 5 and r.last_error is None for r in rows())
    assert {r.message.provider_id for r in rows()} == {m["sid"] for m in fake.messages}
    # Nothing is left to send: another pass much later sends nothing again.
    assert deliver_due(db.session, senders(sms_app), now=start + timedelta(days=1)).sent == 0
    assert len(fake.messages) == len(written)


def test_failures_that_start_and_stop_mid_batch_still_deliver_each_message_once(
    sms_app: Flask, fake: FakeTwilio
) -> None:
    written = queue_numbered({JORDAN: 3, CERYS: 2, AMIR: 2})
    fake.fail_next, fake.hang_next = 3, 5  # 500s, then timeouts, changing in the middle of a pass
    now = utcnow()
    for attempt in range(1, MAX_ATTEMPTS):
        deliver_due(db.session, senders(sms_app), now=now + timedelta(minutes=10 * attempt))
        if all(r.status == "sent" for r in rows()):
            break
    assert [r.status for r in rows()] == ["sent"] * len(written)
    # Exactly once each. (Order is promised only within a pass: a message that failed is sent
    # after its retry delay, possibly after a later one to the same child that did not fail.)
    assert at_fake(fake) == Counter(written) and len(fake.messages) == len(written)
    assert fake.requests == len(written) + 3 + 5


@pytest.mark.parametrize("concurrency", [1, 4])
def test_twilio_21610_marks_the_child_opted_out_and_holds_their_messages_until_start(
    sms_app: Flask, fake: FakeTwilio, concurrency: int
) -> None:
    written = queue_numbered({JORDAN: 2, AMIR: 1})
    fake.unsubscribed.add(JORDAN)  # Jordan texted STOP to Twilio itself
    now = utcnow()
    deliver_due(db.session, senders(sms_app), now=now, concurrency=concurrency)
    jordan = identity(JORDAN)
    assert jordan.opted_out and jordan.opted_out_at == now
    held = [r for r in rows() if addressed(r)[0] == JORDAN]
    assert [(r.status, r.message.status) for r in held] == [("pending", "queued")] * 2
    assert "21610" in held[0].last_error
    # Amir is unaffected; Jordan's second message was not even tried.
    assert [(m["To"], m["Body"]) for m in fake.messages] == [p for p in written if p[0] == AMIR]
    assert fake.requests == 2
    for minutes in (1, 5, 30):
        deliver_due(db.session, senders(sms_app), now=now + timedelta(minutes=minutes))
    assert fake.requests == 2 and all(r.status != "dead" for r in rows())

    fake.unsubscribed.clear()  # Jordan texts START: Twilio lets messages through again ...
    start = handle(InboundMessage(channel="sms", sender=JORDAN, text="START"), inline=False)
    assert start.replies and not identity(JORDAN).opted_out  # ... and so do we
    deliver_due(db.session, senders(sms_app), now=utcnow())
    sent_to_jordan = [m["Body"] for m in fake.messages if m["To"] == JORDAN]
    assert all(reply in sent_to_jordan for reply in start.replies)


def test_nothing_reaches_a_child_between_stop_and_start_and_new_messages_flow_after_start(
    sms_app: Flask, fake: FakeTwilio
) -> None:
    def text(words: str) -> list[str]:
        return handle(InboundMessage(channel="sms", sender=JORDAN, text=words), inline=False).replies

    earlier = text("who is my iro")  # queued, not yet delivered
    assert earlier
    confirmation = text("STOP")
    assert identity(JORDAN).opted_out
    assert text("HELP") == []  # an opted-out child gets nothing back, not even help
    now = utcnow()
    for minutes in (0, 1, 2, 5):
        deliver_due(db.session, senders(sms_app), now=now + timedelta(minutes=minutes))
    # Only the reply to STOP itself goes out; what was queued before it is cancelled, never sent.
    assert [m["Body"] for m in fake.messages] == confirmation
    assert sorted({r.status for r in rows()}) == ["cancelled", "sent"]
    assert all(r.message.status == "cancelled" for r in rows() if r.status == "cancelled")
    assert {r.message.body for r in rows() if r.status == "cancelled"} == set(earlier)

    welcome = text("START")
    assert welcome and not identity(JORDAN).opted_out
    deliver_due(db.session, senders(sms_app), now=now + timedelta(minutes=5))
    delivered = [m["Body"] for m in fake.messages]
    assert all(reply in delivered for reply in welcome)
    assert not any(reply in delivered for reply in earlier), "nothing from before STOP arrives after START"
    assert text("who is my iro")  # and the conversation carries on as before
    before = len(fake.messages)
    deliver_due(db.session, senders(sms_app), now=now + timedelta(minutes=5))
    assert len(fake.messages) > before


def worker_environment(app: Flask, fake: FakeTwilio) -> dict[str, str]:
    """The real worker's settings: the test app's database and keys, the fake provider."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TWILIO_", "TELEGRAM_", "FLASK_", "REVIEWLINE_"))
        and key not in {"DATABASE_URL", "SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "BLIND_INDEX_KEY"}
    }
    env.update(
        DATABASE_URL=app.config["DATABASE_URL"],
        SECRET_KEY=app.config["SECRET_KEY"],
        FIELD_ENCRYPTION_KEYS=app.config["FIELD_ENCRYPTION_KEYS"],
        TWILIO_ACCOUNT_SID="AC123",
        TWILIO_AUTH_TOKEN="token",
        TWILIO_FROM="+447700900500",
        TWILIO_API_BASE_URL=fake.url,
        PROVIDER_TIMEOUT_SECONDS="5",
        FLASK_SKIP_DOTENV="1",
    )
    if app.config.get("BLIND_INDEX_KEY"):  # unset in tests: derived from the same Fernet key
        env["BLIND_INDEX_KEY"] = app.config["BLIND_INDEX_KEY"]
    return env


def wait_until(condition: Callable[[], bool], worker: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("the worker did not get far enough in time")
        if worker.poll() is not None and not condition():
            output = worker.stdout.read() if worker.stdout else ""
            pytest.fail(f"the worker stopped early ({worker.returncode}):\n{output}")
        time.sleep(0.01)


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("moment", ["after the provider accepted", "while the provider is slow"])
def test_a_worker_killed_mid_batch_loses_nothing_and_repeats_at_most_the_messages_not_yet_written(
    sms_app: Flask, fake: FakeTwilio, moment: str, concurrency: int
) -> None:
    # One at a time, each result is written before the next send; in parallel, results are
    # written in rounds, so the kill comes after more than a round's worth of messages.
    kill_at = 5 if concurrency == 1 else MOST_UNWRITTEN + 8  # accepted by the provider before the kill
    at_risk = 1 if concurrency == 1 else concurrency + MOST_UNWRITTEN  # the most sent twice
    each = 4 if concurrency == 1 else (kill_at + 12) // 3
    written = queue_numbered({JORDAN: each, CERYS: each, AMIR: each})
    with subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "worker"],
        env={**worker_environment(sms_app, fake), "DELIVERY_CONCURRENCY": str(concurrency)},
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as worker:
        try:
            if moment == "after the provider accepted":
                # The worst moment: the provider has the message, the database does not know yet.
                def kill(_: dict[str, str]) -> None:
                    if len(fake.messages) == kill_at:
                        os.kill(worker.pid, signal.SIGKILL)
                        worker.wait(timeout=10)  # dead before the provider answers

                fake.on_accept = kill
                wait_until(lambda: worker.poll() is not None, worker)
            else:
                fake.delay_seconds = 0.2
                wait_until(lambda: len(fake.messages) >= kill_at, worker)
                time.sleep(0.05)  # into the next send
                os.kill(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        output = worker.stdout.read() if worker.stdout else ""
    assert worker.returncode == -signal.SIGKILL, output
    assert fake.idle(), "a request to the fake provider did not finish"
    fake.on_accept, fake.delay_seconds = None, 0.0

    # Nothing is lost: every row is either recorded as sent or still pending under the dead
    # worker's lease; every row recorded as sent reached the provider exactly once.
    after_kill = rows()
    sent = [r for r in after_kill if r.status == "sent"]
    pending = [r for r in after_kill if r.status == "pending"]
    assert len(sent) + len(pending) == len(written)
    assert 0 < len(sent) < len(written), "the kill was not in the middle of the batch"
    assert all(r.lease_until is not None for r in pending)
    accepted = at_fake(fake)
    assert all(accepted[addressed(r)] == 1 for r in sent)
    in_flight = [r for r in pending if accepted[addressed(r)]]
    assert len(in_flight) <= at_risk
    if moment == "after the provider accepted":
        assert len(in_flight) >= 1
        if concurrency == 1:
            assert len(in_flight) == 1 and len(sent) == kill_at - 1

    # While the lease holds, another worker leaves the rows alone ...
    assert deliver_due(db.session, senders(sms_app), now=utcnow()).sent == 0
    # ... and once it has expired, the rest is delivered.
    lease_expired: datetime = max(r.lease_until for r in pending) + timedelta(seconds=1)
    assert lease_expired <= utcnow() + LEASE + timedelta(seconds=1)
    result = deliver_due(db.session, senders(sms_app), now=lease_expired)
    assert result.sent == len(pending)
    assert [r.status for r in rows()] == ["sent"] * len(written)

    delivered = at_fake(fake)
    assert set(delivered) == set(written)  # every message reached the provider
    twice = [pair for pair, count in delivered.items() if count > 1]
    assert sorted(twice) == sorted(addressed(r) for r in in_flight)  # only those in flight, only twice
    assert all(count <= 2 for count in delivered.values())


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_send_that_breaks_unexpectedly_is_retried_and_the_others_are_recorded(
    sms_app: Flask, fake: FakeTwilio, concurrency: int
) -> None:
    written = queue_numbered({JORDAN: 2, CERYS: 2, AMIR: 2})
    real = twilio_sender(sms_app)

    def send(row: OutboxMessage, to: ChannelIdentity) -> str:
        if to.address == CERYS and row.message.body.startswith("Message 1"):
            raise ValueError("a bug in one send")
        return real(row, to)

    result = deliver_due(db.session, {"sms": send}, now=utcnow(), concurrency=concurrency)
    assert (result.sent, result.retrying) == (len(written) - 1, 1)
    broken = [r for r in rows() if r.status == "pending"]
    assert [addressed(r) for r in broken] == [(CERYS, "Message 1 for 002")]
    assert "ValueError: a bug in one send" in broken[0].last_error
    assert at_fake(fake) == Counter(p for p in written if p != (CERYS, "Message 1 for 002"))


def test_a_stop_while_sends_go_in_parallel_holds_the_rest_of_that_childs_messages(
    sms_app: Flask, fake: FakeTwilio
) -> None:
    written = queue_numbered({JORDAN: 6, CERYS: 6, AMIR: 6})
    sms_app.config["PROVIDER_TIMEOUT_SECONDS"] = 5  # slow, not timing out
    fake.delay_seconds = FRESH_CHECK * 1.5  # each send takes longer than a check stays fresh
    stop_replies: list[str] = []

    def jordan_texts_stop(message: dict[str, str]) -> None:
        # Jordan texts STOP as their first message arrives (the webhook runs in its own thread).
        if message["To"] == JORDAN and not stop_replies:
            with sms_app.app_context():
                stop_replies.extend(handle(InboundMessage(channel="sms", sender=JORDAN, text="STOP")).replies)
                db.session.remove()

    fake.on_accept = jordan_texts_stop
    deliver_due(db.session, senders(sms_app), now=utcnow(), concurrency=4)
    fake.on_accept = None
    assert stop_replies and identity(JORDAN).opted_out
    to_jordan = [m["Body"] for m in fake.messages if m["To"] == JORDAN]
    # The first, and at most the one checked just before STOP landed; the others are cancelled.
    assert to_jordan[:1] == ["Message 1 for 001"] and len(to_jordan) <= 2
    jordan_rows = [r for r in rows() if addressed(r)[0] == JORDAN and r.message.body.startswith("Message")]
    assert [r.status for r in jordan_rows].count("cancelled") >= 4
    # Cerys and Amir get everything, each in the order queued.
    delivered = [(m["To"], m["Body"]) for m in fake.messages]
    for number in (CERYS, AMIR):
        assert per_child(delivered, number) == per_child(written, number)


def test_a_message_that_falls_due_while_a_busy_call_is_sending_goes_in_that_call(
    sms_app: Flask, fake: FakeTwilio
) -> None:
    # A worker busy with a long queue keeps claiming; a reply queued to go a moment later (here,
    # 0.2 s) is claimed as soon as it is due, not left for the next call.
    written = queue_numbered({JORDAN: 14, CERYS: 14, AMIR: 14})
    # Slow, not timing out: with this file's 0.2 s timeout a busy CI machine once timed out two of
    # these 0.05 s sends, and they were left to retry instead of sent.
    sms_app.config["PROVIDER_TIMEOUT_SECONDS"] = 5
    fake.delay_seconds = 0.05  # 14 rounds of sends to three children: at least 0.7 s of sending
    ident = identity(CERYS)
    late = Message(child_id=ident.child_id, direction="out", channel="sms", body="Due soon", status="queued")
    start = utcnow()
    db.session.add(
        OutboxMessage(message=late, identity_id=ident.id, next_attempt_at=start + timedelta(seconds=0.2))
    )
    db.session.commit()
    result = deliver_due(db.session, senders(sms_app), now=start, batch=3, concurrency=4)
    assert result.sent == len(written) + 1
    assert at_fake(fake) == Counter([*written, (CERYS, "Due soon")])
    assert all(r.status == "sent" for r in rows())


def test_with_sends_in_parallel_each_result_is_written_soon_not_at_the_end_of_the_batch(
    sms_app: Flask, fake: FakeTwilio
) -> None:
    written = queue_numbered({JORDAN: 2, CERYS: 2, AMIR: 2})  # far fewer than a round of results
    outbox_id = {addressed(r): r.id for r in rows()}
    sms_app.config["PROVIDER_TIMEOUT_SECONDS"] = 5
    fake.delay_seconds = 0.3  # a slow provider: each first message is answered long before the second
    seen: dict[str, str] = {}
    engine = db.engine

    def look_at_the_first(message: dict[str, str]) -> None:
        # As each child's second message arrives, another connection reads the first one's row.
        if message["Body"].startswith("Message 2"):
            first = outbox_id[(message["To"], message["Body"].replace("Message 2", "Message 1"))]
            with engine.connect() as other:
                status = other.execute(select(OutboxMessage.status).where(OutboxMessage.id == first))
                seen[message["To"]] = status.scalar_one()

    fake.on_accept = look_at_the_first
    result = deliver_due(db.session, senders(sms_app), now=utcnow(), concurrency=4)
    fake.on_accept = None
    assert result.sent == len(written)
    assert seen == {JORDAN: "sent", CERYS: "sent", AMIR: "sent"}


def test_when_writing_results_fails_the_sends_stop_and_what_was_sent_is_written_once_more(
    sms_app: Flask, fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = queue_numbered({JORDAN: 3, CERYS: 3, AMIR: 3})
    real_record = delivery._record
    failures: list[int] = []

    def record_failing_once(session: object, outcomes: list, *args: object) -> None:
        if not failures:  # the database is away for the first round of results
            failures.append(len(outcomes))
            raise OperationalError("UPDATE outbox_message", {}, Exception("server closed the connection"))
        real_record(session, outcomes, *args)

    monkeypatch.setattr(delivery, "_record", record_failing_once)
    sms_app.config["PROVIDER_TIMEOUT_SECONDS"] = 5
    fake.delay_seconds = 0.1  # the first results fail to be written while later sends are on the way
    with pytest.raises(OperationalError):
        deliver_due(db.session, senders(sms_app), now=utcnow(), concurrency=4)
    assert failures
    # Every message the provider took is written as sent (the round that failed included); the
    # sends stopped, so the rest wait, under their lease, for a later claim.
    accepted = at_fake(fake)
    assert 0 < len(fake.messages) < len(written)
    for r in rows():
        assert r.status == ("sent" if accepted[addressed(r)] else "pending")
    assert all(count == 1 for count in accepted.values())
