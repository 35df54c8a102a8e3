"""New rows written with SQLAlchemy Core instead of the ORM's unit of work.

Handling a message writes the same few new rows every time: the message, its replies, now and then
a concern or an outbox row. Given to the session, those objects went through the unit of work
(identity map, dependency sort, attribute history, expiry at the commit), which cost about a
quarter of a message's time on PostgreSQL. Here the same model objects, never added to a session,
are written with one multi-row INSERT per table, parents first, and each gets its new id.

What the ORM did for such an object is kept: a column left unset takes its model default (not a
NULL), and a many-to-one relationship set on the object (``Concern(message=m)``) fills its foreign
key from the parent's new id. Objects already in the session are the session's to flush.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    Connection,
    Executable,
    String,
    Table,
    bindparam,
    insert,
    inspect,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.orm.interfaces import MANYTOONE

from app.direct_statements import DirectStatement
from app.models import Base


def column_values(obj: Base) -> dict[str, Any]:
    """The row ``obj`` stands for, as the ORM would insert it (generated ids left out)."""
    parents, columns = _row_plan(type(obj))
    state = obj.__dict__
    values: dict[str, Any] = {}
    for key, pairs in parents:
        related = state.get(key)
        if related is not None:
            for local, remote in pairs:
                values[local] = getattr(related, remote)
    for key, column_key, when_unset, default in columns:
        value = state.get(key)
        if value is None:
            if column_key in values or when_unset is _LEAVE_OUT:
                continue  # from the relationship, or numbered or filled in by the database
            if when_unset is _CALL:
                value = default(None)
            elif when_unset is _USE:
                value = default
        values[column_key] = value
    return values


# What a column left unset becomes: left out of the INSERT, its default called, or its default.
_LEAVE_OUT, _CALL, _USE, _NULL = "leave out", "call", "use", "null"


@cache
def _row_plan(cls: type[Base]) -> tuple[tuple[tuple[str, tuple[tuple[str, str], ...]], ...], tuple[Any, ...]]:
    """Worked out once per model (reading the mapper for every object cost more than its INSERT):
    its many-to-one relationships with the foreign keys each fills, and for each column its
    attribute, its key, and what it becomes when unset."""
    mapper = inspect(cls)
    parents = tuple(
        (rel.key, tuple((local.key, remote.key) for local, remote in rel.local_remote_pairs))
        for rel in mapper.relationships
        if rel.direction is MANYTOONE
    )
    columns = []
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if column.primary_key and column.autoincrement in (True, "auto"):
            when_unset, default = _LEAVE_OUT, None
        elif column.default is not None:
            when_unset = _CALL if column.default.is_callable else _USE
            default = column.default.arg
        elif column.server_default is not None:
            when_unset, default = _LEAVE_OUT, None
        else:
            when_unset, default = _NULL, None
        columns.append((prop.key, column.key, when_unset, default))
    return parents, tuple(columns)


def insert_new(session: Session, objects: Iterable[Base]) -> None:
    """Insert transient model objects, parents before children, setting each one's new id.

    One INSERT per table and set of columns (a multi-row statement for several rows), in the
    session's transaction; nothing is committed. Raises what the database raises (a unique key
    taken: ``IntegrityError``), leaving the transaction for the caller to roll back.
    """
    order = _table_order()
    tables: dict[Table, list[Base]] = {}
    for obj in objects:
        tables.setdefault(obj.__table__, []).append(obj)  # type: ignore[arg-type]
    # Core statements go straight to the session's connection (same transaction): the session's
    # own execute adds nothing for them but its bookkeeping.
    connection = session.connection()
    for table in sorted(tables, key=order.__getitem__):
        _insert_rows(connection, table, tables[table])


@cache
def _table_order() -> dict[Table, int]:
    """Each table's place among the model's tables, parents first (worked out once: sorting them
    cost 5% of a message)."""
    return {table: n for n, table in enumerate(Base.metadata.sorted_tables)}


def _insert_rows(connection: Connection, table: Table, objects: Sequence[Base]) -> None:
    groups: dict[tuple[str, ...], list[tuple[Base, dict[str, Any]]]] = {}
    for obj in objects:
        values = column_values(obj)
        groups.setdefault(tuple(values), []).append((obj, values))
    key = table.autoincrement_column
    for rows in groups.values():
        values = [row for _, row in rows]
        if key is None or key.key in values[0]:
            connection.execute(insert(table), values)
            continue
        for (obj, _), new_id in zip(rows, _inserted_ids(connection, table, key, values), strict=True):
            setattr(obj, key.key, new_id)


def _inserted_ids(connection: Connection, table: Table, key: Any, rows: list[dict[str, Any]]) -> list[int]:
    """The new ids, in the order of ``rows``, from one multi-row INSERT ... VALUES ... RETURNING.

    Both databases number the rows of one such statement in the order they are listed (SQLite gives
    each the next rowid; PostgreSQL's sequence is asked for each row in turn, and only goes up), so
    the ids sorted are in the order of ``rows``, whatever order RETURNING gives them in.

    The statement is built once for each table, set of columns and number of rows, with a named
    parameter per value, so SQLAlchemy compiles it once and psycopg can prepare it. (SQLAlchemy's
    own ordered form for a list of rows, its "insertmanyvalues", rebuilt its batches on every call:
    about a fifth of a message's time on PostgreSQL went on that one INSERT.) More than
    ``MOST_ROWS`` rows go in several statements, each numbered after the one before."""
    if len(rows) > MOST_ROWS:
        return [
            new_id
            for start in range(0, len(rows), MOST_ROWS)
            for new_id in _inserted_ids(connection, table, key, rows[start : start + MOST_ROWS])
        ]
    columns = tuple(rows[0])
    statement = _multi_row_insert(table, key.key, columns, len(rows))
    values = {f"r{n}_{name}": row[name] for n, row in enumerate(rows) for name in columns}
    return sorted(new_id for (new_id,) in statement.rows(connection, values))


# A message writes a handful of rows; this bounds a statement's parameters (SQLite allows 32,766)
# and the size of the statements kept.
MOST_ROWS = 50


@lru_cache(maxsize=256)
def _multi_row_insert(table: Table, key: str, columns: tuple[str, ...], count: int) -> DirectStatement:
    """INSERT of ``count`` rows of ``columns`` into ``table``, RETURNING the new ``key``s.

    Written as text with typed parameters: SQLAlchemy does not cache the compiled form of a Core
    multi-row ``insert().values([...])``, and compiling it was slower than the statement itself.
    Run on the driver's cursor (``app.direct_statements``)."""
    names = ", ".join(f'"{table.c[name].name}"' for name in columns)
    rows = ", ".join("(" + ", ".join(f":r{n}_{name}" for name in columns) + ")" for n in range(count))
    returned = table.c[key]
    return DirectStatement(
        text(f'INSERT INTO "{table.name}" ({names}) VALUES {rows} RETURNING "{returned.name}"')
        .bindparams(
            *(bindparam(f"r{n}_{name}", type_=table.c[name].type) for n in range(count) for name in columns)
        )
        .columns(returned)
    )


@dataclass(frozen=True, eq=False)
class Guard:
    """A data-modifying statement (``UPDATE ... RETURNING``) that ``insert_new_if`` runs first,
    inside its one statement: the new rows go in only if it returned a row. ``sql`` names its
    values as ``:name``, each typed by one of ``params``."""

    sql: str
    params: tuple[BindParameter[Any], ...]

    @classmethod
    def of(cls, statement: Executable) -> Guard:
        """The guard for a Core ``UPDATE`` or ``INSERT ... RETURNING`` whose values are all bound
        by name, compiled once for PostgreSQL (so it is the same statement the transaction runs)."""
        compiled = statement.compile(dialect=postgresql.psycopg2.dialect(paramstyle="named"))
        return cls(str(compiled), tuple(compiled.binds.values()))


def one_statement_rows(objects: Sequence[Base]) -> list[dict[str, Any]] | None:
    """The rows of ``objects`` if ``insert_new_if`` can write them in one statement (new rows of
    one table, the same columns set in each, numbered by the database, no more than
    ``MOST_ROWS``); else None."""
    if not objects or len(objects) > MOST_ROWS:
        return None
    table = objects[0].__table__  # type: ignore[attr-defined]
    key = table.autoincrement_column
    if key is None or any(obj.__table__ is not table for obj in objects):  # type: ignore[attr-defined]
        return None
    rows = [column_values(obj) for obj in objects]
    columns = rows[0].keys()
    if key.key in columns or any(row.keys() != columns for row in rows):
        return None
    return rows


def insert_new_if(
    connection: Connection,
    objects: Sequence[Base],
    rows: list[dict[str, Any]],
    guard: Guard,
    values: dict[str, Any],
) -> bool:
    """PostgreSQL: run ``guard`` and insert ``objects`` in one statement, the rows only if the guard
    changed a row, and set each object's new id. False if the guard changed nothing (then nothing
    at all was written). ``rows`` are the objects' rows from ``one_statement_rows``; ``values``
    are the guard's.

    One statement is atomic on its own, so on a connection in autocommit it needs no BEGIN and no
    COMMIT: a message's whole write is one round trip instead of four. A unique key taken raises
    ``IntegrityError`` and the guard's change is undone with the rest."""
    table = objects[0].__table__  # type: ignore[attr-defined]
    key = table.autoincrement_column
    columns = tuple(rows[0])
    statement = _guarded_insert(guard, table, key.key, columns, len(rows))
    params = dict(values)
    params.update({f"r{n}_{name}": row[name] for n, row in enumerate(rows) for name in columns})
    new_ids = sorted(new_id for (new_id,) in statement.rows(connection, params))
    if not new_ids:
        return False
    for obj, new_id in zip(objects, new_ids, strict=True):
        setattr(obj, key.key, new_id)
    return True


@lru_cache(maxsize=64)
def _guarded_insert(
    guard: Guard, table: Table, key: str, columns: tuple[str, ...], count: int
) -> DirectStatement:
    """``WITH guard AS (...) INSERT INTO table (...) SELECT * FROM (VALUES ...) WHERE EXISTS
    (SELECT 1 FROM guard) RETURNING key``, built once per guard, table, columns and row count.

    In a ``VALUES`` list that feeds a ``SELECT`` PostgreSQL cannot take the columns' types from
    the table, so each value is cast to its column's type (``_cast_type``). The rows go in the
    order listed (the filter is one test of the guard, not of each row), so the ids sorted match
    ``rows``."""
    types = {name: _cast_type(table.c[name].type) for name in columns}
    names = ", ".join(f'"{table.c[name].name}"' for name in columns)
    rows = ", ".join(
        "(" + ", ".join(f"CAST(:r{n}_{name} AS {types[name]})" for name in columns) + ")"
        for n in range(count)
    )
    returned = table.c[key]
    return DirectStatement(
        text(
            f"WITH guard AS ({guard.sql}) "
            f'INSERT INTO "{table.name}" ({names}) SELECT * FROM (VALUES {rows}) AS new_rows ({names}) '
            f'WHERE EXISTS (SELECT 1 FROM guard) RETURNING "{returned.name}"'
        )
        .bindparams(
            *guard.params,
            *(bindparam(f"r{n}_{name}", type_=table.c[name].type) for n in range(count) for name in columns),
        )
        .columns(returned)
    )


def _cast_type(column_type: Any) -> str:
    """The type a value is cast to in ``_guarded_insert``: the column's, but a string without its
    length. An explicit cast to ``VARCHAR(n)`` cuts a longer value short without a word; the
    INSERT's own assignment to the column refuses it ("value too long"), as the transaction's
    INSERT does."""
    dialect = postgresql.dialect()
    plain = column_type.type_engine(dialect) if hasattr(column_type, "type_engine") else column_type
    if isinstance(plain, String) and plain.length is not None:
        return "VARCHAR"
    return str(column_type.compile(dialect=dialect))
