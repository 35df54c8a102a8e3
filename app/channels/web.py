"""The web channel: the simulator speaks as a child's SMS number through the same service."""

from __future__ import annotations

import uuid
from typing import Any

from app.conversations import MAX_TEXT_CHARS, InboundMessage, Outcome, handle

CHANNEL = "web"


class BadMessage(ValueError):
    """A simulator request that cannot be handled; the text says what is wrong."""


def parse(payload: Any) -> InboundMessage:
    """Check a simulator JSON body and turn it into an InboundMessage."""
    if not isinstance(payload, dict):
        raise BadMessage('send a JSON object like {"child": "+447700900001", "text": "hello"}')
    child, text = payload.get("child"), payload.get("text")
    if not isinstance(child, str) or not child.strip():
        raise BadMessage('"child" must be the demo child\'s phone number, e.g. "+447700900001"')
    if not isinstance(text, str):
        raise BadMessage('"text" must be a string')
    if len(text) > MAX_TEXT_CHARS:
        raise BadMessage(f'"text" is too long: at most {MAX_TEXT_CHARS} characters')
    provider_id = payload.get("id")
    if provider_id is not None and (not isinstance(provider_id, str) or len(provider_id) > 128):
        raise BadMessage('"id", if given, must be a string of at most 128 characters')
    return InboundMessage(
        channel=CHANNEL,
        sender=child,
        text=text,
        provider_id=provider_id or f"web-{uuid.uuid4()}",
        identity_channel="sms",
    )


def receive(payload: Any) -> Outcome:
    """Handle a simulator message; replies come back in the response, as SMS replies do."""
    return handle(parse(payload), inline=True)
