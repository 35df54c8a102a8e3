"""The conversation service: the one entry point every channel calls for an inbound message.

``handle`` owns the only commit for an inbound message: record the receipt (once per provider
id), identify the child, triage, run global commands and the engine, apply the effects, save state,
messages and outbox rows, commit. On any error it rolls back and re-raises, so the provider
retries and nothing is half-applied. Sending happens after the commit (inline replies from the
channel's own response, or the outbox).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any, NoReturn, TypeAlias, overload

from sqlalchemy import Select, Update, bindparam, insert, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app import content
from app.direct_statements import DirectStatement
from app.engine import (
    ActionNotHappened,
    AdvocateRequested,
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
    WishesSubmitted,
    advance,
    choices,
    render,
)
from app.engine.feelings import is_sad_news
from app.engine.runtime import ActionView, new_state, recognise_command
from app.engine.sms import sms_cost
from app.engine.triage import Triage, assess
from app.extensions import db
from app.i18n import Catalogs, format_day
from app.linking import redeem, start_code
from app.models import (
    Authority,
    ChannelIdentity,
    Child,
    Concern,
    ConversationState,
    IroAssignment,
    Message,
    OutboxMessage,
    Review,
    ReviewAction,
    StaffUser,
    WishesSubmission,
    utcnow,
)
from app.models.people import in_language
from app.models.reviews import action_is_late
from app.new_rows import Guard, insert_new, insert_new_if, one_statement_rows
from app.office_hours import next_opening
from app.phones import display_phone, normalise_phone
from app.write_turns import write_turn

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 10_000
# Effects that change only the child's own settings, not something for staff to act on.
LOCAL_EFFECTS = (OptedOut, OptedIn, LocaleChanged)
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
    # What the provider already decided the message means ("stop", "start", "help": Twilio's
    # OptOutType), used instead of matching the words.
    command: str | None = None
    # The provider has already answered (Twilio replies to STOP itself and blocks ours).
    silent: bool = False
    # A photo, sticker, voice note ... that came instead of (or with) words.
    attachment: str | None = None
    # The language the sender's app is set to (Telegram), for a sender linked to no child.
    locale_hint: str | None = None


@dataclass
class Outcome:
    """What handling a message produced: texts for the child (in order) and effects for staff."""

    replies: list[str] = field(default_factory=list)
    effects: list[dict[str, Any]] = field(default_factory=list)
    duplicate: bool = False
    child_id: int | None = None
    message_id: int | None = None


@dataclass
class AuthoritySettings:
    """The settings of a child's authority that a conversation reads, as plain values."""

    id: int
    name: str
    nation: str
    role_title: dict[str, str] | None
    role_short: dict[str, str] | None
    reply_time: dict[str, str] | None
    out_of_hours_phone: str
    office_days: list[int] | None
    office_opens_at: str
    office_closes_at: str
    advocacy_contact: str

    def wording(self, field: str, locale: str) -> str:
        """A per-locale setting in the child's language, falling back to English (as ``Authority``)."""
        return in_language(getattr(self, field), locale)


@dataclass(frozen=True)
class ReadWithSender:
    """Facts flows often show, read in the sender's own query (``find_sender``) rather than each by
    a statement of its own when a flow first shows it: the reviewing officer's name and phone now
    (None: no reviewing officer), and the day of the next scheduled review on or after ``today``."""

    today: date
    iro_name: str | None
    iro_phone: str | None
    next_review_day: date | None


@dataclass
class SenderChild:
    """The child a message came from, as plain values (``Child`` where the ORM object is at hand)."""

    id: int
    first_name: str
    locale: str
    authority: AuthoritySettings
    facts: ReadWithSender | None = None


@dataclass
class Sender:
    """The identity a message came from, with its child, as plain values (``ChannelIdentity`` where
    the ORM object is at hand). Changes to it are written by ``_Conversation.write``."""

    id: int
    child_id: int
    channel: str
    opted_out: bool
    child: SenderChild
    opted_out_at: datetime | None = None


# A child as handling a message knows them: plain values, or the ORM object on the rarer paths.
AnyChild: TypeAlias = Child | SenderChild


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
    """The flows to serve now (published versions included; see ``app.content``)."""
    return content.current(db.session)[0]


def catalogs() -> Catalogs:
    """The translations to serve now (approved editor translations included)."""
    return content.current(db.session)[1]


# Built once, with the child and the day as bound values.
NEXT_REVIEW = Review.next_of(bindparam("child"), bindparam("today"))
NEXT_REVIEW_DAY = NEXT_REVIEW.with_only_columns(Review.scheduled_for)
CURRENT_IRO = IroAssignment.current_iro_of(bindparam("child"))


def next_review(session: Session, child: AnyChild, today: date) -> Review | None:
    """The child's next scheduled review on or after today."""
    return session.scalar(NEXT_REVIEW, {"child": child.id, "today": today})


