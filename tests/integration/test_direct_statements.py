"""app.direct_statements: a statement run on the driver's cursor reads, writes and fails as
SQLAlchemy's own execution does, and goes through SQLAlchemy whenever something listens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import Connection, Numeric, bindparam, cast, event, insert, literal, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError

from app.conversations import PLAN_ACTIONS, SENDER_QUERY, SPLIT_MESSAGE_WINDOW
from app.direct_statements import KEPT_CURSORS, DirectStatement
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
        # Of the same types too (on SQLite a flag read without its processor is 0, which == False).
        assert [tuple(map(type, row)) for row in got] == [tuple(map(type, row)) for row in expected]
        # Not a vacuous match: the child's name comes back in plain words.
        assert "Jordan" in got[0]
        nobody = {**values, "index": ChannelIdentity.address_key("sms", normalise_phone("+447700900999"))}
        assert DirectStatement(SENDER_QUERY).rows(connection, nobody) == []


def test_the_plans_actions_are_read_as_sqlalchemy_reads_them(demo: Flask) -> None:
    with demo.app_context():
        connection = db.session.connection()
        jordan = connection.execute(
            select(ChannelIdentity.child_id).where(
                ChannelIdentity.address_index == ChannelIdentity.address_key("sms", normalise_phone(JORDAN))
            )
        ).scalar_one()
        expected = [tuple(row) for row in connection.execute(PLAN_ACTIONS, {"child": jordan})]
        got = DirectStatement(PLAN_ACTIONS).rows(connection, {"child": jordan})
        assert got == expected and len(got) >= 2
        assert [tuple(map(type, row)) for row in got] == [tuple(map(type, row)) for row in expected]


def test_nothing_goes_through_connection_execute_when_nothing_listens(
    demo: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The point of it: with no listeners, no echo, the statement goes straight to the cursor."""
    with demo.app_context():
        connection = db.session.connection()

        def refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError("went through Connection.execute")

        monkeypatch.setattr(Connection, "execute", refuse)
        (row,) = DirectStatement(SENDER_QUERY).rows(connection, _sender_values())
        assert "Jordan" in row


def test_timestamps_are_stored_as_sqlalchemy_stores_them(app: Flask) -> None:
    """The stored text itself (SQLite keeps a timestamp as text, and compares it as text)."""
    with app.app_context():
        at = utcnow().replace(microsecond=0)
        connection = db.session.connection()
        through = connection.execute(
            _INSERT_RETURNING.statement, {"body": "a", "provider_id": "SM-through", "at": at}
        ).scalar_one()
        ((direct, _, _),) = _INSERT_RETURNING.rows(
            connection, {"body": "b", "provider_id": "SM-direct", "at": at}
        )
        db.session.commit()
        stored = dict(
            db.session.execute(
                text(f'SELECT id, CAST(created_at AS TEXT) FROM "{_MESSAGES.name}" WHERE id IN (:a, :b)'),
                {"a": through, "b": direct},
            ).all()
        )
        assert stored[direct] == stored[through]


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


def test_on_a_connection_with_no_transaction_it_begins_one_as_execute_does(app: Flask) -> None:
    """Else the driver's own transaction would be one SQLAlchemy does not know of: its commit
    would do nothing, and the row would be rolled back when the connection went back to the pool."""
    with app.app_context():
        with db.engine.connect() as connection:
            assert not connection.in_transaction()
            ((new_id, _, _),) = _INSERT_RETURNING.rows(
                connection, {"body": "kept", "provider_id": "SM-begun", "at": utcnow()}
            )
            assert connection.in_transaction()
            connection.commit()
        assert db.session.get(Message, new_id).body == "kept"


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


