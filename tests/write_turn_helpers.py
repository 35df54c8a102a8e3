"""Holding a SQLite file's write turn as a web worker would, to see who waits for it."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask

from app.extensions import db
from app.write_turns import write_turn


def sqlite_only() -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("write turns are SQLite's: PostgreSQL locks rows")


@contextmanager
def waiting_for_the_turn(app: Flask, work: Callable[[], Any], who: str) -> Iterator[list[Any]]:
    """Hold the write turn and start ``work`` on a thread of its own (in an app context); it must
    still be waiting 0.3 s later. The block runs with the turn still held; once it is let go the
    work finishes, and what it returned is in the list yielded."""
    returned: list[Any] = []
    done = threading.Event()

    def worker() -> None:
        with app.app_context():
            returned.append(work())
            db.session.remove()
        done.set()

    thread = threading.Thread(target=worker)
    with write_turn(db.engine):
        thread.start()
        assert not done.wait(0.3), f"{who} wrote while a web worker held the write turn"
        yield returned
    thread.join(10)


def assert_sqlite_lock_free() -> None:
    """SQLite's write lock can be taken at once (no busy wait), on a connection of its own."""
    connection = sqlite3.connect(db.engine.url.database, timeout=0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
    finally:
        connection.close()