class ChildFacts(Mapping[str, str | None]):
    """The read-only facts flows may show this child, in their language, each worked out on first
    read and kept for the rest of this message.

    The reviewing officer and the next review's day come read with the sender (``ReadWithSender``,
    for a ``SenderChild``); for an ORM ``Child`` (the rarer paths) each is looked up here when a
    flow first shows it, on the message's own connection (through the session, an ORM query
    builds its compile state again on every call). Office hours are worked out only if read."""

    def __init__(self, session: Session, child: AnyChild, locale: str, now: datetime):
        self._session, self._child, self._locale, self._now = session, child, locale, now
        self._known: dict[str, str | None] = {}
        # Read with the sender for this day, if they were (else each is looked up here).
        facts = child.facts if isinstance(child, SenderChild) else None
        self._read = facts if facts is not None and facts.today == now.date() else None

    @cached_property
    def _opens(self) -> datetime | None:
        return next_opening(self._child.authority, self._now)

    @cached_property
    def _iro(self) -> tuple[str, str | None] | None:
        """The reviewing officer's name and phone: as read with the sender, else one query (no ORM
        objects to build)."""
        if self._read is not None:
            read = self._read
            return None if read.iro_name is None else (read.iro_name, read.iro_phone)
        row = self._session.connection().execute(CURRENT_IRO, {"child": self._child.id}).first()
        return None if row is None else (row.display_name, row.contact_phone)

    def _look_up(self, name: str) -> str | None:
        child, locale = self._child, self._locale
        if name == "office_closed":
            return "yes" if self._opens else None
        if name == "office_opens":
            opens = self._opens
            return f"{format_day(opens.date(), locale)}, {opens:%H:%M}" if opens else None
        if name == "first_name":
            return child.first_name
        if name in ("role_title", "role_short", "reply_time"):
            return child.authority.wording(name, locale)
        if name == "iro_name":
            iro = self._iro
            return iro[0] if iro else None
        if name == "iro_contact":
            iro = self._iro
            return display_phone(iro[1]) if iro and iro[1] else None
        if name == "next_review":
            if self._read is not None:
                day = self._read.next_review_day
            else:
                day = self._session.connection().scalar(
                    NEXT_REVIEW_DAY, {"child": child.id, "today": self._now.date()}
                )
            return format_day(day, locale) if day else None
        if name == "service_name":
            return child.authority.name
        if name == "out_of_hours":
            return child.authority.out_of_hours_phone or None
        if name == "advocacy_contact":
            return child.authority.advocacy_contact or None
        raise KeyError(name)

    def __getitem__(self, name: str) -> str | None:
        if name not in self._known:
            self._known[name] = self._look_up(name)
        return self._known[name]

    def __iter__(self) -> Iterator[str]:
        return iter(CHILD_FACTS)

    def __len__(self) -> int:
        return len(CHILD_FACTS)


CHILD_FACTS = (
    "office_closed",
    "office_opens",
    "first_name",
    "role_title",
    "role_short",
    "reply_time",
    "iro_name",
    "iro_contact",
    "next_review",
    "service_name",
    "out_of_hours",
    "advocacy_contact",
)


def child_variables(session: Session, child: AnyChild, locale: str, now: datetime) -> ChildFacts:
    """The read-only facts flows may show this child, in their language (looked up as read)."""
    return ChildFacts(session, child, locale, now)


class ChildActions(Sequence[ActionView]):
    """The actions from the child's most recent held review, with late worked out from the due
    date; looked up on first use (only the "my plan" steps read them)."""

    def __init__(self, session: Session, child: AnyChild, locale: str, today: date):
        self._args = (session, child, locale, today)
        self._actions: tuple[ActionView, ...] | None = None

    def _all(self) -> tuple[ActionView, ...]:
        if self._actions is None:
            self._actions = _load_actions(*self._args)
        return self._actions

    @overload
    def __getitem__(self, index: int) -> ActionView: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[ActionView]: ...

    def __getitem__(self, index: int | slice) -> ActionView | Sequence[ActionView]:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())


def child_actions(session: Session, child: AnyChild, locale: str, today: date) -> Sequence[ActionView]:
    """The actions from the child's most recent held review (looked up on first use)."""
    return ChildActions(session, child, locale, today)


# The actions of the child's most recent held review, in one query (plain values: building the
# ORM objects cost more than the query).
PLAN_ACTIONS = (
    select(
        ReviewAction.id,
        ReviewAction.description,
        ReviewAction.owner,
        ReviewAction.due_on,
        ReviewAction.status,
    )
    .where(
        ReviewAction.review_id
        == Review.last_held_of(bindparam("child")).with_only_columns(Review.id).scalar_subquery()
    )
    .order_by(ReviewAction.id)
)