def test_after_an_error_the_next_statement_on_that_connection_runs(app: Flask) -> None:
    """A connection keeps a cursor for each statement from one run to the next; an error closes
    that statement's cursor (as SQLAlchemy closes a failed statement's cursor), and its next run
    gets a fresh one."""
    with app.app_context(), db.engine.connect() as connection:
        values = {"body": "first", "provider_id": "SM-kept-cursor", "at": utcnow()}
        _INSERT_RETURNING.rows(connection, values)
        with pytest.raises(IntegrityError):
            _INSERT_RETURNING.rows(connection, values)
        connection.rollback()
        again = _INSERT_RETURNING.rows(
            connection, {"body": "after", "provider_id": "SM-after-error", "at": utcnow()}
        )
        connection.commit()
    with app.app_context():
        assert [(m.id, m.body) for m in db.session.scalars(select(Message))] == [(again[0][0], "after")]


def test_a_connection_keeps_a_cursor_for_each_statement(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL: psycopg keeps a cursor's column loaders only while it runs the same statement
    again, and a message runs its read and its write in turn: each keeps a cursor of its own."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("psycopg's cursors")
        import psycopg

        made = []
        make = psycopg.Connection.cursor

        def counted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            made.append(self)
            return make(self, *args, **kwargs)

        monkeypatch.setattr(psycopg.Connection, "cursor", counted)
        count = DirectStatement(select(Message.id, Message.body).order_by(Message.id))
        with db.engine.connect() as connection:
            for n in range(3):
                at = utcnow() + timedelta(seconds=n)
                _INSERT_RETURNING.rows(connection, {"body": f"b{n}", "provider_id": f"SM-c{n}", "at": at})
                if n == 0:
                    first = len(made)  # the pool's ping on checkout makes one too
                assert [body for _, body in count.rows(connection, {})] == [f"b{k}" for k in range(n + 1)]
            connection.commit()
        assert len(made) == first + 1


def test_a_connection_keeps_at_most_so_many_cursors_and_still_runs_the_first(app: Flask) -> None:
    with app.app_context(), db.engine.connect() as connection:
        statements = [DirectStatement(select(literal(n).label("n"))) for n in range(KEPT_CURSORS + 2)]
        for n, statement in enumerate(statements):
            assert statement.rows(connection, {}) == [(n,)]
        assert len(connection.connection.info["direct_statements.cursors"]) == KEPT_CURSORS
        assert statements[0].rows(connection, {}) == [(0,)]  # its cursor was closed: a new one


def test_a_value_left_out_is_refused_as_sqlalchemy_refuses_it(app: Flask) -> None:
    values = {"provider_id": "SM-x", "at": utcnow()}
    with app.app_context():
        with pytest.raises(StatementError, match="body") as direct:
            _INSERT_RETURNING.rows(db.session.connection(), values)
        db.session.rollback()
        with pytest.raises(StatementError) as through:
            db.session.connection().execute(_INSERT_RETURNING.statement, values)
        db.session.rollback()
        assert type(direct.value) is type(through.value)
        assert type(direct.value.orig) is type(through.value.orig)
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
        rendered = DirectStatement(select(Message.id).limit(bindparam("n", literal_execute=True)))
        with pytest.raises(ValueError, match="'n'"):
            rendered.rows(connection, {"n": 1})
        number = DirectStatement(select(cast(literal(1), Numeric(10, 2)).label("amount")))
        with pytest.raises(ValueError, match="amount"):
            number.rows(connection, {})
        listed = DirectStatement(select(Message.id).where(Message.id.in_(bindparam("ids", expanding=True))))
        with pytest.raises(ValueError, match="ids"):
            listed.rows(connection, {"ids": [1, 2]})


def test_with_listeners_the_statement_goes_through_sqlalchemy_and_they_get_its_context(app: Flask) -> None:
    seen: list[tuple[str, str, bool]] = []

    def before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(("before", statement.split(None, 1)[0].upper(), context is not None))

    def after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(("after", statement.split(None, 1)[0].upper(), context is not None))

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", before)
        event.listen(db.engine, "after_cursor_execute", after)
        try:
            ((_, body, _),) = _INSERT_RETURNING.rows(
                db.session.connection(), {"body": "b", "provider_id": None, "at": utcnow()}
            )
        finally:
            event.remove(db.engine, "before_cursor_execute", before)
            event.remove(db.engine, "after_cursor_execute", after)
        db.session.rollback()
    assert body == "b"
    assert ("before", "INSERT", True) in seen and ("after", "INSERT", True) in seen


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
