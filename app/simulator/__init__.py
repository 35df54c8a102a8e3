"""The web simulator: chat as a demo child through the production conversation service.

It exists only in development and demo mode (``make run``); in production every route is 404.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from sqlalchemy import select

from app.channels import web
from app.extensions import db
from app.models import ChannelIdentity, Child
from app.phones import display_phone

bp = Blueprint(
    "simulator",
    __name__,
    url_prefix="/simulator",
    template_folder="templates",
    static_folder="static",
)

UNLINKED_DEMO_NUMBER = "+447700900999"


@bp.before_request
def only_in_development() -> None:
    if not current_app.config.get("SIMULATOR_ENABLED"):
        abort(404)


@bp.get("")
def page() -> str:
    """The chat page."""
    return render_template("simulator.html")


@bp.get("/api/children")
def children():  # type: ignore[no-untyped-def]
    """The children the simulator can speak as: every child with an SMS number, plus an unlinked one."""
    rows = db.session.execute(
        select(ChannelIdentity, Child)
        .join(Child, ChannelIdentity.child_id == Child.id)
        .where(ChannelIdentity.channel == "sms")
        .order_by(Child.id)
    ).all()
    found = [
        {
            "phone": identity.address,
            "display": display_phone(identity.address),
            "name": child.first_name,
            "locale": child.locale,
            "opted_out": identity.opted_out,
        }
        for identity, child in rows
    ]
    found.append(
        {
            "phone": UNLINKED_DEMO_NUMBER,
            "display": display_phone(UNLINKED_DEMO_NUMBER),
            "name": None,
            "locale": None,
            "opted_out": False,
        }
    )
    return jsonify(children=found)


@bp.post("/api/messages")
def messages():  # type: ignore[no-untyped-def]
    """Send one message as a child; answers with the replies and the effects for staff."""
    payload = request.get_json(silent=True)
    try:
        outcome = web.receive(payload)
    except web.BadMessage as error:
        return jsonify(error=str(error)), 400
    return jsonify(replies=outcome.replies, effects=outcome.effects, duplicate=outcome.duplicate)
