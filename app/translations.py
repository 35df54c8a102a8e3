"""Translations made in the browser: side-by-side rows, proposals, a second person's approval, the
carry-over when English changes, and .po files for translation agencies.

A translation proposed here (typed, imported or carried over) waits as ``needs_review``; children
keep getting the approved text (or the reviewed one in ``locales/``, or English with a note) until
someone other than the person who last changed it approves it. Nothing here commits: the caller
does, once per request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO

from babel import Locale, UnknownLocaleError
from babel.messages.catalog import Catalog
from babel.messages.pofile import PoFileError, read_po, write_po
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app import content
from app.access import audit
from app.engine.definition import KNOWN_VARIABLES, Flow, FlowDefinitionError, Library, parse_flow
from app.engine.nodes import MessageRef
from app.engine.text import placeholders
from app.i18n import DOMAIN, SOURCE_LOCALE, Catalogs, Coverage, language_name
from app.models import StaffUser, Translation, utcnow
from app.models.flows import FLOW, ContentVersion, message_key

MAX_LENGTH = 1000
MAX_PO_BYTES = 2 * 1024 * 1024
ENGLISH_CHANGED = "the English changed"
SYSTEM = "system"  # the section name for the system messages (SystemMessages.CONTEXT_PREFIX)

APPROVED, NEEDS_REVIEW, MISSING = "approved", "needs_review", "missing"


@dataclass(frozen=True)
class Message:
    """One message translators see: where it is, what it is, and its English."""

    flow_id: str | None  # None for the system messages
    ref: MessageRef
    step: str  # the step (node id) or the system message's name
    what: str  # "message", "choice" or "keywords"
    comment: str  # what the message is, in words, for translators
    in_published: bool = True
    in_draft: bool = False


@dataclass
class Row:
    """One message in one language, as the side-by-side page shows it."""

    message: Message
    locale: str
    key: str  # message_key(locale, context, English)
    text: str  # the latest translation proposed ("" if none)
    status: str  # approved | needs_review | missing
    reason: str = ""
    children_get: str | None = None  # the translation children get now; None: English with a note
    translation_id: int | None = None  # the editor's row, if any
    changed_by: str | None = None
    changed_by_id: int | None = None
    changed_at: datetime | None = None
    approved_by: str | None = None
    approved_at: datetime | None = None
    from_file: bool = False  # the text comes from the shipped .po file, not the editor
    previous: str | None = None  # the translation before the draft changed this English

    @property
    def context(self) -> str:
        return self.message.ref.context

    @property
    def english(self) -> str:
        return self.message.ref.text


@dataclass
class ImportResult:
    """What importing a .po file did; ``error`` set means nothing was stored."""

    error: str | None = None
    changed: int = 0
    unchanged: int = 0
    empty: int = 0  # entries with no translation in the file
    unknown: int = 0  # English that is not in any flow now
    refused: list[tuple[str, str]] = field(default_factory=list)  # (where, why)


# --- which messages there are ---------------------------------------------------------------------


def draft_flows(session: Session) -> dict[str, Flow]:
    """Every flow draft that parses, by flow id (a draft with problems has no messages to list yet)."""
    found: dict[str, Flow] = {}
    drafts = session.scalars(
        select(ContentVersion).where(ContentVersion.kind == FLOW, ContentVersion.status == "draft")
    )
    for row in drafts:
        try:
            found[row.key] = parse_flow(row.content, content.version_source(row.key, None))
        except FlowDefinitionError:
            continue
    return found


def draft_flow(session: Session, flow_id: str) -> Flow | None:
    """The draft of one flow if it has one that parses."""
    row = content.draft(session, FLOW, flow_id)
    if row is None:
        return None
    try:
        return parse_flow(row.content, content.version_source(flow_id, None))
    except FlowDefinitionError:
        return None


def _describe(flow: Flow, ref: MessageRef) -> tuple[str, str, str]:
    """(step, what, comment) for a message of a flow."""
    rest = ref.context.removeprefix(f"{flow.id}.")
    step = rest.removesuffix(".keywords")
    node = flow.nodes.get(step)
    if ref.is_keywords:
        what, said = "keywords", f"Words a child might type for a choice in step '{step}'"
    elif node is not None and node.text == ref.text:
        what, said = "message", f"Step '{step}'"
    else:
        what, said = "choice", f"A choice in step '{step}'"
    comment = f"{said} of the flow '{flow.title}'."
    if ref.comment and not ref.is_keywords:
        comment = f"{comment} {ref.comment}"
    return step, what, comment


def system_messages(library: Library) -> list[Message]:
    """The messages used outside any flow (help, STOP, the safety reply...)."""
    prefix = f"{library.messages.CONTEXT_PREFIX}."
    return [
        Message(
            None,
            ref,
            ref.context.removeprefix(prefix),
            "keywords" if ref.is_keywords else "message",
            ref.comment or "A message used outside any flow.",
        )
        for ref in library.messages.messages()
    ]


def flow_messages(published: Flow | None, draft: Flow | None = None) -> list[Message]:
    """Every message of a flow in step order, the draft's included (marked where each one is)."""
    flows = [f for f in (draft, published) if f is not None]
    if not flows:
        return []
    in_published = {(m.context, m.text) for m in published.messages()} if published else set()
    in_draft = {(m.context, m.text) for m in draft.messages()} if draft else set()
    by_context: dict[str, list[tuple[Flow, MessageRef]]] = {}
    seen: set[tuple[str, str]] = set()
    # The draft's order first (it is what will be sent), then what only the published version has.
    for flow in flows:
        for ref in flow.messages():
            if (ref.context, ref.text) not in seen:
                seen.add((ref.context, ref.text))
                by_context.setdefault(ref.context, []).append((flow, ref))
    found = []
    for pairs in by_context.values():
        for flow, ref in pairs:
            step, what, comment = _describe(flow, ref)
            where = (ref.context, ref.text)
            found.append(Message(flow.id, ref, step, what, comment, where in in_published, where in in_draft))
    return found