# One of the child's actions by its id (none if it is another child's).
CHILDS_ACTION = (
    select(ReviewAction.id, ReviewAction.description)
    .join(Review, Review.id == ReviewAction.review_id)
    .where(ReviewAction.id == bindparam("action"), Review.child_id == bindparam("child"))
)


_PLAN_ACTIONS = DirectStatement(PLAN_ACTIONS)


def _load_actions(session: Session, child: AnyChild, locale: str, today: date) -> tuple[ActionView, ...]:
    return tuple(
        ActionView(
            id=action_id,
            what=description,
            who=owner,
            due=format_day(due_on, locale) if due_on else None,
            status="late" if action_is_late(status, due_on, today) else status,
        )
        # In the order of PLAN_ACTIONS's columns.
        for action_id, description, owner, due_on, status in _PLAN_ACTIONS.rows(
            session.connection(), {"child": child.id}
        )
    )


def engine_context(session: Session, child: AnyChild, now: datetime) -> Context:
    """What the engine may know about this child now, in their language (each fact looked up
    only if the conversation reads it)."""
    return Context(
        now=now,
        locale=child.locale,
        variables=child_variables(session, child, child.locale, now),
        translate=catalogs().translator(child.locale),
        actions=child_actions(session, child, child.locale, now.date()),
    )


def urgent_concern(triage: Triage) -> ConcernRaised:
    """The urgent concern for what triage found."""
    return ConcernRaised(urgent=True, category=triage.category or "unsafe", reasons=triage.reasons)


def safety_reply() -> Reply:
    """The reply to any message that may mean a child is at risk."""
    return _system_reply("safety_urgent")


def _system_reply(key: str) -> Reply:
    messages = library().messages
    return Reply(messages.context(key), messages.texts[key])


def render_for_child(
    reply: Reply, locale: str, variables: Mapping[str, str | None], using: Catalogs | None = None
) -> str:
    """A reply in the child's language. One not translated yet is never silently English: a line
    in their language says so."""
    using = using or catalogs()
    untranslated: list[str] = []
    text = render(reply, using.translator(locale, untranslated), variables)
    if untranslated:
        text += "\n" + render(_system_reply("not_in_your_language"), using.translator(locale), variables)
    return text


