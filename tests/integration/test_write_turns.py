"""SQLite write turns: handlers take turns through a file lock instead of meeting in SQLite's busy handler."""

from __future__ import annotations

import threading
from pathlib import Path

from flask import Flask
from sqlalchemy import create_engine, func, select

from app.conversations import InboundMessage, handle
from app.extensions import db
from app.models import Message
from app.write_turns import lock_path, write_turn

CHILDREN = ("+447700900001", "+447700900002", "+447700900003")


def test_only_a_sqlite_file_has_a_write_turn(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'service.db'}")
    assert lock_path(engine) == str(tmp_path / "service.db") + ".write-turn"
    assert lock_path(create_engine("sqlite://")) is None
    assert lock_path(create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/x")) is None


def test_a_second_writer_waits_for_the_first_to_finish_its_turn(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'service.db'}")
    first_inside, let_first_go, second_inside = threading.Event(), threading.Event(), threading.Event()
    order: list[str] = []

    def first() -> None:
        with write_turn(engine):
            order.append("first in")
            first_inside.set()
            let_first_go.wait(10)
            order.append("first out")

    def second() -> None:
        first_inside.wait(10)
        with write_turn(engine):
            order.append("second in")
            second_inside.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_inside.wait(10)
    assert not second_inside.wait(0.3), "the second writer went in while the first held the turn"
    let_first_go.set()
    for thread in threads:
        thread.join(10)
    assert order == ["first in", "first out", "second in"]


def test_children_texting_at_the_same_moment_are_all_answered_and_stored(demo: Flask) -> None:
    errors: list[BaseException] = []
    replies: list[list[str]] = []

    def child_texts(phone: str) -> None:
        with demo.app_context():
            try:
                for n, text in enumerate(["menu", "1", "menu", "2", "menu"]):
                    outcome = handle(
                        InboundMessage(channel="sms", sender=phone, text=text, provider_id=f"SM{phone}-{n}")
                    )
                    replies.append(outcome.replies)
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=child_texts, args=(phone,)) for phone in CHILDREN]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert len(replies) == 15 and all(replies), "every message had an answer"
    stored = db.session.scalar(select(func.count()).select_from(Message).where(Message.direction == "in"))
    assert stored == 15
