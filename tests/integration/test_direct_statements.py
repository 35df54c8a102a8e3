"""app.direct_statements: a statement run on the driver's cursor reads, writes and fails exactly as
SQLAlchemy's own execution does."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import bindparam, event, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, InvalidRequestError

from app.conversations import SENDER_QUERY, SPLIT_MESSAGE_WINDOW
from app.direct_statements import DirectStatement
from app.extensions import db
from app.models import ChannelIdentity, Message, utcnow
from app.phones import normalise_phone

JORDAN = "+447700900001"
_MESSAGES = Message.__table__
_INSERT_RETURNING = DirectStatement(
    text(
        f'INSERT INTO "{_MESSAGES.name}" (direction, channel, body, provider_id, status, created_at) '
        "VALUES ('out', 'sms', :body, :provider_id, 'sent', :at) RETURNING id, body, created_at"
    )
    .bindparams(
        bindparam("body", type_=_MESSAGES.c.body.type),
        bindparam("provider_id", type_=_MESSAGES.c.provider_id.type),
        bindparam("at", type_=_MESSAGES.c.created_at.type),
    )
    .columns(_MESSAGES.c.id, _MESSAGES.c.body, _MESSAGES.c.created_at)
)


def _sender_values() -> dict[str, object]:
    now = utcnow()
    return {
        "channel": "sms",
        "index": ChannelIdentity.address_key("sms", normalise_phone(JORDAN)),
        "since": now - SPLIT_MESSAGE_WINDOW,
        "today": now.date(),
    }


def test_rows_are_read_as_sqlalchemy_reads_them(demo: Flask) -> None:
    """Decrypted names and messages, parsed JSON settings, dates: the same values, column by column."""
    with demo.app_context():
        values = _sender_values()
        connection = db.session.connection()
        expected = [tuple(row) for row in connection.execute(SENDER_QUERY, values)]
        got = DirectStatement(SENDER_QUERY).rows(connection, values)
        assert got == expected and len(got) == 1
        # Not a vacuous match: the child's name comes back in plain words.
        assert "Jordan" in got[0]
        nobody = {**values, "index": ChannelIdentity.address_key("sms", normalise_phone("+447700900999"))}
        assert DirectStatement(SENDER_QUERY).rows(connection, nobody) == []


def test_values_are_written_through_the_columns_bind_processing(app: Flask) -> None:
    """An encrypted column is stored encrypted and read back in plain words."""
    with app.app_context():
        at = utcnow().replace(microsecond=0)
        connection = db.session.connection()
        ((new_id, body, created_at),) = _INSERT_RETURNING.rows(
            connection, {"body": "I want to see my sister", "provider_id": "SM-direct-1", "at": at}
        )
        db.session.commit()
        assert (body, created_at) == ("I want to see my sister", at)
        stored = db.session.execute(
            text(f'SELECT body FROM "{_MESSAGES.name}" WHERE id = :id'), {"id": new_id}
        ).scalar_one()
        assert "sister" not in stored  # the stored bytes are the cipher's, not the words
        assert db.session.get(Message, new_id).body == "I want to see my sister"


def test_a_key_taken_raises_integrity_error_and_the_session_goes_on_after_a_rollback(app: Flask) -> None:
    with app.app_context():
        values = {"body": "first", "provider_id": "SM-direct-twice", "at": utcnow()}
        _INSERT_RETURNING.rows(db.session.connection(), values)
        db.session.commit()
        # Messages from the provider are unique by their provider id (for the same direction).
        duplicate = {"body": "again", "provider_id": "SM-in-twice", "at": utcnow()}
        _INSERT_RETURNING.rows(db.session.connection(), duplicate)
        with pytest.raises(IntegrityError):
            _INSERT_RETURNING.rows(db.session.connection(), duplicate)
        db.session.rollback()
        count = select(Message.id).where(Message.provider_id.in_(["SM-direct-twice", "SM-in-twice"]))
        assert len(db.session.execute(count).all()) == 1  # the second statement's first row was undone too


def test_a_value_left_out_is_refused_before_anything_is_sent(app: Flask) -> None:
    with app.app_context():
        with pytest.raises(InvalidRequestError, match="body"):
            _INSERT_RETURNING.rows(db.session.connection(), {"provider_id": "SM-x", "at": utcnow()})
        db.session.rollback()
        assert db.session.execute(select(Message.id)).all() == []


def test_statements_it_cannot_run_as_they_stand_are_refused(app: Flask) -> None:
    with app.app_context():
        connection = db.session.connection()
        no_rows = DirectStatement(text("UPDATE message SET status = 'sent' WHERE id = :id"))
        with pytest.raises(ValueError, match="returns rows"):
            no_rows.rows(connection, {"id": 1})
        # Message.created_at's default is Python's (utcnow), which only the execution context works out.
        defaulted = DirectStatement(
            insert(_MESSAGES).values(direction="out", channel="sms", body="x").returning(_MESSAGES.c.id)
        )
        with pytest.raises(ValueError, match="Python default"):
            defaulted.rows(connection, {})
        listed = DirectStatement(select(Message.id).where(Message.id.in_(bindparam("ids", expanding=True))))
        with pytest.raises(ValueError, match="ids"):
            listed.rows(connection, {"ids": [1, 2]})


def test_cursor_listeners_still_see_the_statement(app: Flask) -> None:
    seen: list[tuple[str, str]] = []

    def before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(("before", statement.split(None, 1)[0].upper()))

    def after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(("after", statement.split(None, 1)[0].upper()))

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", before)
        event.listen(db.engine, "after_cursor_execute", after)
        try:
            _INSERT_RETURNING.rows(
                db.session.connection(), {"body": "b", "provider_id": None, "at": utcnow()}
            )
        finally:
            event.remove(db.engine, "before_cursor_execute", before)
            event.remove(db.engine, "after_cursor_execute", after)
        db.session.rollback()
    assert ("before", "INSERT") in seen and ("after", "INSERT") in seen


def test_a_lost_connection_is_invalidated_and_the_next_message_gets_a_new_one(app: Flask) -> None:
    """PostgreSQL: the server ended the session's connection; the error says so, the pool drops
    that connection, and after the rollback the next statement runs on a fresh one."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("a server to end the connection: PostgreSQL")
        connection = db.session.connection()
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        db.session.commit()
        connection = db.session.connection()
        with db.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError) as raised:
            _INSERT_RETURNING.rows(connection, {"body": "b", "provider_id": "SM-lost", "at": utcnow()})
        assert raised.value.connection_invalidated
        db.session.rollback()
        again = _INSERT_RETURNING.rows(
            db.session.connection(),
            {"body": "kept", "provider_id": "SM-after", "at": utcnow() + timedelta(seconds=1)},
        )
        db.session.commit()
        assert db.session.get(Message, again[0][0]).body == "kept"