class _Conversation:
    """One inbound message being handled: its reads, then all its writes at once."""

    def __init__(
        self, session: Session, inbound: InboundMessage, now: datetime, inline: bool, autocommit: bool = False
    ):
        self.session = session
        self.inline = inline
        # PostgreSQL: read outside a transaction and, where it fits, write in one statement (see
        # ``write``). Otherwise everything happens in the session's transaction.
        self.autocommit = autocommit
        self.inbound = inbound
        self.now = now
        self.text = clean_text(inbound.text)
        self.outcome = Outcome()
        # Plain values for a known sender (``find_sender``); ORM objects on the rarer paths (a chat
        # just linked, a message kept after an error). Either way ``write`` stores their changes.
        self.identity: ChannelIdentity | Sender | None = None
        self.child: AnyChild | None = None
        self.effects: list[Effect] = []
        self.opting_out = False
        self.message: Message | None = None
        self.state: State | None = None
        # New rows (the message, replies, concerns ...): written together by ``write``.
        self.new: list[Message | Concern | OutboxMessage | WishesSubmission] = []
        # Changes to the sender (an opt-out, a language), one UPDATE each: written by ``write``
        # (the sender is plain values, not an object the session would flush).
        self.changes: list[Update] = []

    def record_receipt(self, child: AnyChild | None, sender_index: str | None) -> Message:
        """The inbound message, to be stored with everything else when the handling commits (where
        its unique provider id decides whether it is a copy of one already processed)."""
        attachment = self.inbound.attachment
        message = Message(
            child_id=child.id if child else None,
            direction="in",
            channel=self.inbound.channel,
            provider_id=self.inbound.provider_id,
            sender_index=sender_index,
            body="\n".join(filter(None, [f"[{attachment}]" if attachment else None, self.text])),
            status="received",
            created_at=self.now,
        )
        self.new.append(message)
        self.message = message
        return message

    def add_concern(self, message: Message, **fields: Any) -> None:
        self.new.append(
            Concern(
                child_id=self.child.id if self.child else None,
                message=message,
                created_at=self.now,
                **fields,
            )
        )

    def raise_concern(self, message: Message, effect: ConcernRaised) -> None:
        detail = "\n".join(filter(None, [effect.detail, ", ".join(effect.reasons)]))
        self.add_concern(
            message, category=effect.category, urgent=effect.urgent, route=effect.route, detail=detail or None
        )

    def request_advocate(self, message: Message) -> None:
        """An advocacy request: staff pass it to the authority's advocacy service."""
        self.add_concern(
            message, category="advocacy", route="advocacy", detail="The child asked for an advocate."
        )

    def action_not_happened(self, message: Message, effect: ActionNotHappened) -> None:
        """A concern linked to the action, if it really is one of this child's actions."""
        action = None
        if effect.action_id and self.child is not None:
            action = (
                self.session.connection()
                .execute(CHILDS_ACTION, {"action": effect.action_id, "child": self.child.id})
                .first()
            )
        self.add_concern(
            message,
            category="action_not_happened",
            review_action_id=action.id if action else None,
            detail=f"The child says this has not happened: {action.description}" if action else None,
        )

    def submit_wishes(self, effect: WishesSubmitted) -> None:
        """Store confirmed wishes and feelings against the child's next review (unseen: flagged)."""
        assert self.child is not None
        review = next_review(self.session, self.child, self.now.date())
        answers = {key: value for key, value in effect.answers}
        self.new.append(
            WishesSubmission(
                child_id=self.child.id,
                review_id=review.id if review else None,
                answers={"answers": answers, "private": list(effect.private)},
                submitted_at=self.now,
            )
        )

    def raise_urgent(self, message: Message, triage: Triage) -> None:
        """An urgent concern for what triage found in this message."""
        self.apply(urgent_concern(triage), message)

    def apply(self, effect: Effect, message: Message) -> None:
        """Make an effect real in the database; an effect with no handler is an error, not a drop."""
        handlers: dict[type[Effect], Callable[[Any], None]] = {
            ConcernRaised: lambda e: self.raise_concern(message, e),
            AdvocateRequested: lambda e: self.request_advocate(message),
            ActionNotHappened: lambda e: self.action_not_happened(message, e),
            WishesSubmitted: self.submit_wishes,
            OptedOut: lambda e: self._set_opt_out(True, message),
            OptedIn: lambda e: self._set_opt_out(False, message),
            LocaleChanged: lambda e: self._set_locale(e.locale),
        }
        handler = handlers.get(type(effect))
        if handler is None:
            raise NotImplementedError(f"no handler for the effect {effect.kind!r}")
        handler(effect)
        self.outcome.effects.append(effect.as_dict())

    def _set_opt_out(self, opted_out: bool, message: Message) -> None:
        assert self.identity is not None
        if opted_out and not self.identity.opted_out:
            # Their reviewing officer sees it: a child who stops may still need them.
            self.add_concern(
                message,
                category="opted_out",
                detail=f"The child sent STOP on {self.identity.channel}: nothing will be sent to them "
                "there until they send START.",
            )
        if opted_out:
            # Nothing queued before STOP goes out after it (nor after a later START); only the
            # reply to this STOP is sent.
            self.opting_out = True
            pending = select(OutboxMessage).where(
                OutboxMessage.identity_id == self.identity.id, OutboxMessage.status == "pending"
            )
            for row in self.session.scalars(pending):
                row.status, row.message.status = "cancelled", "cancelled"
        self.identity.opted_out = opted_out
        self.identity.opted_out_at = self.now if opted_out else None
        self.changes.append(
            update(ChannelIdentity)
            .where(ChannelIdentity.id == self.identity.id)
            .values(opted_out=opted_out, opted_out_at=self.identity.opted_out_at)
        )

    def _set_locale(self, locale: str) -> None:
        assert self.child is not None
        self.child.locale = locale
        self.changes.append(update(Child).where(Child.id == self.child.id).values(locale=locale))

    def send(self, replies: list[Reply], variables: Mapping[str, str | None], locale: str) -> None:
        """Render replies in the child's language and record them (and outbox rows if not inline)."""
        if self.inbound.silent:
            return
        translate = catalogs().translator(locale)
        for reply in replies:
            text = render_for_child(reply, locale, variables)
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
            self.new.append(message)
            if not self.inline:
                buttons = choices(reply, translate, variables) if self.inbound.channel == "telegram" else []
                self.new.append(
                    OutboxMessage(
                        message=message,
                        identity_id=self.identity.id if self.identity else None,
                        address=None if self.identity else self.inbound.sender,
                        buttons=[list(b) for b in buttons] or None,
                        confirms_opt_out=self.opting_out,
                    )
                )
            self.outcome.replies.append(text)

    def load_state(self, child: AnyChild) -> State:
        """The child's conversation state, read now."""
        row = self.session.execute(STATE_QUERY, {"child": child.id}).first()
        return self.use_state(child, State(child.id, *row) if row else None)

    def use_state(self, child: AnyChild, found: State | None) -> State:
        """The state this message works on: ``found`` (read with the sender), or a new one."""
        self.state = found or State(child.id, new_state())
        return self.state

    def write(self) -> None:
        """Write everything this message changed, in the session's transaction (not committed).

        The state goes first, then changes to objects the session holds (outbox rows a STOP
        cancels, a claimed link code) are flushed, and the new rows go with Core
        (``app.new_rows``). Every message moves the
        conversation state's revision on, even one that leaves the conversation where it was (a
        STOP, a photo, an urgent message): of two messages from one child handled at once, the
        second always finds here that the first came in between (``StaleDataError``) and is worked
        out again, seeing its opt-out, its words for the split-risk check, its queued replies. A
        first message makes the row: two first messages clash on its key (``IntegrityError``).
        On PostgreSQL the message was read outside a transaction (``autocommit``). The usual
        write, new rows of one table and the state moved on, then goes in one statement
        (``insert_new_if``: the state's UPDATE, or for a child's first message its INSERT, and the
        rows' INSERT together, atomic on their own), with no BEGIN and no COMMIT: three round trips
        fewer than the transaction. Any other write (an opt-out, a concern beside the message,
        objects the session holds) opens a transaction first and goes as below.
        """
        if self.autocommit:
            if self._write_in_one_statement():
                return
            # The session's commit and rollback still end this transaction: psycopg sends COMMIT or
            # ROLLBACK whenever the server says a transaction is open, autocommit or not.
            self.session.connection().exec_driver_sql("BEGIN")
        connection = self.session.connection()
        # The state first, as in the one statement: both ways lock the state's row before the new
        # rows' keys, so two messages written the two ways cannot wait for each other in a circle.
        if self.state is not None:
            if self.state.revision is None:
                connection.execute(STATE_INSERT, self._state_values())
            elif connection.execute(STATE_UPDATE, self._state_values()).rowcount != 1:
                self._moved_on()
        self.session.flush()
        insert_new(self.session, self.new)
        for change in self.changes:
            connection.execute(change)
        self.outcome.message_id = self.message.id if self.message else None

    def _write_in_one_statement(self) -> bool:
        """The write in one statement, if it fits; False (nothing written) if it does not."""
        state, session = self.state, self.session
        if state is None or self.changes:
            return False
        if session.new or session.dirty or session.deleted:
            return False
        rows = one_statement_rows(self.new)
        if rows is None:
            return False
        guard = STATE_STARTED if state.revision is None else STATE_MOVED_ON
        if not insert_new_if(session.connection(), self.new, rows, guard, self._state_values()):
            self._moved_on()
        self.outcome.message_id = self.message.id if self.message else None
        return True

    def _state_values(self) -> dict[str, Any]:
        """The bound values of the state's write (``_NEW_STATE``; ``read_at`` for an UPDATE)."""
        state = self.state
        assert state is not None
        values = {
            "child": state.child_id,
            "new_data": state.data,
            "new_paused": state.paused_at,
            "at": self.now,
        }
        if state.revision is not None:
            values["read_at"] = state.revision
        return values

    def _moved_on(self) -> NoReturn:
        assert self.state is not None
        raise StaleDataError(f"the conversation of child {self.state.child_id} moved on meanwhile")


