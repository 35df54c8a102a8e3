"""Taking turns to write SQLite, so a waiting process wakes the moment the other one commits.

SQLite lets one connection write at a time. A second writer is not queued: its busy handler polls,
sleeping 1, 2, 5, 10 ... up to 100 ms between tries, so under steady load from two web workers most
of each worker's time went on sleeping (the webhook benchmark saw a p50 of 170 ms and a sixth of the
floor's throughput). Handling a message is one write transaction from its receipt to its commit, so
on a SQLite file each transaction takes a turn through an exclusive ``flock`` on a file beside the
database: the kernel wakes the next process (or thread: each turn opens its own descriptor) as soon
as the lock is released, and no two handlers ever meet in SQLite's busy handler.

PostgreSQL has row locks and no such limit: there this does nothing.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session


def lock_path(engine: Engine) -> str | None:
    """The lock file for a SQLite database file, or None (another database, or SQLite in memory)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database) + ".write-turn"


@contextmanager
def write_turn(engine: Engine) -> Iterator[None]:
    """Hold the database's write turn for the duration of the block (SQLite files only)."""
    path = lock_path(engine)
    if path is None:
        yield
        return
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing the descriptor releases the lock


def engine_of(session: Session | Connection) -> Engine:
    """The engine a session or connection writes through."""
    bind = session if isinstance(session, Connection) else session.get_bind()
    return bind.engine if isinstance(bind, Connection) else bind  # type: ignore[return-value]


@contextmanager
def committed_in_turn(session: Session | Connection) -> Iterator[None]:
    """The block's writes and their commit inside the database's write turn. On an error they
    are rolled back before the turn is let go, so the next writer never finds SQLite's lock
    still held. Start it with nothing written yet: a write already sent holds SQLite's lock,
    which whoever holds the turn would then wait for."""
    with write_turn(engine_of(session)):
        try:
            yield
            session.commit()
        except BaseException:
            session.rollback()
            raise
