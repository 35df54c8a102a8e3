"""Statements run on the driver's own cursor: the few that handling a message runs.

Every message reads its sender (``conversations.find_sender``) and writes itself with its replies
(``new_rows``: one INSERT, or on PostgreSQL the INSERT with its guard); asking for the plan also
reads its actions. Through ``Connection.execute`` each of those statements paid for SQLAlchemy's
work around it (an execution context, result metadata, a ``Row`` per row) and, on PostgreSQL, for
psycopg's description of every column of the result (two dozen for the sender), which nothing
read: about half of each statement's CPU in the web process (the sender's read cost 270 µs that
way and 155 µs this way, measured on PostgreSQL).

A ``DirectStatement`` is a Core statement compiled once per dialect, by SQLAlchemy, into the very
text SQLAlchemy itself would send. Each run puts its values through the same bind processors (the
encrypted columns' among them) and reads its rows through the same result processors. Anything
that goes wrong, from a value left out to a lost connection, goes through the connection's own
error handling, so it is raised as SQLAlchemy raises it (``StatementError``; ``IntegrityError``
for a key taken, which duplicates and clashes rely on) and a lost connection is invalidated with
its pool. Like ``Connection.execute`` it begins the connection's transaction if none is open and
commits nothing. What differs for the caller is what it gives back: plain tuples.

Each pooled connection keeps a cursor for each of these statements (the last ``KEPT_CURSORS``
it ran), made the first time. A psycopg cursor keeps the loaders it set up for a result's columns,
and the dumpers for its values, only while it runs the same statement again (a different one makes
it set them up anew): a new cursor for every statement set them all up each time (about 15 µs of
the sender's read, with its two dozen columns, measured on PostgreSQL). An error in a statement
drops its cursor, so the next run starts with a fresh one.

Whenever SQLAlchemy has more to do than send the statement (listeners to the connection's events,
``echo``, a schema translation map, a transaction that must be rolled back first), the statement
goes through ``Connection.execute`` instead, so listeners get their execution context and the
error is the one SQLAlchemy gives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Numeric
from sqlalchemy.sql.elements import ClauseElement

# Each dialect keeps its own compiled forms (they hold it), so they go when its engine goes.
_CACHE = "_direct_statements"
# Where a pooled connection keeps its cursors for these statements, by statement (its pool's
# ``info``, which follows the driver's connection from one checkout to the next).
_CURSORS = "direct_statements.cursors"
# The most cursors one connection keeps: a message runs two or three of these statements, and its
# write has a form for each number of rows.
KEPT_CURSORS = 16


@dataclass(frozen=True, eq=False)  # each one is its own: a connection's cursors are kept by it
class _Compiled:
    """A statement as one dialect sends it."""

    compiled: Any  # SQLAlchemy's compiled form: its text, parameters, defaults and order
    binds: tuple[tuple[str, Callable[[Any], Any]], ...]  # each bound name with a processor
    results: tuple[Callable[[Any], Any] | None, ...]  # each column's processor, or None

    @property
    def sql(self) -> str:
        return self.compiled.string

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

    def rows(self, connection: Connection, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run with ``values`` (by bound name) and return every row, each column read as
        SQLAlchemy reads it."""
        dialect = connection.dialect
        cache = dialect.__dict__.get(_CACHE)
        if cache is None:
            cache = dialect.__dict__.setdefault(_CACHE, {})
        compiled = cache.get(self) or self._compile(dialect, cache)
        transaction = connection.get_transaction()
        if _observed(connection) or (transaction is not None and not transaction.is_active):
            return [tuple(row) for row in connection.execute(self.statement, values)]
        if transaction is None:
            connection.begin()  # as Connection.execute begins one
        params: Any = values
        cursor = None
        pooled = connection.connection
        try:
            params = compiled.parameters(values)
            cursor = _cursor(pooled, compiled)
            cursor.execute(compiled.sql, params)
            found = cursor.fetchall()
        except BaseException as error:
            if cursor is not None:
                # Not used again (it is closed below): the next run makes a fresh one.
                pooled.info[_CURSORS].pop(compiled, None)
            # SQLAlchemy's own handling (private, but exactly what Connection.execute does): the
            # error wrapped as SQLAlchemy wraps it, a lost connection invalidated with its pool,
            # the cursor closed, handle_error listeners told. It always raises.
            connection._handle_dbapi_exception(error, compiled.sql, params, cursor, None)
        return read_rows(found, compiled.results)

    def _compile(self, dialect: Dialect, cache: dict[DirectStatement, _Compiled]) -> _Compiled:
        compiled: Any = self.statement.compile(dialect=dialect)
        if compiled.escaped_bind_names:
            raise ValueError(f"bound names the SQL spells otherwise: {sorted(compiled.escaped_bind_names)}")
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise ValueError("a column's Python default is worked out at each run: give every value")
        for bind in compiled.literal_execute_params | compiled.post_compile_params:
            raise ValueError(f"{bind.key!r}: a list or literal value is rendered at each run")
        columns = getattr(self.statement, "exported_columns", None)
        if not columns:
            raise ValueError("a DirectStatement returns rows: a SELECT, or a write with RETURNING")
        for column in columns:
            # Their processors read the driver's type of the column, which is not asked for here.
            if isinstance(column.type, Numeric):
                raise ValueError(f"{column.key!r}: a number column is read through Connection.execute")
        # By name, as SQLAlchemy keeps them: a value named twice is processed once.
        binds = {
            name: process
            for bind, name in compiled.bind_names.items()
            if (process := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        found = _Compiled(
            compiled=compiled, binds=tuple(binds.items()), results=result_processors(columns, dialect)
        )
        cache[self] = found
        return found


def _cursor(pooled: Any, compiled: _Compiled) -> Any:
    """The cursor this pooled connection keeps for this statement, made the first time; once it
    keeps ``KEPT_CURSORS``, the one used longest ago is closed. The pool empties ``info`` when it
    replaces the driver's connection, so a kept cursor always belongs to the connection at hand."""
    cursors = pooled.info.get(_CURSORS)
    if cursors is None:
        cursors = pooled.info[_CURSORS] = {}
    cursor = cursors.pop(compiled, None)
    if cursor is None:
        if len(cursors) >= KEPT_CURSORS:
            cursors.pop(next(iter(cursors))).close()
        dbapi_connection = pooled.dbapi_connection
        assert dbapi_connection is not None
        cursor = dbapi_connection.cursor()
    cursors[compiled] = cursor  # the newest last
    return cursor


def result_processors(columns: Iterable[Any], dialect: Dialect) -> tuple[Callable[[Any], Any] | None, ...]:
    """What turns each column's value, as the driver gives it, into the value SQLAlchemy reads
    (None: taken as it is). Without the driver's type of the column, so not for number columns."""
    return tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns)


def read_rows(
    found: Iterable[Sequence[Any]], processors: Sequence[Callable[[Any], Any] | None]
) -> list[tuple[Any, ...]]:
    """Rows as the driver gave them, each value put through its column's processor."""
    if not any(processors):
        return [tuple(row) for row in found]
    return [
        tuple(
            value if process is None else process(value)
            for process, value in zip(processors, row, strict=True)
        )
        for row in found
    ]


def _observed(connection: Connection) -> bool:
    """Whether SQLAlchemy would do more for this statement than send it: listeners to the
    connection's or engine's events, ``echo``, a schema translation map."""
    return bool(
        # What Connection.execute itself checks (private, but stable through SQLAlchemy 2).
        connection._has_events
        or connection.engine._has_events
        or connection._echo
        or connection.get_execution_options().get("schema_translate_map")
    )