@dataclass
class State:
    """A child's conversation state as read: a plain copy, not an object the session tracks. It
    is written back by ``_Conversation.write`` with one UPDATE naming the revision it was read at."""

    child_id: int
    data: dict[str, Any]
    paused_at: datetime | None = None
    revision: int | None = None  # None: the child has no state row yet


_STATES = ConversationState.__table__
STATE_COLUMNS = (_STATES.c.data, _STATES.c.paused_at, _STATES.c.revision)
STATE_QUERY = select(*STATE_COLUMNS).where(_STATES.c.child_id == bindparam("child"))
# The state's new values, one bound name each; the revision a literal, so the statements compile to
# text a ``Guard`` can carry.
_NEW_STATE = {
    "child_id": bindparam("child"),
    "data": bindparam("new_data", type_=_STATES.c.data.type),
    "paused_at": bindparam("new_paused"),
    "updated_at": bindparam("at"),
    "revision": literal_column("1"),
}
STATE_INSERT = insert(_STATES).values(_NEW_STATE)
STATE_UPDATE = (
    update(_STATES)
    .where(_STATES.c.child_id == bindparam("child"), _STATES.c.revision == bindparam("read_at"))
    .values(
        data=_NEW_STATE["data"],
        paused_at=_NEW_STATE["paused_at"],
        updated_at=_NEW_STATE["updated_at"],
        revision=_STATES.c.revision + literal_column("1"),
    )
)

# The same two writes as guards of ``insert_new_if`` (PostgreSQL): the new rows go in only if the
# state moved on, or for a child's first message only if no other message made its row meanwhile.
STATE_MOVED_ON = Guard.of(STATE_UPDATE.returning(_STATES.c.child_id))
STATE_STARTED = Guard.of(
    postgresql_insert(_STATES)
    .values(_NEW_STATE)
    .on_conflict_do_nothing(index_elements=[_STATES.c.child_id])
    .returning(_STATES.c.child_id)
)


