"""conversations.handle: one transaction per message, duplicates once, privacy at rest."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.conversations import InboundMessage, handle
from app.extensions import db
from app.models import Concern, ConversationState, Message, OutboxMessage

JORDAN = "+447700900001"


def sms(text: str, sender: str = JORDAN, provider_id: str | None = None) -> InboundMessage:
    return InboundMessage(channel="sms", sender=sender, text=text, provider_id=provider_id)


def count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_message_and_its_replies_are_recorded_with_their_sms_cost(demo: Flask) -> None:
    outcome = handle(sms("who is my iro", provider_id="SM1"))
    assert any("Priya Shah" in r for r in outcome.replies)
    rows = db.session.scalars(select(Message).order_by(Message.id)).all()
    assert [(m.direction, m.channel) for m in rows][0] == ("in", "sms")
    assert rows[0].body == "who is my iro" and rows[0].provider_id == "SM1"
    outbound = [m for m in rows if m.direction == "out"]
    assert [m.body for m in outbound] == outcome.replies
    assert all(m.encoding == "gsm7" and m.segments >= 1 for m in outbound)


def test_a_repeated_provider_id_is_processed_once(demo: Flask) -> None:
    first = handle(sms("who is my iro", provider_id="SM-dup"))
    second = handle(sms("who is my iro", provider_id="SM-dup"))
    assert first.replies and not first.duplicate
    assert second.duplicate and second.replies == []
    assert count(Message) == 1 + len(first.replies)


def test_two_copies_arriving_at_the_same_moment_are_processed_once(demo: Flask) -> None:
    barrier = threading.Barrier(2)
    outcomes: list = []
    errors: list = []

    def deliver() -> None:
        with demo.app_context():
            barrier.wait()
            try:
                outcomes.append(handle(sms("who is my iro", provider_id="SM-race")))
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(o.duplicate for o in outcomes) == [False, True]
    assert db.session.scalar(select(func.count()).where(Message.direction == "in")) == 1


def test_a_failure_rolls_back_everything_for_that_message(
    demo: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.conversations as conversations

    def broken_send(*args: object, **kwargs: object) -> None:
        raise RuntimeError("provider down")

    monkeypatch.setattr(conversations._Conversation, "send", broken_send)
    with pytest.raises(RuntimeError, match="provider down"):
        handle(sms("STOP", provider_id="SM-fail"))
    assert count(Message) == 0
    assert count(ConversationState) == 0
    monkeypatch.undo()
    # The provider retries with the same id, and this time it is processed.
    outcome = handle(sms("STOP", provider_id="SM-fail"))
    assert outcome.effects == [{"kind": "opted_out"}]


def test_an_urgent_message_keeps_the_childs_place_and_raises_one_concern(demo: Flask) -> None:
    handle(sms("hi"))
    before = db.session.scalar(select(ConversationState)).data["node"]
    outcome = handle(sms("he hits me when im home"))
    assert outcome.effects[0]["kind"] == "concern" and outcome.effects[0]["urgent"]
    concern = db.session.scalar(select(Concern))
    assert (
        concern.urgent and concern.child_id is not None and concern.message.body == "he hits me when im home"
    )
    assert db.session.scalar(select(ConversationState)).data["node"] == before


def test_an_opted_out_child_who_is_at_risk_is_still_flagged_but_sent_nothing(demo: Flask) -> None:
    handle(sms("STOP"))
    outcome = handle(sms("i want to die"))
    assert outcome.replies == []
    assert outcome.effects[0]["urgent"] is True
    concerns = db.session.scalars(select(Concern).order_by(Concern.id)).all()
    assert [(c.category, c.urgent) for c in concerns][1][1] is True
    assert len(concerns) == 2


def test_stop_tells_the_reviewing_officer_once_and_start_turns_messages_back_on(demo: Flask) -> None:
    from app.models import ChannelIdentity

    handle(sms("STOP"))
    handle(sms("STOP"))
    identity = ChannelIdentity.find(db.session, "sms", JORDAN)
    assert identity.opted_out and identity.opted_out_at is not None
    notices = db.session.scalars(select(Concern).where(Concern.category == "opted_out")).all()
    assert len(notices) == 1 and "STOP" in notices[0].detail and notices[0].route == "iro"
    outcome = handle(sms("START"))
    assert any("Welcome back" in reply for reply in outcome.replies)
    db.session.refresh(identity)
    assert not identity.opted_out


def test_a_stop_the_provider_already_answered_opts_out_without_a_reply(demo: Flask) -> None:
    from app.models import ChannelIdentity

    # Twilio's own opt-out handling: it recognised "REVOKE" as STOP and replied itself.
    outcome = handle(InboundMessage(channel="sms", sender=JORDAN, text="REVOKE", command="stop", silent=True))
    assert outcome.replies == [] and [e["kind"] for e in outcome.effects] == ["opted_out"]
    assert ChannelIdentity.find(db.session, "sms", JORDAN).opted_out
    assert count(Message) == 1, "only the child's message is recorded; no reply was sent"


def test_replies_for_a_channel_that_cannot_answer_inline_go_to_the_outbox(demo: Flask) -> None:
    outcome = handle(sms("who is my iro"), inline=False)
    rows = db.session.scalars(select(OutboxMessage)).all()
    assert len(rows) == len(outcome.replies) > 0
    assert all(r.status == "pending" and r.message.status == "queued" for r in rows)


def test_an_unknown_sender_is_recorded_without_a_child(demo: Flask) -> None:
    outcome = handle(sms("hello?", sender="+447700900999"))
    message = db.session.scalar(select(Message).where(Message.direction == "in"))
    assert message.child_id is None and message.sender_index and len(message.sender_index) == 64
    assert "not set up" in outcome.replies[0]


def test_the_database_file_holds_no_plaintext_child_data(demo: Flask) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("reads the SQLite file's bytes")
    secret = "my secret is that I miss Grandma Rosalind"
    for text in ("who is my iro", secret, "LANGUAGE", "2"):
        handle(sms(text))
    handle(sms(secret, sender="+447700900002"))
    db.session.remove()
    db.engine.dispose()
    path = Path(db.engine.url.database)
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    for plaintext in (
        "Jordan",
        "Cerys",
        "Amir",
        "+447700900001",
        "447700900001",
        "07700900001",
        "Grandma Rosalind",
        "miss Grandma",
        "who is my iro",
        "swimming lessons",
        "Arrange more time with your brother",
    ):
        assert plaintext.encode() not in raw, f"{plaintext!r} is stored in plaintext"
        assert plaintext.encode("utf-16-le") not in raw
    # The test would notice plaintext: staff names (not child data) are stored in the clear.
    assert b"Priya Shah" in raw


def test_pausing_a_form_is_recorded_in_the_clear_for_a_later_nudge(demo: Flask) -> None:
    from datetime import datetime

    handle(sms("my views"), now=datetime(2026, 11, 23, 10, 0))
    handle(sms("later"), now=datetime(2026, 11, 23, 10, 5))
    state = db.session.scalar(select(ConversationState))
    assert state.data["paused"] and state.paused_at == datetime(2026, 11, 23, 10, 5)
    handle(sms("help"), now=datetime(2026, 11, 23, 11, 0))
    db.session.refresh(state)
    assert state.paused_at == datetime(2026, 11, 23, 10, 5), "still the same pause"
    handle(sms("carry on"), now=datetime(2026, 11, 23, 12, 0))
    db.session.refresh(state)
    assert not state.data["paused"] and state.paused_at is None


@pytest.mark.parametrize("caller_transaction", [False, True], ids=["fresh session", "open transaction"])
def test_two_messages_from_one_child_at_the_same_moment_are_handled_one_after_the_other(
    demo: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, caller_transaction: bool
) -> None:
    """Neither message is worked out on a state the other has already moved on: the first finds at
    its commit that the state's revision changed, and is worked out again on the state the second
    left (nothing is locked while a message is worked out, on either database).

    With a fresh session (as every webhook has) PostgreSQL reads outside a transaction and writes in
    one statement, which then writes nothing; inside a caller's open transaction it writes in that
    transaction, which is rolled back. Both must end the same way."""

    other = "+447700900002"
    for phone in (JORDAN, other):
        handle(sms("menu", sender=phone))
    # The other child sends the same two texts one after the other: the state Jordan should end in.
    handle(sms("1", sender=other))
    handle(sms("1", sender=other))
    expected = _state_of(other)

    # Jordan's first text has read his state; his second arrives while it is being handled.
    errors = _meanwhile(demo, monkeypatch, sms("1", provider_id="SM-second"))
    if not caller_transaction:
        db.session.remove()
    with caplog.at_level("INFO", logger="app.conversations"):
        first = handle(sms("1", provider_id="SM-first"))
    assert not errors
    assert first.replies and not first.duplicate
    assert "handling it again" in caplog.text
    assert _state_of(JORDAN) == expected
    stored = db.session.scalars(
        select(Message.provider_id).where(Message.direction == "in", Message.provider_id.like("SM-%"))
    ).all()
    assert sorted(stored) == ["SM-first", "SM-second"]


def _meanwhile(app: Flask, monkeypatch: pytest.MonkeyPatch, inbound: InboundMessage) -> list:
    """Once the next message handled has read its sender, ``inbound`` arrives and is handled to the
    end in a thread of its own before that one goes on. Returns the errors that thread met."""
    import app.conversations as conversations

    real, errors, started = conversations.engine_context, [], []

    def context_after_the_other(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not started:
            other = threading.Thread(target=_handle_in_thread, args=(app, inbound, errors))
            started.append(other)
            other.start()
            other.join(30)
            assert not other.is_alive(), "the other message waited for this one"
        return real(*args, **kwargs)

    monkeypatch.setattr(conversations, "engine_context", context_after_the_other)
    return errors


def _handle_in_thread(app: Flask, inbound: InboundMessage, errors: list) -> None:
    with app.app_context():
        try:
            assert handle(inbound).replies
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)
        finally:
            db.session.remove()


def _state_of(phone: str) -> tuple:
    from app.models import ChannelIdentity

    identity = ChannelIdentity.find(db.session, "sms", phone)
    state = db.session.scalar(
        select(ConversationState).where(ConversationState.child_id == identity.child_id)
    )
    return state.data.get("flow"), state.data.get("step")


def test_a_stop_arriving_while_another_message_is_handled_leaves_nothing_to_send_after_it(
    demo: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whichever commits first, nothing but the reply to STOP is left to go to the child."""

    handle(sms("menu"))
    errors = _meanwhile(demo, monkeypatch, sms("STOP", provider_id="SM-stop"))
    # A photo leaves the conversation where it was (its reply asks for words), as STOP does.
    first = handle(
        InboundMessage(channel="sms", sender=JORDAN, text="", attachment="photo", provider_id="SM-q"),
        inline=False,
    )
    assert not errors
    assert not first.duplicate
    pending = db.session.scalars(
        select(Message.body)
        .join(OutboxMessage, OutboxMessage.message_id == Message.id)
        .where(OutboxMessage.status == "pending")
    ).all()
    assert pending == [], "a reply queued around the STOP would reach the child after a later START"


