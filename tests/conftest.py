"""Shared fixtures: an app per test on a fresh database, built by the real Alembic migrations.

Every test that takes ``app`` runs on SQLite, and again on PostgreSQL when TEST_DATABASE_URL is
set (CI sets it). Commits are real commits: the transaction behaviour is what must be proved.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask import Flask, g
from flask_migrate import upgrade
from sqlalchemy import create_engine, text

from app import create_app
from app.extensions import db
from tests.fakes.telegram_server import FakeBotApi
from tests.fakes.twilio_server import FakeTwilio

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")


def _reset_postgres(url: str) -> None:
    from app.config import database_url

    engine = create_engine(database_url(url))
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    if not TEST_DATABASE_URL:
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL (CI sets it)")
    _reset_postgres(TEST_DATABASE_URL)
    return TEST_DATABASE_URL


def make_app(database_url: str, tmp_path: Path, **overrides: object) -> Flask:
    config = {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret",
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SIMULATOR_ENABLED": True,
        **overrides,
    }
    flask_app = create_app(config)
    flask_app.instance_path = str(tmp_path / "instance")

    @flask_app.before_request
    def _fresh_request_globals() -> None:
        # Tests keep one app context pushed, so `g` would outlive a request (unlike in a real
        # server): forget the signed-in user and CSRF token cached there by the last request.
        g.pop("_login_user", None)
        g.pop("csrf_token", None)

    return flask_app


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    flask_app = make_app(database_url, tmp_path)
    with flask_app.app_context():
        upgrade()
        yield flask_app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def demo(app: Flask) -> Flask:
    """The app with the demo data loaded today (so the demo review is in the future)."""
    from app.demo import load_demo

    load_demo(db.session)
    db.session.commit()
    return app


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """A fake Twilio REST server on 127.0.0.1 (``.settings()`` points the app at it)."""
    server = FakeTwilio()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_bot_api() -> Iterator[FakeBotApi]:
    """A fake Telegram Bot API server on 127.0.0.1."""
    server = FakeBotApi()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(demo: Flask):  # type: ignore[no-untyped-def]
    return demo.test_client()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/flows/golden")
