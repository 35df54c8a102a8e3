"""app.new_rows: model objects written with Core keep what the ORM would have given them."""

from __future__ import annotations

from datetime import datetime

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Concern, Message, OutboxMessage
from app.new_rows import MOST_ROWS, insert_new


def _message(body: str, **fields: object) -> Message:
    return Message(direction="out", channel="sms", body=body, **fields)


def test_each_object_gets_the_id_of_its_own_row_in_the_order_given(app: Flask) -> None:
    with app.app_context():
        insert_new(db.session, [_message("warm-up")])  # ids no longer start at 1
        messages = [_message(f"reply {n}") for n in range(7)]
        insert_new(db.session, messages)
        db.session.commit()
        ids = [m.id for m in messages]
        assert ids == sorted(ids) and len(set(ids)) == 7
        stored = dict(db.session.execute(select(Message.id, Message.body)).all())
        assert [stored[m.id] for m in messages] == [f"reply {n}" for n in range(7)]


def test_more_rows_than_one_statement_holds_and_the_same_shape_again_keep_each_id_with_its_row(
    app: Flask,
) -> None:
    with app.app_context():
        many = [_message(f"long {n}") for n in range(MOST_ROWS * 2 + 3)]
        insert_new(db.session, many)
        again = [_message(f"again {n}", status="sent") for n in range(3)]
        insert_new(db.session, again)  # a statement built once before is used again
        more = [_message(f"more {n}", status="sent") for n in range(3)]
        insert_new(db.session, more)
        db.session.commit()
        stored = dict(db.session.execute(select(Message.id, Message.body)).all())
        written = [*many, *again, *more]
        assert len({m.id for m in written}) == len(written)
        assert [stored[m.id] for m in written] == [m.body for m in written]
        assert [m.id for m in written] == sorted(m.id for m in written)


def test_unset_columns_take_the_model_defaults_and_relationships_fill_foreign_keys(app: Flask) -> None:
    with app.app_context():
        message = Message(direction="in", channel="telegram", body="hello")
        concern = Concern(message=message, detail="worried")
        outbox = OutboxMessage(message=_message("reply"))
        # Children before parents: the parents are still written first.
        insert_new(db.session, [concern, outbox, outbox.message, message])
        db.session.commit()
        stored = db.session.get(Concern, concern.id)
        assert stored is not None and stored.message_id == message.id
        assert (stored.status, stored.route, stored.urgent, stored.category) == (
            "open",
            "iro",
            False,
            "general",
        )
        assert isinstance(stored.created_at, datetime) and stored.detail == "worried"
        row = db.session.get(OutboxMessage, outbox.id)
        assert row is not None and row.message_id == outbox.message.id
        assert (row.status, row.attempts, row.confirms_opt_out) == ("pending", 0, False)
        assert db.session.get(Message, message.id).status == "received"


def test_a_taken_unique_key_raises_and_the_rollback_leaves_nothing(app: Flask) -> None:
    with app.app_context():
        insert_new(db.session, [Message(direction="in", channel="sms", body="a", provider_id="SM-once")])
        db.session.commit()
        with pytest.raises(IntegrityError):
            insert_new(
                db.session,
                [
                    Message(direction="in", channel="sms", body="b", provider_id="SM-once"),
                    _message("its reply"),
                ],
            )
        db.session.rollback()
        assert db.session.scalars(select(Message.body).order_by(Message.id)).all() == ["a"]
