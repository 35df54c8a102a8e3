"""Browser tests: real headless Chromium (Debian's, at /usr/bin/chromium) against a live server.

``playwright install`` cannot download here (and exits 0 anyway), so the browser is the system
Chromium. Without it every test in this folder is skipped before any Playwright fixture starts.
The live server runs on SQLite only: the browser tests prove the page, not the database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from flask import Flask
from werkzeug.security import generate_password_hash
from werkzeug.serving import WSGIRequestHandler, make_server

from ..conftest import make_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SKIP_REASON = "browser tests need /usr/bin/chromium (apt-get install -y chromium)"
HERE = Path(__file__).resolve().parent


def chromium_launch_args() -> dict[str, Any]:
    """Keyword arguments for ``playwright.chromium.launch`` that use the system Chromium."""
    return {"executable_path": str(CHROMIUM), "args": list(CHROMIUM_ARGS)}


def _cheap_password_hash(password: str) -> str:
    return generate_password_hash(password, method="pbkdf2:sha256:1")


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug's handler without the access log (it would only clutter the test output)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def start_live_server(tmp_dir: Path) -> tuple[str, Callable[[], None]]:
    """Serve the app with the demo data on a fresh SQLite database in ``tmp_dir``.

    Returns the base URL (``http://127.0.0.1:PORT``) and a function that stops the server and
    closes its database connections.
    """
    url, _, stop = start_live_app(tmp_dir)
    return url, stop


def start_live_app(tmp_dir: Path, **overrides: object) -> tuple[str, Flask, Callable[[], None]]:
    """As ``start_live_server``, with settings overridden and the app returned for checks."""
    from flask_migrate import upgrade

    from app.demo import load_demo
    from app.extensions import db

    tmp_dir = Path(tmp_dir)
    app = make_app(f"sqlite:///{tmp_dir / 'browser.db'}", tmp_dir, **overrides)
    # The demo staff's passwords are never used here; hashing them properly takes half a second.
    with app.app_context(), mock.patch("app.demo.generate_password_hash", _cheap_password_hash):
        upgrade()
        load_demo(db.session)
        db.session.commit()
        db.session.remove()

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll interval
        name="live-server",
        daemon=True,
    )
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()

    return f"http://127.0.0.1:{server.server_port}", app, stop


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without Chromium, skip this folder's tests at setup, before Playwright is started."""
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's options (``--headed``, ``--slowmo``...) plus the system Chromium."""
    return {**browser_type_launch_args, **chromium_launch_args()}


@pytest.fixture(scope="session")
def base_url(pytestconfig: pytest.Config) -> str | None:
    """The same value as pytest-playwright's own ``base_url`` (which the context fixtures use).

    Without pytest-base-url installed, pytest-playwright 0.10 defines its fallback as a
    session fixture on a plugin instance, which pytest 9 deprecates with a warning: an error
    here, where warnings are errors.
    """
    return pytestconfig.getoption("--base-url") or pytestconfig.getini("base_url") or None


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[str]:
    """The base URL of the app with the demo data, served on a fresh SQLite database."""
    url, stop = start_live_server(tmp_path)
    try:
        yield url
    finally:
        stop()