def all_messages(session: Session, library: Library) -> list[Message]:
    """The system messages, then every current flow with its draft, then flows only in a draft."""
    drafts = draft_flows(session)
    found = system_messages(library)
    for flow_id in sorted(library.flows):
        found.extend(flow_messages(library.flows[flow_id], drafts.get(flow_id)))
    for flow_id in sorted(set(drafts) - set(library.flows)):
        found.extend(flow_messages(None, drafts[flow_id]))
    return found


def _index(messages: Iterable[Message]) -> dict[tuple[str, str], Message]:
    index: dict[tuple[str, str], Message] = {}
    for message in messages:
        index.setdefault((message.ref.context, message.ref.text), message)
    return index


def english_changes(old: Flow, new: Flow) -> list[tuple[MessageRef, MessageRef]]:
    """(old, new) pairs of messages whose English changed: paired by context and position within
    it, leaving out English that is still in the new version (it was moved, not changed)."""
    old_by_context: dict[str, list[MessageRef]] = {}
    for ref in old.messages():
        old_by_context.setdefault(ref.context, []).append(ref)
    new_texts = {(ref.context, ref.text) for ref in new.messages()}
    position: dict[str, int] = {}
    pairs = []
    for ref in new.messages():
        index = position.get(ref.context, 0)
        position[ref.context] = index + 1
        olds = old_by_context.get(ref.context, [])
        if index >= len(olds):
            continue
        before = olds[index]
        if before.text == ref.text or before.is_keywords != ref.is_keywords:
            continue
        if (before.context, before.text) in new_texts:
            continue
        pairs.append((before, ref))
    return pairs


# --- rows -----------------------------------------------------------------------------------------