_AUTHORITY_SETTINGS = tuple(getattr(Authority, f.name) for f in fields(AuthoritySettings))


def _sender_query() -> Select[Any]:
    previous = (
        select(Message.body)
        .where(
            Message.child_id == ChannelIdentity.child_id,
            Message.direction == "in",
            Message.created_at >= bindparam("since"),
        )
        .order_by(Message.id.desc())
        .limit(1)
        .correlate(ChannelIdentity)
        .scalar_subquery()
    )
    # Read for every message, though a flow shows them now and then: a statement of their own
    # for each cost more (with the database's own round trip) than reading them here every time.
    child = ChannelIdentity.child_id
    iro = IroAssignment.current_iro_of(child).correlate(ChannelIdentity)
    next_day = Review.next_of(child, bindparam("today")).with_only_columns(Review.scheduled_for)
    read_with_sender = (
        iro.with_only_columns(StaffUser.display_name).scalar_subquery(),
        iro.with_only_columns(StaffUser.contact_phone).scalar_subquery(),
        next_day.correlate(ChannelIdentity).scalar_subquery(),
    )
    return (
        select(
            ChannelIdentity.id,
            ChannelIdentity.child_id,
            ChannelIdentity.channel,
            ChannelIdentity.opted_out,
            Child.first_name,
            Child.locale,
            previous,
            *read_with_sender,
            *STATE_COLUMNS,
            *_AUTHORITY_SETTINGS,
        )
        .join(Child, Child.id == ChannelIdentity.child_id)
        .join(Authority, Authority.id == Child.authority_id)
        .outerjoin(_STATES, _STATES.c.child_id == ChannelIdentity.child_id)
        .where(
            ChannelIdentity.channel == bindparam("channel"),
            ChannelIdentity.address_index == bindparam("index"),
        )
    )


# Built once: every message runs the same statement with its own values, on the driver's cursor.
SENDER_QUERY = _sender_query()
_SENDER = DirectStatement(SENDER_QUERY)


def find_sender(
    session: Session, channel: str, address: str, now: datetime
) -> tuple[Sender, State | None, str | None] | None:
    """Everything handling a message reads about its sender, in one query, from one snapshot: the
    identity (found by the keyed hash of the address) with the child and their authority, the
    conversation state, and the child's previous message if it came within the split-risk window.
    None for an address linked to no child.

    Plain values, not ORM objects: building the identity, child and authority objects cost more
    than the query (about 0.4 ms a message on PostgreSQL). Nothing is locked: the state's revision
    decides at the commit whether another message from the same child came in between (then this
    one is worked out again on what that one left)."""
    today = now.date()
    values = {
        "channel": channel,
        "index": ChannelIdentity.address_key(channel, address),
        "since": now - SPLIT_MESSAGE_WINDOW,
        "today": today,
    }
    found = _SENDER.rows(session.connection(), values)
    if not found:
        return None
    (row,) = found
    # In the order of SENDER_QUERY's columns.
    identity_id, child_id, identity_channel, opted_out, first_name, locale, previous, *rest = row
    (iro_name, iro_phone, next_review_day), rest = rest[:3], rest[3:]
    (data, paused_at, revision), settings = rest[: len(STATE_COLUMNS)], rest[len(STATE_COLUMNS) :]
    facts = ReadWithSender(today, iro_name, iro_phone, next_review_day)
    child = SenderChild(child_id, first_name, locale, AuthoritySettings(*settings), facts)
    sender = Sender(identity_id, child_id, identity_channel, opted_out, child)
    state = None if revision is None else State(child_id, data, paused_at, revision)
    return sender, state, previous


# Of two messages from one child handled at the same moment, the second is worked out again on the
# state the first left; a clash every time is an error (the provider retries the message later).
ATTEMPTS = 3


def handle(inbound: InboundMessage, *, inline: bool = True, now: datetime | None = None) -> Outcome:
    """Handle one inbound message, all its writes at once, and return what to send back.

    Everything is worked out first, reading only; then every write goes in one short flush and
    commit (on SQLite within the database's write turn: ``app.write_turns``), or on PostgreSQL,
    for the usual message, in one statement (``_Conversation.write``). The unique provider
    id decides duplicates there: of two copies, exactly one is stored and the other changes nothing
    and is reported as a duplicate. If another message moved this child's conversation on in the
    meantime (the state's revision changed), this one is worked out again on the new state."""
    session = db.session
    # Linking a chat by its code writes while it reads (the code is claimed at once): that handling
    # holds the write turn throughout, so no writer ever waits for the turn while holding SQLite's lock.
    early = (inbound.identity_channel or inbound.channel) == "telegram" and bool(
        start_code(clean_text(inbound.text))[1]
    )
    for attempt in range(1, ATTEMPTS + 1):
        # PostgreSQL: read outside a transaction, so the usual write can go in one statement (see
        # ``_Conversation.write``); not when the caller's transaction is open, nor when linking.
        autocommit = db.engine.dialect.name == "postgresql" and not early and not session().in_transaction()
        conversation = _Conversation(session, inbound, now or utcnow(), inline, autocommit)
        try:
            with write_turn(db.engine) if early else nullcontext():
                if autocommit:
                    session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
                with session.no_autoflush:
                    outcome = _handle(conversation)
                with nullcontext() if early else write_turn(db.engine):
                    try:
                        conversation.write()
                        session.commit()
                    except Exception:
                        session.rollback()
                        raise
            return outcome
        except (IntegrityError, StaleDataError):
            session.rollback()
            copy = _stored_copy(session, inbound)
            if copy is not None:
                return copy
            if attempt == ATTEMPTS:
                raise
            log.info(
                "a message from child %s clashed with another; handling it again",
                conversation.outcome.child_id,
            )
        except Exception:
            session.rollback()
            raise
    raise AssertionError("unreachable")