def test_a_copy_of_a_message_moves_nothing_on(demo: Flask) -> None:
    """A copy (the same provider id) is refused as a whole: its rows are not stored, and the
    conversation's state is left as the first copy left it (on PostgreSQL the state's move and the
    rows are one statement, so the refused rows take the move with them)."""
    handle(sms("menu", provider_id="SM-menu"))
    handle(sms("my views", provider_id="SM-views"))
    db.session.remove()
    before = db.session.execute(select(ConversationState.data, ConversationState.revision)).one()
    messages = count(Message)
    db.session.remove()
    copy = handle(sms("later", provider_id="SM-views"))
    assert copy.duplicate and copy.replies == []
    after = db.session.execute(select(ConversationState.data, ConversationState.revision)).one()
    assert after == before
    assert count(Message) == messages


def test_a_stop_that_clashes_with_another_message_is_worked_out_again_and_still_opts_out(
    demo: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A STOP writes more than the usual message (the opt-out, a notice for the reviewing officer),
    so on PostgreSQL it goes in a transaction even after reading outside one: when another message
    moved the conversation on meanwhile, all of it is rolled back, and the STOP is worked out again
    and applied once, not refused as a copy of itself."""
    from app.models import ChannelIdentity

    handle(sms("menu", provider_id="SM-menu"))
    db.session.remove()
    errors = _meanwhile(demo, monkeypatch, sms("help", provider_id="SM-help"))
    with caplog.at_level("INFO", logger="app.conversations"):
        stop = handle(sms("STOP", provider_id="SM-stop"))
    assert not errors
    assert "handling it again" in caplog.text
    assert not stop.duplicate and [e["kind"] for e in stop.effects] == ["opted_out"] and stop.replies
    assert ChannelIdentity.find(db.session, "sms", JORDAN).opted_out
    notices = db.session.scalars(select(Concern).where(Concern.category == "opted_out")).all()
    assert len(notices) == 1
    stored = db.session.scalars(
        select(Message.provider_id).where(Message.direction == "in").order_by(Message.id)
    ).all()
    assert stored == ["SM-menu", "SM-help", "SM-stop"]


def test_two_first_messages_from_one_child_at_the_same_moment_are_both_handled(
    demo: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A child's first message makes their conversation's row; when another first message made it
    meanwhile, this one writes nothing and is worked out again on that row, not refused."""

    assert count(ConversationState) == 0
    db.session.remove()
    errors = _meanwhile(demo, monkeypatch, sms("menu", provider_id="SM-other"))
    with caplog.at_level("INFO", logger="app.conversations"):
        first = handle(sms("who is my iro", provider_id="SM-first"))
    assert not errors
    assert "handling it again" in caplog.text
    assert not first.duplicate and any("Priya Shah" in reply for reply in first.replies)
    assert count(ConversationState) == 1
    revision = db.session.scalar(select(ConversationState.revision))
    assert revision == 2, "made by one message, moved on by the other"
    stored = db.session.scalars(
        select(Message.provider_id).where(Message.direction == "in").order_by(Message.id)
    ).all()
    assert stored == ["SM-other", "SM-first"]


def test_on_postgresql_the_usual_message_is_written_in_one_statement_outside_a_transaction(
    demo: Flask,
) -> None:
    """What makes a message cheap on PostgreSQL: its reads and its one write, no BEGIN or COMMIT
    (a STOP, which writes more, still opens a transaction)."""
    from sqlalchemy import event

    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite writes in a transaction (it has no UPDATE in WITH, and no round trips)")
    handle(sms("menu", provider_id="SM-menu"))
    db.session.remove()
    statements: list[str] = []

    def record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement.split(None, 1)[0].upper())

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        outcome = handle(sms("who is my iro", provider_id="SM-iro"))
        db.session.remove()
        usual, statements[:] = list(statements), []
        handle(sms("STOP", provider_id="SM-stop"))
        db.session.remove()
        stop = list(statements)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert any("Priya Shah" in reply for reply in outcome.replies) and not outcome.duplicate
    assert "BEGIN" not in usual and usual.count("WITH") == 1, usual
    assert [s for s in usual if s in ("INSERT", "UPDATE")] == [], "no write outside the one statement"
    assert "BEGIN" in stop and stop.index("BEGIN") < min(stop.index(s) for s in ("INSERT", "UPDATE"))


