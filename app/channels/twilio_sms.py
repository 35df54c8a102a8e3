"""Twilio SMS inbound: verify the signature, parse the form, answer with TwiML built by the library.

The signature is checked against the public URL Twilio used (``PUBLIC_BASE_URL`` plus the path
and query string), so the check works behind a proxy. Every rejection is logged and counted, so a
wrong setting is noticed at once rather than silently losing children's messages.
"""

from __future__ import annotations

import hmac
import logging
from collections import Counter
from functools import lru_cache
from urllib.parse import urlparse

from flask import Blueprint, Response, abort, current_app, request
from sqlalchemy import select
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from app.conversations import InboundMessage, handle, keep_unhandled
from app.extensions import db
from app.models import Message

log = logging.getLogger(__name__)
bp = Blueprint("twilio_sms", __name__, url_prefix="/webhooks/twilio")
rejections: Counter[str] = Counter()


def signed_url() -> str:
    """The URL Twilio signed: the public origin if configured, else the request's own."""
    base = current_app.config.get("PUBLIC_BASE_URL")
    if not base:
        return request.url
    query = request.query_string.decode()
    return base.rstrip("/") + request.path + (f"?{query}" if query else "")


@lru_cache(maxsize=4)
def _validator(token: str) -> RequestValidator:
    return RequestValidator(token)


def signature_valid(token: str, url: str, params: dict[str, str], signature: str) -> bool:
    """Whether ``signature`` is Twilio's for this URL and form (the twilio library's check).

    The library signs the URL twice, with and without the port, and accepts either. The URL as
    it arrived (tidied by ``urlparse``, as the library tidies both forms) is one of the two, so
    it is signed first and alone (compared in constant time); only a request signed for the other
    form costs the library's whole check."""
    if not signature:
        return False
    validator = _validator(token)
    as_given = validator.compute_signature(urlparse(url).geturl(), params)
    if hmac.compare_digest(as_given.encode(), signature.encode()):
        return True
    return validator.validate(url, params, signature)


def verify() -> None:
    """403 unless the request carries a valid X-Twilio-Signature; 404 if SMS is not configured."""
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    if not token:
        abort(404)
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature_valid(token, signed_url(), request.form.to_dict(), signature):
        reason = "missing" if not signature else "invalid"
        rejections[reason] += 1
        log.warning(
            "rejected a Twilio webhook with a %s signature (%d so far) for %s; check TWILIO_AUTH_TOKEN "
            "and PUBLIC_BASE_URL",
            reason,
            sum(rejections.values()),
            signed_url(),
        )
        abort(403)


def twiml(replies: list[str]) -> Response:
    response = MessagingResponse()
    for text in replies:
        response.message(text)
    return Response(str(response), mimetype="application/xml")


# Twilio's own opt-out handling names what a keyword meant (``OptOutType``). For STOP it has
# already answered the child and blocks anything more we send, so we reply with nothing.
OPT_OUT_TYPES = {"STOP": "stop", "START": "start", "HELP": "help"}


@bp.post("/sms")
def inbound() -> Response:
    """An SMS from a child: handled once per MessageSid; the replies are TwiML <Message>s."""
    verify()
    sender, sid = request.form.get("From", ""), request.form.get("MessageSid", "")
    if not sender or not sid:
        abort(400, "From and MessageSid are required")
    command = OPT_OUT_TYPES.get(request.form.get("OptOutType", "").strip().upper())
    message = InboundMessage(
        channel="sms",
        sender=sender,
        text=request.form.get("Body", ""),
        provider_id=sid,
        command=command,
        silent=command == "stop",
    )
    try:
        outcome = handle(message)
    except Exception:  # noqa: BLE001 - Twilio would not send it again: keep it, flagged for staff
        log.exception("SMS %s could not be handled; kept for staff with a sorry reply", sid)
        outcome = keep_unhandled(message)
    return twiml([] if outcome.duplicate else outcome.replies)


DELIVERY_STATUSES = {"queued", "sending", "sent", "delivered", "undelivered", "failed", "read", "accepted"}


@bp.post("/status")
def status() -> tuple[str, int]:
    """A delivery status callback: update the outbound message Twilio sent under that sid."""
    verify()
    sid, state = request.form.get("MessageSid", ""), request.form.get("MessageStatus", "")
    if not sid or state not in DELIVERY_STATUSES:
        abort(400, "MessageSid and a known MessageStatus are required")
    message = db.session.scalar(
        select(Message).where(
            Message.channel == "sms", Message.direction == "out", Message.provider_id == sid
        )
    )
    if message is None:
        log.warning("status %s for an unknown message %s", state, sid)
        return "", 204
    message.status = state
    db.session.commit()
    return "", 204
