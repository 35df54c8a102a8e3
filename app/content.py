"""What the service says: flows, safeguarding phrase lists and translations, shipped and edited.

The files in ``flows/`` and ``locales/`` are the shipped defaults. Participation workers edit drafts
in the browser and publish them (``app/editor``); a published version takes the place of its file
for new conversations, while every published version stays loaded, so a child finishes on the
version they started. Translations made in the editor reach children once a second person approves
them.

Each process keeps the built library and catalogs and rebuilds them when something was published
or approved: at once in the process that did it, and within ``CONTENT_REFRESH_SECONDS`` in the others
(one small query per check).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.orm.exc import StaleDataError

from app.engine.definition import (
    MESSAGES_FILE,
    Flow,
    FlowDefinitionError,
    Library,
    Problem,
    check_library,
    load_library,
    parse_flow,
)
from app.engine.triage import PhraseBook, parse_phrasebook
from app.i18n import Catalogs
from app.models import ContentVersion, StaffUser, Translation, utcnow
from app.models.flows import FLOW, PHRASES

log = logging.getLogger(__name__)
KINDS = (FLOW, PHRASES)


@dataclass
class Shipped:
    """The defaults in the files: flow YAML by flow id, phrase YAML by locale, and what they build."""

    library: Library
    catalogs: Catalogs
    flow_texts: dict[str, str]
    phrase_texts: dict[str, str]
    phrase_sources: dict[str, str]
    flows_dir: Path

    @classmethod
    def load(cls, flows_dir: Path, locales_dir: Path) -> Shipped:
        """Read and check every shipped file (raises FlowDefinitionError naming each problem)."""
        library = load_library(flows_dir, root=flows_dir.parent)
        by_source = {flow.source: flow.id for flow in library.flows.values()}
        flow_texts = {}
        for path in sorted(flows_dir.glob("*.yaml")):
            source = str(path.relative_to(flows_dir.parent))
            if path.name != MESSAGES_FILE and source in by_source:
                flow_texts[by_source[source]] = path.read_text(encoding="utf-8")
        phrase_dir = flows_dir / "safeguarding"
        phrase_paths = sorted(phrase_dir.glob("*.yaml")) if phrase_dir.is_dir() else []
        return cls(
            library=library,
            catalogs=Catalogs(locales_dir),
            flow_texts=flow_texts,
            phrase_texts={p.stem: p.read_text(encoding="utf-8") for p in phrase_paths},
            phrase_sources={p.stem: str(p.relative_to(flows_dir.parent)) for p in phrase_paths},
            flows_dir=flows_dir,
        )


@dataclass
class ContentStore:
    """The library and catalogs children are served from, rebuilt when content is published."""

    shipped: Shipped
    refresh_seconds: float = 5.0
    _library: Library | None = None
    _catalogs: Catalogs | None = None
    _stamp: tuple | None = None
    _checked: float = float("-inf")
    _parsed: dict[str, Flow] = field(default_factory=dict)  # by content, so each is parsed once
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def invalidate(self) -> None:
        """Check the database on the next use (this process changed something)."""
        self._checked = float("-inf")

    def changed(self, session: Session | scoped_session) -> None:
        """Something was published or approved in ``session``: check again once it commits (the
        check reads on its own connection, so it cannot see the change before then)."""
        target = session() if isinstance(session, scoped_session) else session
        event.listen(target, "after_commit", lambda _: self.invalidate(), once=True)
        self.invalidate()

    def current(self, session: Session) -> tuple[Library, Catalogs]:
        """The library and catalogs now, rebuilt if anything was published or approved since.

        The check reads on a connection of its own, never in the caller's transaction: a read
        there would make SQLite refuse that transaction's first write when another process wrote
        in between ("database is locked")."""
        if time.monotonic() - self._checked >= self.refresh_seconds or self._library is None:
            with Session(session.get_bind()) as own:
                stamp = _stamp(own)
                if stamp != self._stamp or self._library is None:
                    library, catalogs = self.build(own)
                    with self._lock:
                        self._library, self._catalogs, self._stamp = library, catalogs, stamp
            self._checked = time.monotonic()
        assert self._library is not None and self._catalogs is not None
        return self._library, self._catalogs

    def parse(self, flow_id: str, number: int | None, text: str) -> Flow:
        """A published flow version, parsed once."""
        if text not in self._parsed:
            self._parsed[text] = parse_flow(text, version_source(flow_id, number))
        return self._parsed[text]

    def build(self, session: Session) -> tuple[Library, Catalogs]:
        """The library with every published version loaded, the newest of each flow current."""
        shipped = self.shipped.library
        flows, versions = dict(shipped.flows), dict(shipped.versions)
        phrases = dict(self.shipped.phrase_texts)
        published = session.scalars(
            select(ContentVersion)
            .where(ContentVersion.status == "published")
            .order_by(ContentVersion.kind, ContentVersion.key, ContentVersion.number)
        )
        for row in published:
            if row.kind == PHRASES:
                phrases[row.key] = row.content
                continue
            try:
                flow = self.parse(row.key, row.number, row.content)
            except FlowDefinitionError as error:  # checked when published; a later code change may disagree
                log.error(
                    "published %s is no longer valid, skipped: %s", version_source(row.key, row.number), error
                )
                continue
            versions[(flow.id, flow.version)] = flow
            flows[flow.id] = flow
        safeguarding = shipped.safeguarding
        if phrases != self.shipped.phrase_texts:
            try:
                safeguarding = phrase_book(phrases, self.shipped.phrase_sources)
            except FlowDefinitionError as error:
                log.error("published phrase lists are no longer valid; using the shipped ones: %s", error)
        library = Library(
            flows=flows,
            messages=shipped.messages,
            versions=versions,
            entry=shipped.entry,
            safeguarding=safeguarding,
        )
        approved = session.execute(
            select(
                Translation.locale, Translation.context, Translation.msgid, Translation.approved_text
            ).where(Translation.approved_text.is_not(None))
        )
        overrides = {(locale, context, msgid): text for locale, context, msgid, text in approved}
        return library, self.shipped.catalogs.with_overrides(overrides)


def _stamp(session: Session) -> tuple:
    """Changes whenever a version is published or a translation approved."""
    versions = session.execute(
        select(func.count(), func.max(ContentVersion.published_at)).where(
            ContentVersion.status == "published"
        )
    ).one()
    translations = session.execute(
        select(func.count(), func.max(Translation.approved_at)).where(Translation.approved_text.is_not(None))
    ).one()
    return (*versions, *translations)


def version_source(flow_id: str, number: int | None) -> str:
    """How a version is named in problems, e.g. "wishes version 3" or "wishes draft"."""
    return f"{flow_id} version {number}" if number else f"{flow_id} draft"


def phrase_book(texts: dict[str, str], sources: dict[str, str]) -> PhraseBook:
    """The triage phrase book from phrase YAML by locale (English first, as in the folder)."""
    ordered = sorted(texts, key=lambda locale: (locale != "en", locale))
    return parse_phrasebook({sources.get(locale, f"{locale} phrases"): texts[locale] for locale in ordered})


def store() -> ContentStore:
    return current_app.extensions["reviewline.content"]


def current(session: Session) -> tuple[Library, Catalogs]:
    """The library and catalogs to serve children from now."""
    return store().current(session)


# --- versions -------------------------------------------------------------------------------


def published_versions(session: Session, kind: str, key: str) -> list[ContentVersion]:
    """Every published version, newest first."""
    return list(
        session.scalars(
            select(ContentVersion)
            .where(
                ContentVersion.kind == kind, ContentVersion.key == key, ContentVersion.status == "published"
            )
            .order_by(ContentVersion.number.desc())
        )
    )


def latest(session: Session, kind: str, key: str) -> ContentVersion | None:
    """The published version in use for new conversations, or None while the file is in use."""
    return session.scalar(
        select(ContentVersion)
        .where(ContentVersion.kind == kind, ContentVersion.key == key, ContentVersion.status == "published")
        .order_by(ContentVersion.number.desc())
        .limit(1)
    )


def draft(session: Session, kind: str, key: str) -> ContentVersion | None:
    return session.scalar(
        select(ContentVersion).where(
            ContentVersion.kind == kind, ContentVersion.key == key, ContentVersion.status == "draft"
        )
    )


def shipped_text(kind: str, key: str) -> str | None:
    shipped = store().shipped
    return (shipped.flow_texts if kind == FLOW else shipped.phrase_texts).get(key)


def current_text(session: Session, kind: str, key: str) -> str | None:
    """The YAML in use now: the newest published version, else the shipped file."""
    row = latest(session, kind, key)
    return row.content if row else shipped_text(kind, key)


class Clash(Exception):
    """Someone else saved or published the same flow or list at the same moment. The transaction
    was rolled back, so nothing was changed."""


def _flush(session: Session) -> None:
    try:
        session.flush()
    except (IntegrityError, StaleDataError) as error:
        # The unique number, the one-draft index or the row's revision caught a second writer.
        session.rollback()
        raise Clash(str(error.__class__.__name__)) from error


def save_draft(session: Session, kind: str, key: str, content: str, staff: StaffUser) -> ContentVersion:
    """Keep the draft (broken or not: nothing typed is lost); publishing is what is checked.
    Raises Clash if someone else started or changed the draft meanwhile."""
    row = draft(session, kind, key)
    if row is None:
        base = latest(session, kind, key)
        row = ContentVersion(kind=kind, key=key, status="draft", content=content, updated_by_id=staff.id)
        row.based_on = base.number if base else 0
        session.add(row)
    row.content = content
    row.updated_at = utcnow()
    row.updated_by_id = staff.id
    _flush(session)
    return row


def newer_than_draft(session: Session, row: ContentVersion) -> ContentVersion | None:
    """A version published after the draft was started, which publishing the draft would undo."""
    current = latest(session, row.kind, row.key)
    return current if current and (current.number or 0) > (row.based_on or 0) else None


def discard_draft(session: Session, kind: str, key: str) -> None:
    row = draft(session, kind, key)
    if row is not None:
        session.delete(row)


def flow_problems(library: Library, flow_id: str, text: str, number: int | None = None) -> list[Problem]:
    """What stops a flow version being published: the checks ``flows check`` runs on structure."""
    try:
        flow = parse_flow(text, version_source(flow_id, number))
    except FlowDefinitionError as error:
        return error.problems
    if flow.id != flow_id:
        return [Problem(flow.source, 1, f"the flow id must stay '{flow_id}'")]
    trial = Library(
        flows={**library.flows, flow_id: flow},
        messages=library.messages,
        entry=library.entry,
        safeguarding=library.safeguarding,
    )
    # Links from other flows into this one count too (a removed step another flow leads to), but
    # not problems those flows already had.
    before = {str(p) for p in check_library(library)}
    found = []
    for problem in check_library(trial):
        if problem.file == flow.source:
            found.append(problem)
        elif str(problem) not in before:
            where = (
                f"the flow '{problem.file}'"
                if problem.node is None
                else f"step '{problem.node}' of another flow"
            )
            found.append(Problem(flow.source, 1, f"{where} {problem.message}"))
    return found


def publish(
    session: Session,
    kind: str,
    key: str,
    content: str,
    staff: StaffUser | None,
    note: str = "",
    row: ContentVersion | None = None,
) -> ContentVersion:
    """Make ``content`` the version in use (``row``: the draft being published). Checks are the
    caller's job (see ``app.editor``); this numbers, stamps, audits and tells this process.
    Raises Clash if someone else published it at the same moment (nothing is published)."""
    from app.access import audit  # here: access imports the inbox models and Flask's request

    number = (
        session.scalar(
            select(func.max(ContentVersion.number)).where(
                ContentVersion.kind == kind, ContentVersion.key == key
            )
        )
        or 0
    ) + 1
    if row is None:
        row = ContentVersion(kind=kind, key=key, content=content)
        session.add(row)
    now = utcnow()
    row.status, row.number, row.content, row.note = "published", number, content, note[:300]
    row.published_at = row.updated_at = now
    row.published_by_id = staff.id if staff else None
    row.updated_by_id = row.updated_by_id or row.published_by_id
    if kind == FLOW:
        row.digest = parse_flow(content, version_source(key, number)).version
    _flush(session)
    audit(session, staff, "publish", detail=f"{kind} {key} version {number}" + (f": {note}" if note else ""))
    store().changed(session)
    return row
