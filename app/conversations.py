"""The conversation service: the one entry point every channel calls for an inbound message.

``handle`` owns the only commit for an inbound message: record the receipt (once per provider
id), identify the child, triage, run global commands and the engine, apply the effects, save state,
messages and outbox rows, commit. On any error it rolls back and re-raises, so the provider
retries and nothing is half-applied. Sending happens after the commit (inline replies from the
channel's own response, or the outbox).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.crypto import blind_index
from app.engine import (
    ConcernRaised,
    Context,
    Effect,
    FlowRuntimeError,
    Inbound,
    Library,
    LocaleChanged,
    OptedIn,
    OptedOut,
    Reply,
    advance,
    render,
)
from app.engine.runtime import new_state, recognise_command
from app.engine.sms import sms_cost
from app.engine.triage import Triage, assess
from app.extensions import db
from app.i18n import Catalogs, format_day
from app.models import (
    ChannelIdentity,
    Child,
    Concern,
    ConversationState,
    Message,
    OutboxMessage,
    Review,
    utcnow,
)
from app.phones import display_phone, normalise_phone

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 10_000
# A risk split over two texts: the earlier one counts if it arrived within this window.
SPLIT_MESSAGE_WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class InboundMessage:
    """A message as a channel adapter parsed it.

    ``channel`` is where it came from (sms, telegram, web); ``identity_channel`` is whose address
    ``sender`` is (the web simulator speaks as a child's SMS number).
    """

    channel: str
    sender: str
    text: str
    provider_id: str | None = None
    identity_channel: str | None = None


@dataclass
class Outcome:
    """What handling a message produced: texts for the child (in order) and effects for staff."""

    replies: list[str] = field(default_factory=list)
    effects: list[dict[str, Any]] = field(default_factory=list)
    duplicate: bool = False
    child_id: int | None = None
    message_id: int | None = None


def clean_text(text: str) -> str:
    """Text safe to store and match: lone surrogates replaced, NUL removed, capped in length."""
    text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace").replace("\x00", "")
    return text[:MAX_TEXT_CHARS]


def normalise_address(channel: str, raw: str) -> str | None:
    """The canonical address for a channel: E.164 for SMS, the numeric chat id for Telegram."""
    if channel == "sms":
        return normalise_phone(raw)
    value = raw.strip()
    return value or None


def library() -> Library:
    return current_app.extensions["reviewline.library"]


def catalogs() -> Catalogs:
    return current_app.extensions["reviewline.catalogs"]


def next_review(session: Session, child: Child, today: date) -> Review | None:
    """The child's next scheduled review on or after today."""
    return session.scalar(
        select(Review)
        .where(Review.child_id == child.id, Review.status == "scheduled", Review.scheduled_for >= today)
        .order_by(Review.scheduled_for)
        .limit(1)
    )


def child_variables(session: Session, child: Child, locale: str, today: date) -> dict[str, str | None]:
    """The read-only facts flows may show this child, in their language."""
    authority = child.authority
    iro = child.current_iro
    review = next_review(session, child, today)
    return {
        "first_name": child.first_name,
        "role_title": authority.wording("role_title", locale),
        "role_short": authority.wording("role_short", locale),
        "reply_time": authority.wording("reply_time", locale),
        "iro_name": iro.display_name if iro else None,
        "iro_contact": display_phone(iro.contact_phone) if iro and iro.contact_phone else None,
        "next_review": format_day(review.scheduled_for, locale) if review else None,
        "service_name": authority.name,
        "out_of_hours": authority.out_of_hours_phone or None,
        "advocacy_contact": authority.advocacy_contact or None,
    }


def _system_reply(key: str) -> Reply:
    messages = library().messages
    return Reply(messages.context(key), messages.texts[key])


class _Conversation:
    """One inbound message being handled inside one transaction."""

    def __init__(self, session: Session, inbound: InboundMessage, now: datetime, inline: bool):
        self.session = session
        self.inline = inline
        self.inbound = inbound
        self.now = now
        self.text = clean_text(inbound.text)
        self.outcome = Outcome()
        self.identity: ChannelIdentity | None = None
        self.child: Child | None = None
        self.effects: list[Effect] = []

    def record_receipt(self, child: Child | None, sender_index: str | None) -> Message | None:
        """Store the inbound message; None if this provider id was already processed."""
        message = Message(
            child_id=child.id if child else None,
            direction="in",
            channel=self.inbound.channel,
            provider_id=self.inbound.provider_id,
            sender_index=sender_index,
            body=self.text,
            status="received",
            created_at=self.now,
        )
        self.session.add(message)
        try:
            # The unique (channel, direction, provider_id) constraint decides, not a prior check:
            # of two copies arriving at once, exactly one insert succeeds. Nothing else has been
            # written in this transaction yet, so rolling it back loses nothing.
            self.session.flush()
        except IntegrityError:
            self.session.rollback()
            return None
        self.outcome.message_id = message.id
        return message

    def previous_text(self, child: Child, before_id: int) -> str | None:
        """The child's previous message if it was recent, so a risk split over two texts is seen."""
        previous = self.session.scalar(
            select(Message)
            .where(Message.child_id == child.id, Message.direction == "in", Message.id < before_id)
            .order_by(Message.id.desc())
            .limit(1)
        )
        if previous and previous.created_at >= self.now - SPLIT_MESSAGE_WINDOW:
            return previous.body
        return None

    def raise_concern(self, message: Message, effect: ConcernRaised) -> None:
        self.session.add(
            Concern(
                child_id=self.child.id if self.child else None,
                message_id=message.id,
                category=effect.category,
                urgent=effect.urgent,
                detail=", ".join(effect.reasons) or None,
                created_at=self.now,
            )
        )

    def raise_urgent(self, message: Message, triage: Triage) -> None:
        """An urgent concern for what triage found in this message."""
        effect = ConcernRaised(urgent=True, category=triage.category or "unsafe", reasons=triage.reasons)
        self.apply(effect, message)

    def apply(self, effect: Effect, message: Message) -> None:
        """Make an effect real in the database; an effect with no handler is an error, not a drop."""
        handlers: dict[type[Effect], Callable[[Any], None]] = {
            ConcernRaised: lambda e: self.raise_concern(message, e),
            OptedOut: lambda e: self._set_opt_out(True),
            OptedIn: lambda e: self._set_opt_out(False),
            LocaleChanged: lambda e: setattr(self.child, "locale", e.locale),
        }
        handler = handlers.get(type(effect))
        if handler is None:
            raise NotImplementedError(f"no handler for the effect {effect.kind!r}")
        handler(effect)
        self.outcome.effects.append(effect.as_dict())

    def _set_opt_out(self, opted_out: bool) -> None:
        assert self.identity is not None
        self.identity.opted_out = opted_out
        self.identity.opted_out_at = self.now if opted_out else None

    def send(self, replies: list[Reply], variables: dict[str, str | None], locale: str) -> None:
        """Render replies in the child's language and record them (and outbox rows if not inline)."""
        translate = catalogs().translator(locale)
        for reply in replies:
            text = render(reply, translate, variables)
            cost = sms_cost(text)
            message = Message(
                child_id=self.child.id if self.child else None,
                direction="out",
                channel=self.inbound.channel,
                body=text,
                status="sent" if self.inline else "queued",
                encoding=cost.encoding,
                segments=cost.segments,
                created_at=self.now,
            )
            self.session.add(message)
            if not self.inline:
                self.session.add(
                    OutboxMessage(message=message, identity_id=self.identity.id if self.identity else None)
                )
            self.outcome.replies.append(text)

    def load_state(self, child: Child) -> ConversationState:
        # Locks the child's row on PostgreSQL so two messages from one child are handled in turn.
        state = self.session.scalar(
            select(ConversationState).where(ConversationState.child_id == child.id).with_for_update()
        )
        if state is None:
            state = ConversationState(child_id=child.id, data=new_state())
            self.session.add(state)
        return state


def handle(inbound: InboundMessage, *, inline: bool = True, now: datetime | None = None) -> Outcome:
    """Handle one inbound message in one transaction and return what to send back."""
    session = db.session
    conversation = _Conversation(session, inbound, now or utcnow(), inline)
    try:
        outcome = _handle(conversation)
        session.commit()
    except Exception:
        session.rollback()
        raise
    return outcome


def _handle(conv: _Conversation) -> Outcome:
    session, inbound = conv.session, conv.inbound
    identity_channel = inbound.identity_channel or inbound.channel
    address = normalise_address(identity_channel, inbound.sender)
    identity = ChannelIdentity.find(session, identity_channel, address) if address else None
    if identity is None:
        return _handle_unknown(conv, identity_channel, address)

    conv.identity, conv.child = identity, identity.child
    child = identity.child
    conv.outcome.child_id = child.id
    message = conv.record_receipt(child, None)
    if message is None:
        conv.outcome.duplicate = True
        return conv.outcome

    state_row = conv.load_state(child)
    lib = library()
    triage = assess(conv.text, conv.previous_text(child, message.id))
    if triage.urgent:
        conv.raise_urgent(message, triage)
    today = conv.now.date()
    variables = child_variables(session, child, child.locale, today)
    context = Context(
        now=conv.now,
        locale=child.locale,
        variables=variables,
        translate=catalogs().translator(child.locale),
    )
    if identity.opted_out and recognise_command(lib, conv.text, context) != "start":
        # Opted out: keep the message (staff see it, and any urgent concern stands) but send
        # nothing until START.
        return conv.outcome
    if triage.urgent:
        # The safety reply alone; the child keeps their place in the conversation.
        conv.send([_system_reply("safety_urgent")], variables, child.locale)
        return conv.outcome

    try:
        step = advance(lib, state_row.data, Inbound(text=conv.text), context)
    except FlowRuntimeError:
        log.exception("flow error for child %s; state reset, message kept", child.id)
        state_row.data = new_state()
        conv.send([_system_reply("something_went_wrong")], variables, child.locale)
        return conv.outcome

    for effect in step.effects:
        conv.apply(effect, message)
    locale = child.locale
    if locale != context.locale:
        variables = child_variables(session, child, locale, today)
    state_row.data = step.state
    conv.send(list(step.replies), variables, locale)
    return conv.outcome


def _handle_unknown(conv: _Conversation, identity_channel: str, address: str | None) -> Outcome:
    """A sender linked to no child: keep the message, reply with nothing about anyone."""
    sender_index = blind_index(f"{identity_channel}:{address or conv.inbound.sender}")
    message = conv.record_receipt(None, sender_index)
    if message is None:
        conv.outcome.duplicate = True
        return conv.outcome
    triage = assess(conv.text)
    if triage.urgent:
        # Kept for an administrator to see; the reply promises nothing beyond the emergency numbers.
        conv.raise_urgent(message, triage)
    conv.send([_system_reply("unknown_sender")], {}, "en")
    return conv.outcome
