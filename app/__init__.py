"""Reviewline: a messaging service that helps children in care reach their reviewing officer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dotenv import load_dotenv
from flask import Flask, jsonify
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from app.config import check_production, database_url, load_settings
from app.content import ContentStore, Shipped
from app.crypto import FieldCipher, configure
from app.extensions import db

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Set by gunicorn.conf.py in each web worker before it builds the app: a web worker never runs
# ``flask db``, so it goes without Flask-Migrate, which imports all of Alembic (about 8 MB of
# every worker's memory). Not a setting: in the platform's environment it would also take
# ``flask db upgrade`` from the release step.
WITHOUT_MIGRATIONS = "REVIEWLINE_WITHOUT_MIGRATIONS"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app: settings, encryption, database, flows, catalogs, blueprints, CLI."""
    app = Flask(__name__, instance_relative_config=True)
    if test_config is None:
        load_dotenv(PROJECT_ROOT / ".env")
        app.config.from_mapping(load_settings(app.instance_path))
    else:
        app.config.from_mapping(load_settings(app.instance_path, environ={}))
        app.config.from_mapping(test_config)
    check_production(app.config)
    from app.channels import telegram

    telegram.check_settings(app.config)

    app.config["SQLALCHEMY_DATABASE_URI"] = database_url(app.config["DATABASE_URL"])
    # A ping before each checkout finds a server connection that died (a PostgreSQL restart) before
    # a request uses it; a SQLite file has no server, so there it would only cost a statement.
    app.config.setdefault(
        "SQLALCHEMY_ENGINE_OPTIONS",
        {"pool_pre_ping": not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")},
    )
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = not app.config.get("DEVELOPMENT") and not app.testing
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    configure(
        FieldCipher.from_setting(app.config["FIELD_ENCRYPTION_KEYS"], app.config.get("BLIND_INDEX_KEY"))
    )
    db.init_app(app)
    if os.environ.get(WITHOUT_MIGRATIONS) != "1":
        from flask_migrate import Migrate

        Migrate(render_as_batch=True, compare_type=True).init_app(
            app, db, directory=str(PROJECT_ROOT / "migrations")
        )

    flows_dir = Path(app.config.get("FLOWS_DIR") or PROJECT_ROOT / "flows")
    locales_dir = Path(app.config.get("LOCALES_DIR") or PROJECT_ROOT / "locales")
    shipped = Shipped.load(flows_dir, locales_dir)
    app.extensions["reviewline.content"] = ContentStore(shipped, float(app.config["CONTENT_REFRESH_SECONDS"]))

    from app.auth import csrf, init_auth
    from app.channels import twilio_sms
    from app.cli import register_cli
    from app.editor import bp as editor_bp
    from app.inbox import bp as inbox_bp
    from app.simulator import bp as simulator_bp

    app.register_blueprint(simulator_bp)
    app.register_blueprint(twilio_sms.bp)
    app.register_blueprint(telegram.bp)
    # Providers sign their webhooks (checked in each adapter); the simulator is development-only.
    for exempt in (twilio_sms.bp, telegram.bp, simulator_bp):
        csrf.exempt(exempt)
    init_auth(app)
    app.register_blueprint(inbox_bp)
    app.register_blueprint(editor_bp)
    register_cli(app)

    @app.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        """200 when the database answers."""
        try:
            db.session.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - any database failure means unhealthy
            db.session.rollback()
            return jsonify(status="error", detail="database unavailable"), 503
        return jsonify(status="ok")

    return app


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """SQLite: enforce foreign keys, write-ahead log for concurrent readers, wait when busy."""
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