def test_an_action_of_another_child_is_neither_linked_nor_quoted(demo: Flask) -> None:
    """A stale or forged action number: the concern is still raised, but says nothing of it."""
    from app.conversations import _Conversation, find_sender
    from app.engine.effects import ActionNotHappened
    from app.models import ChannelIdentity, Review, ReviewAction
    from app.models.base import utcnow
    from app.phones import normalise_phone

    jordan = db.session.scalar(
        select(ChannelIdentity.child_id).where(
            ChannelIdentity.address_index == ChannelIdentity.address_key("sms", normalise_phone(JORDAN))
        )
    )
    own, others = (
        db.session.scalars(
            select(ReviewAction).join(Review).where(same(Review.child_id, jordan)).order_by(ReviewAction.id)
        ).first()
        for same in (lambda a, b: a == b, lambda a, b: a != b)
    )
    assert own is not None and others is not None
    now = utcnow()
    try:
        for action, linked in ((own, True), (others, False)):
            conv = _Conversation(db.session, sms("3"), now, inline=True)
            sender, _, _ = find_sender(db.session, "sms", normalise_phone(JORDAN), now)
            conv.child = sender.child
            message = conv.record_receipt(sender.child, None)
            conv.apply(ActionNotHappened(action_id=action.id), message)
            concern = conv.new[-1]
            assert isinstance(concern, Concern) and concern.category == "action_not_happened"
            assert concern.review_action_id == (action.id if linked else None)
            assert (action.description in (concern.detail or "")) is linked
    finally:
        db.session.rollback()


