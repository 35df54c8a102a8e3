"""The real app plus baseline endpoints in the same app and server, for the webhook benchmark.

``gunicorn 'benchmarks.baseline_app:create()'`` serves everything ``app.create_app()`` serves, and:

- ``POST /bench/bare``: fixed TwiML, nothing read (what Flask and gunicorn cost on their own);
- ``POST /bench/signed``: checks the Twilio signature as the real webhook does, then fixed TwiML;
- ``POST /bench/floor``: checks the signature, parses the same form and commits one row to a table
  of its own (SQLAlchemy Core on ``db.engine``): the least any webhook that keeps a child's message
  durably must do, so the real webhook is measured against it.

Production code is not changed: the routes are added to the app object here, and are exempt from
CSRF as the real webhook is. Call ``prepare(engine)`` once before starting the server.
"""

from __future__ import annotations

from flask import Flask, Response, request
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, func, insert, select
from sqlalchemy.engine import Engine

from app import create_app as create_real_app
from app.channels.twilio_sms import verify
from app.extensions import db

FIXED_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Thanks</Message></Response>'
BASELINE_PATHS = {"bare": "/bench/bare", "signed": "/bench/signed", "floor": "/bench/floor"}

metadata = MetaData()
floor_rows = Table(
    "bench_floor_row",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("message_sid", String(64), nullable=False),
    Column("sender", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime, nullable=False, server_default=func.now()),
)


def prepare(engine: Engine) -> None:
    """Create the floor's table (before the server starts: two workers creating it at once would race)."""
    metadata.create_all(engine)


def floor_count(engine: Engine) -> int:
    """How many rows the floor endpoint has committed."""
    with engine.connect() as connection:
        # select_from: a count alone names no table, and SQLAlchemy would drop the FROM (always 1).
        return int(connection.scalar(select(func.count()).select_from(floor_rows)) or 0)


def add_baselines(app: Flask) -> Flask:
    """Add the three baseline endpoints to an app built by ``app.create_app``."""
    from app.auth import csrf

    def bare() -> Response:
        return Response(FIXED_TWIML, mimetype="application/xml")

    def signed() -> Response:
        verify()
        return Response(FIXED_TWIML, mimetype="application/xml")

    def floor() -> Response:
        verify()
        form = request.form
        with db.engine.begin() as connection:
            connection.execute(
                insert(floor_rows).values(
                    message_sid=form.get("MessageSid", ""),
                    sender=form.get("From", ""),
                    body=form.get("Body", ""),
                )
            )
        return Response(FIXED_TWIML, mimetype="application/xml")

    for name, view in (("bare", bare), ("signed", signed), ("floor", floor)):
        view.__name__ = f"bench_{name}"
        app.add_url_rule(BASELINE_PATHS[name], endpoint=f"bench_{name}", view_func=view, methods=["POST"])
        csrf.exempt(view)
    return app


def create() -> Flask:
    """WSGI factory: the app as the Procfile builds it (settings from the environment), plus baselines."""
    return add_baselines(create_real_app())