def keep_unhandled(inbound: InboundMessage, *, inline: bool = True, now: datetime | None = None) -> Outcome:
    """After ``handle`` failed: keep the message anyway, flagged for staff, and say sorry.

    For a channel that will not send the message again (Twilio does not retry an SMS webhook that
    answered 500) this is the difference between a message kept and a message lost. Only the
    simplest steps are taken: the message is stored (under its provider id, so a copy is still
    a duplicate), safeguarding triage runs on its words (a risk gets the urgent flag and the
    safety reply, as always), and staff get a concern saying it had no proper answer. A child
    who has opted out is sent nothing. If even this fails, the error is raised as before.
    """
    session = db.session
    session.rollback()
    conv = _Conversation(session, inbound, now or utcnow(), inline)
    try:
        with session.no_autoflush:
            channel = inbound.identity_channel or inbound.channel
            address = normalise_address(channel, inbound.sender)
            identity = ChannelIdentity.find(session, channel, address) if address else None
            child = identity.child if identity else None
            conv.identity, conv.child = identity, child
            conv.outcome.child_id = child.id if child else None
            index = None if child else ChannelIdentity.address_key(channel, address or inbound.sender)
            message = conv.record_receipt(child, index)
            triage = assess(conv.text, book=library().safeguarding)
            if triage.urgent:
                conv.raise_urgent(message, triage)
            conv.add_concern(
                message,
                category="not_handled",
                detail="Something went wrong on our side while this message was being handled, so "
                "it got no proper answer. Please read it and reply.",
            )
            reply, variables = "something_went_wrong", {}
            if triage.urgent and child is not None:
                try:
                    variables, reply = (
                        dict(child_variables(session, child, child.locale, conv.now)),
                        "safety_urgent",
                    )
                except Exception:  # noqa: BLE001 - the sorry reply (with 999) needs no facts
                    log.exception("no facts for the safety reply to child %s", child.id)
            if not (identity is not None and identity.opted_out):
                conv.send([_system_reply(reply)], variables, child.locale if child else "en")
        with write_turn(db.engine):
            conv.write()
            session.commit()
    except IntegrityError:
        session.rollback()
        copy = _stored_copy(session, inbound)
        if copy is None:
            raise
        return copy
    except Exception:
        session.rollback()
        raise
    return conv.outcome


def _stored_copy(session: Session, inbound: InboundMessage) -> Outcome | None:
    """A duplicate outcome if a message with this provider id is already stored, else None."""
    if not inbound.provider_id:
        return None
    stored = session.execute(
        select(Message.child_id).where(
            Message.channel == inbound.channel,
            Message.direction == "in",
            Message.provider_id == inbound.provider_id,
        )
    ).first()
    session.rollback()  # end the read, so nothing is held
    return Outcome(duplicate=True, child_id=stored.child_id) if stored else None


