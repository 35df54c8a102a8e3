"""Statements run on the driver's own cursor: the two that handling every message runs.

Every message runs the same two statements: the read of its sender (``conversations.find_sender``)
and its write (``new_rows``). Through ``Connection.execute`` each paid for SQLAlchemy's work around
the statement (an execution context, result metadata, a ``Row`` per row) and, on PostgreSQL, for
psycopg's description of every column the result has (two dozen for the sender), which nothing
read: about half of each statement's CPU in the web process (the sender's read cost 270 µs that
way against 130 µs straight on the cursor, measured on PostgreSQL).

A ``DirectStatement`` is a Core statement compiled once per dialect, by SQLAlchemy, into the very
text SQLAlchemy itself would send. Each run puts its values through the same bind processors (the
encrypted columns' among them), reads its rows through the same result processors, and an error
is raised as SQLAlchemy raises it (a unique key taken is ``IntegrityError``; a lost connection
is invalidated). Listeners to ``before_cursor_execute`` and ``after_cursor_execute`` are called
as usual, but with no execution context (None), and ``echo`` does not log these statements. What
differs for the caller is what it gives back: plain tuples. It runs on the connection's open
transaction, if any, as ``Connection.execute`` does, and commits nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ClauseElement


@dataclass(frozen=True)
class _Compiled:
    """A statement as one dialect sends it."""

    sql: str
    compiled: Any  # SQLAlchemy's compiled form: its parameters, defaults and order
    binds: tuple[tuple[str, Callable[[Any], Any]], ...]  # each bound name with a processor
    results: tuple[Callable[[Any], Any] | None, ...]  # each column's processor, or None

    def parameters(self, values: Mapping[str, Any]) -> Any:
        """The driver's parameters: dict or tuple, as the dialect's paramstyle wants."""
        params = self.compiled.construct_params(values)
        for name, process in self.binds:
            params[name] = process(params[name])
        if self.compiled.positional:
            return tuple(params[name] for name in self.compiled.positiontup)
        return params


class DirectStatement:
    """A statement that returns rows (a SELECT, or a write with RETURNING), run on the cursor."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._by_dialect: weakref.WeakKeyDictionary[Dialect, _Compiled] = weakref.WeakKeyDictionary()

    def rows(self, connection: Connection, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run with ``values`` (by bound name) and return every row, each column read as
        SQLAlchemy reads it."""
        dialect = connection.dialect
        compiled = self._by_dialect.get(dialect) or self._compile(dialect)
        params = compiled.parameters(values)
        dbapi_connection = connection.connection.dbapi_connection
        assert dbapi_connection is not None
        cursor = dbapi_connection.cursor()
        # Listeners to the cursor's events still see the statement (with no execution context).
        dispatch = connection.dispatch
        try:
            if dispatch.before_cursor_execute:
                dispatch.before_cursor_execute(connection, cursor, compiled.sql, params, None, False)
            cursor.execute(compiled.sql, params)
            found = cursor.fetchall()
            if dispatch.after_cursor_execute:
                dispatch.after_cursor_execute(connection, cursor, compiled.sql, params, None, False)
        except dialect.loaded_dbapi.Error as error:
            lost = dialect.is_disconnect(error, dbapi_connection, cursor)
            if lost:
                connection.invalidate(error)
            raise DBAPIError.instance(
                compiled.sql,
                params,
                error,
                dialect.loaded_dbapi.Error,
                hide_parameters=connection.engine.hide_parameters,
                connection_invalidated=lost,
                dialect=dialect,
            ) from error
        finally:
            cursor.close()
        results = compiled.results
        if not any(results):
            return [tuple(row) for row in found]
        return [
            tuple(
                value if process is None else process(value)
                for process, value in zip(results, row, strict=True)
            )
            for row in found
        ]

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled: Any = self.statement.compile(dialect=dialect)
        if compiled.escaped_bind_names:
            raise ValueError(f"bound names the SQL spells otherwise: {sorted(compiled.escaped_bind_names)}")
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise ValueError("a column's Python default is worked out at each run: give every value")
        for bind in compiled.bind_names:
            if bind.expanding or bind.literal_execute:
                raise ValueError(f"{bind.key!r}: a list or literal value is rendered at each run")
        binds = tuple(
            (name, process)
            for bind, name in compiled.bind_names.items()
            if (process := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        )
        columns = getattr(self.statement, "exported_columns", None)
        if not columns:
            raise ValueError("a DirectStatement returns rows: a SELECT, or a write with RETURNING")
        results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
        found = _Compiled(
            sql=compiled.string,
            compiled=compiled,
            binds=binds,
            results=results,
        )
        self._by_dialect[dialect] = found
        return found