def _editor_rows(session: Session, locale: str) -> dict[str, Translation]:
    rows = session.scalars(
        select(Translation)
        .where(Translation.locale == locale)
        .options(selectinload(Translation.updated_by), selectinload(Translation.approved_by))
    )
    return {row.key: row for row in rows}


def _shipped() -> Catalogs:
    return content.store().shipped.catalogs


def _file_entry(catalogs: Catalogs, locale: str, context: str, msgid: str) -> tuple[str, bool] | None:
    """(text, fuzzy) of a translation in the shipped .po file, if it has one."""
    catalog = catalogs.catalogs.get(locale)
    entry = catalog.get(msgid, context=context) if catalog else None
    if entry is None or not entry.string:
        return None
    text = entry.string if isinstance(entry.string, str) else entry.string[0]
    return text, bool(entry.fuzzy)


def _approved_translation(session: Session, catalogs: Catalogs, locale: str, ref: MessageRef) -> str | None:
    """The translation children get for a message: approved in the editor, else reviewed in the file."""
    row = session.scalar(
        select(Translation).where(Translation.key == message_key(locale, ref.context, ref.text))
    )
    if row is not None and row.approved_text is not None:
        return row.approved_text
    return catalogs.file_lookup(locale, ref.context, ref.text)


def _row(message: Message, locale: str, stored: Translation | None, catalogs: Catalogs) -> Row:
    ref = message.ref
    key = message_key(locale, ref.context, ref.text)
    in_file = _file_entry(catalogs, locale, ref.context, ref.text)
    file_text = in_file[0] if in_file and not in_file[1] else None
    if stored is not None:
        approved = stored.status == APPROVED
        return Row(
            message,
            locale,
            key,
            stored.text,
            APPROVED if approved else NEEDS_REVIEW,
            "" if approved else stored.reason or "waiting for a second person to approve it",
            children_get=stored.approved_text if stored.approved_text is not None else file_text,
            translation_id=stored.id,
            changed_by=stored.updated_by.display_name if stored.updated_by else None,
            changed_by_id=stored.updated_by_id,
            changed_at=stored.updated_at,
            approved_by=stored.approved_by.display_name if stored.approved_by else None,
            approved_at=stored.approved_at,
        )
    if in_file is None:
        return Row(message, locale, key, "", MISSING)
    text, fuzzy = in_file
    if fuzzy:
        reason = "the translation file marks it fuzzy: its English changed since it was translated"
        return Row(message, locale, key, text, NEEDS_REVIEW, reason, from_file=True)
    return Row(message, locale, key, text, APPROVED, children_get=text, from_file=True)


def rows(
    session: Session,
    catalogs: Catalogs,
    library: Library,
    flow_id: str | None,
    locale: str,
    draft_flow: Flow | None = None,
) -> list[Row]:
    """Every message of a flow (None: the system messages) in one language, in order, with the
    latest translation proposed and its status; a draft's messages included."""
    published = library.flows.get(flow_id) if flow_id else None
    messages = system_messages(library) if flow_id is None else flow_messages(published, draft_flow)
    stored = _editor_rows(session, locale)
    found = [
        _row(m, locale, stored.get(message_key(locale, m.ref.context, m.ref.text)), catalogs)
        for m in messages
    ]
    if published is not None and draft_flow is not None:
        by_new = {(new.context, new.text): old for old, new in english_changes(published, draft_flow)}
        for row in found:
            old = by_new.get((row.context, row.english))
            if old is not None and row.status == MISSING:
                row.previous = _approved_translation(session, catalogs, locale, old)
    return found


@dataclass(frozen=True)
class Counts:
    """How many messages of a section are approved, need review or are missing in one language."""

    approved: int
    needs_review: int
    missing: int

    @property
    def total(self) -> int:
        return self.approved + self.needs_review + self.missing


def counts(found: list[Row]) -> Counts:
    return Counts(
        sum(r.status == APPROVED for r in found),
        sum(r.status == NEEDS_REVIEW for r in found),
        sum(r.status == MISSING for r in found),
    )