def _handle(conv: _Conversation) -> Outcome:
    session, inbound = conv.session, conv.inbound
    identity_channel = inbound.identity_channel or inbound.channel
    address = normalise_address(identity_channel, inbound.sender)
    found = find_sender(session, identity_channel, address, conv.now) if address else None
    if found is None:
        return _handle_unknown(conv, identity_channel, address)

    identity, state_found, previous_text = found
    conv.identity, conv.child = identity, identity.child
    child = identity.child
    conv.outcome.child_id = child.id
    message = conv.record_receipt(child, None)
    state_row = conv.use_state(child, state_found)
    lib = library()
    started = (state_row.data.get("flow"), state_row.data.get("version"))
    if started[0] and started not in lib.versions:
        # Started on a version another process published moments ago: load it before going on.
        content.store().invalidate()
        lib = library()
    said = conv.text  # what the engine sees: the words, or the command the provider recognised
    if inbound.command:
        said = inbound.command
    elif identity_channel == "telegram" and start_code(conv.text)[0]:
        # Telegram's /start from a linked chat: back on after STOP, else the menu.
        said = "start" if identity.opted_out else "menu"
    triage = assess(conv.text, previous_text, book=lib.safeguarding)
    if triage.urgent:
        conv.raise_urgent(message, triage)
    context = engine_context(session, child, conv.now)
    variables = context.variables
    if identity.opted_out and recognise_command(lib, said, context) != "start":
        # Opted out: keep the message (staff see it, and any urgent concern stands) but send
        # nothing until START.
        return conv.outcome
    if triage.urgent:
        # The safety reply alone; the child keeps their place and can carry on afterwards.
        conv.send([_system_reply("safety_urgent")], variables, child.locale)
        return conv.outcome
    if inbound.attachment and not conv.text.strip():
        # Kept for staff to see that something came; the child is asked for words.
        conv.send([_system_reply("words_only")], variables, child.locale)
        return conv.outcome
    if is_sad_news(conv.text):
        # A kind reply first; the words reach staff and the child keeps their place.
        conv.apply(ConcernRaised(category="feelings", detail=conv.text), message)
        kind_replies = [_system_reply("sorry_to_hear")]
        if variables.get("office_closed"):
            kind_replies.append(_system_reply("office_closed"))
        conv.send(kind_replies, variables, child.locale)
        return conv.outcome

    try:
        step = advance(lib, state_row.data, Inbound(text=said), context)
    except FlowRuntimeError:
        log.exception("flow error for child %s; state reset, message kept", child.id)
        state_row.data = new_state()
        conv.send([_system_reply("something_went_wrong")], variables, child.locale)
        return conv.outcome

    replies = list(step.replies)
    effects = list(step.effects)
    # A structured answer ("I do not feel safe", picked by number) is triaged like typed words.
    chosen = assess(" ".join(step.chosen), book=lib.safeguarding) if step.chosen else None
    urgent = any(isinstance(e, ConcernRaised) and e.urgent for e in effects)
    if chosen and chosen.urgent and not urgent:
        effects.insert(0, urgent_concern(chosen))
        urgent = True
    for effect in effects:
        conv.apply(effect, message)
    if urgent:
        replies.insert(0, _system_reply("safety_urgent"))
    elif variables.get("office_closed") and any(not isinstance(e, LOCAL_EFFECTS) for e in effects):
        # Every thank-you outside office hours says when staff will see it.
        replies.append(_system_reply("office_closed"))
    locale = child.locale
    if locale != context.locale:
        variables = child_variables(session, child, locale, conv.now)
    if not step.state.get("paused"):
        state_row.paused_at = None
    elif step.state["paused"] != state_row.data.get("paused") or state_row.paused_at is None:
        state_row.paused_at = conv.now  # reminders nudge once to finish a paused form
    state_row.data = step.state
    conv.send(replies, variables, locale)
    return conv.outcome


def _handle_unknown(conv: _Conversation, identity_channel: str, address: str | None) -> Outcome:
    """A sender linked to no child: keep the message, reply with nothing about anyone.

    A Telegram chat may link itself with ``/start CODE`` (a one-time code from staff).
    """
    sender_index = ChannelIdentity.address_key(identity_channel, address or conv.inbound.sender)
    message = conv.record_receipt(None, sender_index)
    hint = conv.inbound.locale_hint
    locale = hint if hint in catalogs().locales else "en"
    is_start, code = start_code(conv.text) if identity_channel == "telegram" else (False, None)
    if code and address:
        redeemed = redeem(conv.session, identity_channel, address, code, conv.now)
        if redeemed.identity is not None:
            return _linked(conv, message, redeemed.identity)
        key = "link_failed" if redeemed.outcome == "failed" else "link_too_many"
        conv.send([_system_reply(key)], {}, locale)
        return conv.outcome
    triage = assess(conv.text, book=library().safeguarding)
    if triage.urgent:
        # Kept for an administrator to see; the reply promises nothing beyond the emergency numbers.
        conv.raise_urgent(message, triage)
    key = "unknown_chat" if identity_channel == "telegram" else "unknown_sender"
    conv.send([_system_reply(key)], {}, locale)
    return conv.outcome


def _linked(conv: _Conversation, message: Message, identity: ChannelIdentity) -> Outcome:
    """A chat was just linked by its code: say so, then show the child the menu."""
    conv.session.flush()
    conv.identity, conv.child = identity, identity.child
    child = identity.child
    message.child_id, message.sender_index = child.id, None
    conv.outcome.child_id = child.id
    state_row = conv.load_state(child)
    context = engine_context(conv.session, child, conv.now)
    variables = context.variables
    step = advance(library(), state_row.data, Inbound(text="menu"), context)
    state_row.data = step.state
    conv.send([_system_reply("link_ok"), *step.replies], variables, child.locale)
    return conv.outcome