def test_the_facts_read_with_the_sender_are_those_looked_up_one_by_one(demo: Flask) -> None:
    """The reviewing officer and the next review read in the sender's own query are what the
    lookups of the rarer paths (an ORM ``Child``) find: with an officer and a review, with the
    officer's assignment ended, and with the next review postponed or already past."""
    from datetime import timedelta

    from app.conversations import ChildFacts, find_sender
    from app.models import ChannelIdentity, Child, IroAssignment, Review
    from app.models.base import utcnow

    now = utcnow()
    identities = db.session.scalars(
        select(ChannelIdentity).where(ChannelIdentity.channel == "sms").order_by(ChannelIdentity.id)
    ).all()

    def both_ways() -> dict[int, dict[str, str | None]]:
        seen = {}
        for identity in identities:
            sender, _, _ = find_sender(db.session, "sms", identity.address, now)
            read = ChildFacts(db.session, sender.child, "en", now)
            looked_up = ChildFacts(db.session, db.session.get(Child, identity.child_id), "en", now)
            facts = {key: read[key] for key in ("iro_name", "iro_contact", "next_review")}
            assert facts == {key: looked_up[key] for key in facts}
            seen[identity.child_id] = facts
        return seen

    before = both_ways()
    past, postponed, no_iro = (identities[0].child_id, identities[1].child_id, identities[2].child_id)
    assert before[past]["next_review"] and before[postponed]["next_review"]  # each change below shows
    assert all(f["iro_name"] and f["iro_contact"] for f in before.values())
    for assignment in db.session.scalars(select(IroAssignment).where(IroAssignment.child_id == no_iro)):
        assignment.ended_at = now - timedelta(days=1)
    for review in db.session.scalars(select(Review).where(Review.child_id.in_([postponed, past]))):
        if review.status == "scheduled":
            if review.child_id == postponed:
                review.status = "postponed"
            else:
                review.scheduled_for = now.date() - timedelta(days=3)
    db.session.commit()
    after = both_ways()
    assert after[no_iro]["iro_name"] is None and after[no_iro]["iro_contact"] is None
    assert after[postponed]["next_review"] is None and after[past]["next_review"] is None