def coverage(
    session: Session, catalogs: Catalogs, library: Library, flow_id: str | None, locale: str
) -> Coverage:
    """How much of a flow (None: the system messages) is ready in a language, counted as the
    side-by-side page counts it (editor translations waiting for approval need review)."""
    found = counts(rows(session, catalogs, library, flow_id, locale))
    return Coverage(locale, found.total, found.approved, found.needs_review)


# --- proposing and approving ----------------------------------------------------------------------


def problems(text: str, is_keywords: bool) -> list[str]:
    """What is wrong with a translation, in plain words (empty if nothing)."""
    if not text.strip():
        return ["The translation is empty. Type the translation, or leave the box as it was."]
    found = []
    if len(text) > MAX_LENGTH:
        found.append(f"The translation is {len(text):,} characters long; keep it to {MAX_LENGTH:,} or fewer.")
    unknown = sorted({n for n in placeholders(text) if n not in KNOWN_VARIABLES})
    if unknown:
        names = ", ".join(f"{{{n}}}" for n in unknown)
        found.append(
            f"{names} is not a variable this service knows. Keep the words in curly brackets as the "
            "English has them."
        )
    if is_keywords:
        numbers = [k.strip() for k in text.split(",") if k.strip().isdigit()]
        if numbers:
            found.append(
                f"A keyword cannot be a number ({', '.join(numbers)}): children type numbers to pick choices."
            )
    return found


