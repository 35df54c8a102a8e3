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
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import Connection, Table, TextClause, bindparam, insert, inspect, text
from sqlalchemy.orm import Session
from sqlalchemy.orm.interfaces import MANYTOONE

from app.models import Base


def column_values(obj: Base) -> dict[str, Any]:
    """The row ``obj`` stands for, as the ORM would insert it (generated ids left out)."""
    mapper = inspect(type(obj))
    state = obj.__dict__
    values: dict[str, Any] = {}
    for relationship in mapper.relationships:
        related = state.get(relationship.key)
        if relationship.direction is MANYTOONE and related is not None:
            for local, remote in relationship.local_remote_pairs:
                values[local.key] = getattr(related, remote.key)
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        value = state.get(prop.key)
        if value is None:
            if column.key in values:
                continue  # from the relationship
            if column.primary_key and column.autoincrement in (True, "auto"):
                continue  # the database numbers it
            if column.default is not None:
                value = column.default.arg(None) if column.default.is_callable else column.default.arg
            elif column.server_default is not None:
                continue  # the database's own default
        values[column.key] = value
    return values


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
    return sorted(connection.execute(statement, values).scalars())


# A message writes a handful of rows; this bounds a statement's parameters (SQLite allows 32,766)
# and the size of the statements kept.
MOST_ROWS = 50


@lru_cache(maxsize=256)
def _multi_row_insert(table: Table, key: str, columns: tuple[str, ...], count: int) -> TextClause:
    """INSERT of ``count`` rows of ``columns`` into ``table``, RETURNING the new ``key``s.

    Written as text with typed parameters: SQLAlchemy does not cache the compiled form of a Core
    multi-row ``insert().values([...])``, and compiling it was slower than the statement itself."""
    names = ", ".join(f'"{table.c[name].name}"' for name in columns)
    rows = ", ".join("(" + ", ".join(f":r{n}_{name}" for name in columns) + ")" for n in range(count))
    returned = table.c[key]
    return (
        text(f'INSERT INTO "{table.name}" ({names}) VALUES {rows} RETURNING "{returned.name}"')
        .bindparams(
            *(bindparam(f"r{n}_{name}", type_=table.c[name].type) for n in range(count) for name in columns)
        )
        .columns(returned)
    )
