"""app.new_rows: model objects written with Core keep what the ORM would have given them."""

from __future__ import annotations

from datetime import datetime

import pytest
from flask import Flask
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Concern, Message, OutboxMessage
from app.new_rows import MOST_ROWS, Guard, insert_new, insert_new_if, one_statement_rows


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


# A guard for the tests: moves one outbox row's attempts on, if it still has the attempts given.
BUMP = Guard(
    sql='UPDATE "outbox_message" SET "attempts" = "attempts" + 1 '
    'WHERE "id" = :row AND "attempts" = :seen RETURNING "id"',
    params=(bindparam("row"), bindparam("seen")),
)


def _guard_row() -> int:
    outbox = OutboxMessage(message=_message("guard"))
    insert_new(db.session, [outbox.message, outbox])
    db.session.commit()
    return outbox.id


def _postgresql_only() -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("one statement with its guard is PostgreSQL's write (SQLite has no UPDATE in WITH)")


def test_with_its_guard_the_rows_go_in_in_one_statement_each_with_its_own_id(app: Flask) -> None:
    with app.app_context():
        _postgresql_only()
        row = _guard_row()
        messages = [_message(f"reply {n}", status="sent") for n in range(5)]
        messages.insert(
            0, Message(direction="in", channel="sms", body="hello", provider_id="SM-g", status="received")
        )
        rows = one_statement_rows(messages)
        assert rows is not None
        assert insert_new_if(db.session.connection(), messages, rows, BUMP, {"row": row, "seen": 0})
        db.session.commit()
        stored = dict(db.session.execute(select(Message.id, Message.body)).all())
        assert [stored[m.id] for m in messages] == ["hello"] + [f"reply {n}" for n in range(5)]
        assert db.session.get(OutboxMessage, row).attempts == 1, "the guard's change went in too"
        assert db.session.get(Message, messages[0].id).encoding is None  # unset: no default


def test_a_guard_that_changes_nothing_lets_no_row_in(app: Flask) -> None:
    with app.app_context():
        _postgresql_only()
        row = _guard_row()
        before = db.session.scalars(select(Message.id)).all()
        messages = [_message("never")]
        rows = one_statement_rows(messages)
        assert rows is not None
        assert not insert_new_if(db.session.connection(), messages, rows, BUMP, {"row": row, "seen": 7})
        db.session.commit()
        assert db.session.scalars(select(Message.id)).all() == before
        assert messages[0].id is None


def test_a_taken_key_undoes_the_guards_change_as_well(app: Flask) -> None:
    with app.app_context():
        _postgresql_only()
        row = _guard_row()
        insert_new(db.session, [Message(direction="in", channel="sms", body="a", provider_id="SM-twice")])
        db.session.commit()
        connection = db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        copy = [Message(direction="in", channel="sms", body="b", provider_id="SM-twice")]
        rows = one_statement_rows(copy)
        assert rows is not None
        with pytest.raises(IntegrityError):
            insert_new_if(connection, copy, rows, BUMP, {"row": row, "seen": 0})
        db.session.rollback()
        assert db.session.get(OutboxMessage, row).attempts == 0
        assert db.session.scalars(select(Message.body).where(Message.provider_id == "SM-twice")).all() == [
            "a"
        ]


def test_only_new_rows_of_one_table_with_the_same_columns_fit_one_statement(app: Flask) -> None:
    with app.app_context():
        message = _message("parent")
        assert one_statement_rows([message, _message("sibling")]) is not None
        assert one_statement_rows([]) is None
        assert one_statement_rows([message, Concern(message=message)]) is None, "two tables"
        assert one_statement_rows([_message("a"), _message("b", staff_id=None, segments=2)]) is not None
        assert one_statement_rows([_message(f"{n}") for n in range(MOST_ROWS + 1)]) is None, "too many"
        numbered = _message("has an id")
        numbered.id = 12345
        assert one_statement_rows([numbered]) is None, "an id the database did not give"


def test_a_value_too_long_for_its_column_is_refused_not_cut_short(app: Flask) -> None:
    """As the transaction's INSERT does: two provider ids that differ only after the column's 128
    characters must never be stored as one (the second would be taken for a copy)."""
    from sqlalchemy.exc import DataError

    with app.app_context():
        _postgresql_only()
        row = _guard_row()
        long_id = "SM" + "x" * 200
        messages = [Message(direction="in", channel="sms", body="a", provider_id=long_id)]
        rows = one_statement_rows(messages)
        assert rows is not None
        with pytest.raises(DataError, match="too long"):
            insert_new_if(db.session.connection(), messages, rows, BUMP, {"row": row, "seen": 0})
        db.session.rollback()
        assert db.session.scalars(select(Message.id).where(Message.body == "a")).all() == []
        assert db.session.get(OutboxMessage, row).attempts == 0