def _clean(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _store(
    session: Session, locale: str, context: str, msgid: str, text: str, staff: StaffUser | None, reason: str
) -> bool:
    """Keep a proposed translation; True if anything changed."""
    key = message_key(locale, context, msgid)
    row = session.scalar(select(Translation).where(Translation.key == key))
    children_get = (
        row.approved_text
        if row is not None and row.approved_text is not None
        else _shipped().file_lookup(locale, context, msgid)
    )
    if row is None:
        if text == children_get:
            return False
        row = Translation(key=key, locale=locale, context=context, msgid=msgid, text=text)
        session.add(row)
    elif text == row.text:
        return False
    row.text = text
    row.updated_at = utcnow()
    row.updated_by_id = staff.id if staff else None
    if text == children_get:
        # Back to what children already get: the proposal is withdrawn, nothing needs approving.
        row.status, row.reason = APPROVED, ""
    else:
        row.status, row.reason = NEEDS_REVIEW, reason[:120]
    session.flush()
    return True


def _locale_error(locale: str) -> str | None:
    if locale == SOURCE_LOCALE or locale not in _shipped().locales:
        return f"There is no translation into '{locale}' here."
    return None


def known_messages(session: Session) -> dict[tuple[str, str], Message]:
    """Every message translators can work on now, by (context, English)."""
    return _index(all_messages(session, content.current(session)[0]))


def propose(
    session: Session,
    locale: str,
    context: str,
    msgid: str,
    text: str,
    staff: StaffUser,
    known: dict[tuple[str, str], Message] | None = None,
) -> list[str]:
    """Propose a translation for review (errors in plain words; empty if it was kept). Typing what
    children already get changes nothing that needs approving. ``known``: ``known_messages()``,
    when proposing many at once."""
    error = _locale_error(locale)
    if error:
        return [error]
    message = (known if known is not None else known_messages(session)).get((context, msgid))
    if message is None:
        return ["This message is not in any flow now, so it cannot be translated."]
    text = _clean(text)
    found = problems(text, message.ref.is_keywords)
    if found:
        return found
    if _store(session, locale, context, msgid, text, staff, "changed in the editor"):
        audit(session, staff, "translation proposed", detail=f"{locale} {context}: {text[:300]}")
    return []


def approve(
    session: Session, translation_id: int, staff: StaffUser, expected_text: str | None = None
) -> str | None:
    """Approve a proposed translation so children get it (the error in plain words, or None).
    ``expected_text``: the text the approver saw, refused if it changed since."""
    row = session.get(Translation, translation_id)
    if row is None:
        return "This translation is not here any more."
    if row.status == APPROVED:
        return "This translation is already approved."
    if expected_text is not None and _clean(expected_text) != row.text:
        return "This translation changed since you opened the page. Read the new text, then approve it."
    if row.updated_by_id is not None and row.updated_by_id == staff.id:
        return "A second person must approve a translation. You made the last change to this one."
    is_keywords = row.context.endswith(".keywords") or row.context.startswith(f"{SYSTEM}.keywords_")
    found = problems(row.text, is_keywords)
    if found:
        return found[0]
    now = utcnow()
    row.approved_text, row.status, row.reason = row.text, APPROVED, ""
    row.approved_by_id, row.approved_at = staff.id, now
    session.flush()
    audit(session, staff, "translation approved", detail=f"{row.locale} {row.context}: {row.text[:300]}")
    content.store().changed(session)
    return None


def approve_file(
    session: Session,
    locale: str,
    context: str,
    msgid: str,
    staff: StaffUser,
    expected_text: str | None = None,
) -> str | None:
    """Approve a translation the shipped .po file marks fuzzy, as it is (the error, or None)."""
    entry = _file_entry(_shipped(), locale, context, msgid)
    if entry is None or not entry[1]:
        return "There is no translation waiting for review in the file for this message."
    if session.scalar(select(Translation.id).where(Translation.key == message_key(locale, context, msgid))):
        return "This translation was changed in the editor. Reload the page to see it."
    text = entry[0]
    if expected_text is not None and _clean(expected_text) != text:
        return "This translation changed since you opened the page. Read the new text, then approve it."
    row = Translation(
        key=message_key(locale, context, msgid), locale=locale, context=context, msgid=msgid, text=text
    )
    session.add(row)
    session.flush()
    return approve(session, row.id, staff)


def carry_over(
    session: Session, locales: Iterable[str], old: Flow | None, new: Flow, staff: StaffUser | None
) -> int:
    """Where the English of a message changed from ``old`` to ``new``, start its translation from
    the old one, marked as needing review because the English changed; how many rows it made.
    A message that already has a translation of its own is left alone."""
    if old is None:
        return 0
    pairs = english_changes(old, new)
    if not pairs:
        return 0
    shipped = _shipped()
    made = 0
    for locale in locales:
        if locale == SOURCE_LOCALE:
            continue
        for before, after in pairs:
            key = message_key(locale, after.context, after.text)
            if session.scalar(select(Translation.id).where(Translation.key == key)) is not None:
                continue
            if shipped.file_lookup(locale, after.context, after.text) is not None:
                continue
            earlier = _approved_translation(session, shipped, locale, before)
            if earlier is None:
                continue
            session.add(
                Translation(
                    key=key,
                    locale=locale,
                    context=after.context,
                    msgid=after.text,
                    text=earlier,
                    status=NEEDS_REVIEW,
                    reason=ENGLISH_CHANGED,
                    updated_at=utcnow(),
                    updated_by_id=staff.id if staff else None,
                )
            )
            session.flush()
            made += 1
    return made


# --- .po files ------------------------------------------------------------------------------------


def _po_comments(message: Message) -> list[str]:
    comments = [message.comment]
    if message.ref.is_keywords:
        comments.append("Separate the words with commas. A keyword cannot be a number.")
    if placeholders(message.ref.text):
        comments.append("Keep the words in curly brackets as they are: they are filled in when sent.")
    if message.in_draft and not message.in_published:
        comments.append("New in a draft: not sent to children yet.")
    return comments


def export_po(session: Session, locale: str) -> bytes:
    """A standard .po file for one language: every system message and every message of every flow
    and draft, with the latest translation proposed (marked fuzzy while it needs review)."""
    library, catalogs = content.current(session)
    stored = _editor_rows(session, locale)
    catalog = Catalog(
        locale=locale,
        domain=DOMAIN,
        project="Reviewline",
        header_comment=(
            f"# {language_name(locale)} translations of Reviewline, exported {utcnow():%Y-%m-%d}.\n"
            "# msgctxt says where a message is: its flow and step, or\n"
            "# system for a message used outside any flow.\n"
            "# A fuzzy entry is waiting for review."
        ),
        revision_date=utcnow(),
        language_team=language_name(locale),
        fuzzy=False,
    )
    for message in _index(all_messages(session, library)).values():
        ref = message.ref
        row = _row(message, locale, stored.get(message_key(locale, ref.context, ref.text)), catalogs)
        flags = []
        if row.status == NEEDS_REVIEW:
            flags.append("fuzzy")
        if placeholders(ref.text):
            flags.append("python-brace-format")
        catalog.add(
            ref.text,
            string=row.text,
            auto_comments=_po_comments(message),
            flags=flags,
            context=ref.context,
        )
    buffer = BytesIO()
    write_po(buffer, catalog, sort_output=False, omit_header=False)
    return buffer.getvalue()


def _read_po(locale: str, data: bytes) -> Catalog | str:
    """The catalog in a .po file, or why it cannot be used."""
    if len(data) > MAX_PO_BYTES:
        return f"The file is larger than {MAX_PO_BYTES // (1024 * 1024)} MB, so it was not read."
    try:
        # Some editors save UTF-8 with a byte-order mark, which babel does not expect.
        catalog = read_po(BytesIO(data.removeprefix(b"\xef\xbb\xbf")), abort_invalid=True, domain=DOMAIN)
    except (PoFileError, UnicodeDecodeError, ValueError, UnknownLocaleError, LookupError):
        return "This file could not be read as a .po translation file. Nothing was saved."
    language = catalog.locale.language if isinstance(catalog.locale, Locale) else None
    if language and language != Locale.parse(locale).language:
        return (
            f"This file is for {language_name(language)} ({language}), not {language_name(locale)}. "
            "Nothing was saved."
        )
    if not any(m.id for m in catalog):
        return "This file has no messages in it. Nothing was saved."
    return catalog


def import_po(session: Session, locale: str, data: bytes, filename: str, staff: StaffUser) -> ImportResult:
    """Store the translations in a .po file as proposals waiting for review (by someone other than
    the importer); nothing is stored if the file cannot be read or is for another language."""
    error = _locale_error(locale)
    catalog = _read_po(locale, data) if error is None else error
    name = (filename or "the file").rsplit("/", 1)[-1].rsplit("\\", 1)[-1][:60]
    if isinstance(catalog, str):
        audit(session, staff, "translation import refused", detail=f"{locale} {name}: {catalog}")
        return ImportResult(error=catalog)
    known = known_messages(session)
    result = ImportResult()
    for entry in catalog:
        if not entry.id:
            continue
        where = f"{entry.context or '(no msgctxt)'}"
        if entry.pluralizable:
            result.refused.append((where, "Plural forms are not used here."))
            continue
        message = known.get((entry.context or "", entry.id))
        if message is None:
            result.unknown += 1
            continue
        text = _clean(entry.string if isinstance(entry.string, str) else "")
        if not text:
            result.empty += 1
            continue
        found = problems(text, message.ref.is_keywords)
        if found:
            result.refused.append((where, " ".join(found)))
            continue
        if _store(
            session, locale, message.ref.context, message.ref.text, text, staff, f"imported from {name}"
        ):
            result.changed += 1
        else:
            result.unchanged += 1
    audit(
        session,
        staff,
        "translations imported",
        detail=(
            f"{locale} from {name}: {result.changed} changed, {result.unchanged} unchanged, "
            f"{result.unknown} not in any flow, {len(result.refused)} refused"
        ),
    )
    return result
