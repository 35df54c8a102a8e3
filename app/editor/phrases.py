"""The safeguarding phrase lists, edited in the browser (issue 6, item 7).

Each language's list is one file (``flows/safeguarding/<locale>.yaml`` is the shipped default),
edited whole in a text box with its header notes kept: the format is written for people. A draft
is always kept, even when broken, and a box tries a message against it without storing anything.

Publishing (a draft, or an earlier version again) is refused when the file has problems, or when it
would miss a risk message in the labelled test set that the list in use catches: a phrase list
must never get less safe by accident. A published list is used for every new message at once.
Participation workers and admins only, like the rest of the editor.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import Length

from app import PROJECT_ROOT, content
from app.access import audit, roles_required
from app.editor import EDITOR_ROLES, bp
from app.engine.definition import FlowDefinitionError, read_yaml
from app.engine.triage import CATEGORIES, Evaluation, PhraseBook, Triage, assess, evaluate
from app.extensions import db
from app.i18n import SOURCE_LOCALE, staff_language_name
from app.models import ContentVersion
from app.models.flows import PHRASES
from app.office_hours import local_now

# The labelled messages `flows check` measures triage with; TRIAGE_SAMPLES may point elsewhere.
SAMPLES = PROJECT_ROOT / "tests" / "data" / "safeguarding_utterances.csv"
DRAFT = "draft"  # the source name the edited file gets in problems, to tell it from the others
MAX_FILE = 200_000
SHIPPED = 0  # the version number that stands for the shipped file in the history


class DraftForm(FlaskForm):
    """The whole file, a message to try against it, and a note for the history."""

    content = TextAreaField("The phrase file", validators=[Length(max=MAX_FILE)])
    message = TextAreaField("A message a child might send", validators=[Length(max=1000)])
    note = StringField("What changed (for the history)", validators=[Length(max=200)])
    stamp = HiddenField()  # which save of the draft the form was made from


CLASH = (
    "Someone else saved or published this list at the same moment, so nothing was changed. "
    "Reload the page to see their change, then try again."
)


def _stamp(locale: str) -> str:
    """Which save of the draft (if any) is the latest."""
    row = content.draft(db.session, PHRASES, locale)
    return f"{row.id}:{row.revision}" if row else "none"


def _conflict(locale: str, form: DraftForm, message: str) -> str:
    """Show what was typed, unsaved, with why; the form keeps its old stamp so Save stays refused."""
    form.content.errors = [*form.content.errors, message]
    return _render_edit(locale, form)


class PlainForm(FlaskForm):
    """A button that only needs its CSRF token."""


# --- the lists in use -------------------------------------------------------------------------


def _locales() -> list[str]:
    """Every locale with a phrase list: the shipped files and anything published, English first."""
    published = db.session.scalars(
        select(ContentVersion.key)
        .where(ContentVersion.kind == PHRASES, ContentVersion.status == "published")
        .distinct()
    )
    found = set(content.store().shipped.phrase_texts) | set(published)
    return sorted(found, key=lambda locale: (locale != SOURCE_LOCALE, locale))


def _known(locale: str) -> str:
    """The locale, if it has a phrase list (else 404)."""
    if locale not in _locales():
        abort(404)
    return locale


def _in_use_texts() -> dict[str, str]:
    """Each locale's file as in use now."""
    texts = {locale: content.current_text(db.session, PHRASES, locale) for locale in _locales()}
    return {locale: text for locale, text in texts.items() if text is not None}


def _book_in_use() -> PhraseBook | None:
    """The phrase book triage uses for children's messages now."""
    return content.current(db.session)[0].safeguarding


def _source(locale: str) -> str:
    """The shipped file's name for a locale, as problems name it."""
    return content.store().shipped.phrase_sources.get(locale, f"flows/safeguarding/{locale}.yaml")


def _when(moment: datetime | None) -> str:
    """A stored UTC time as staff read it, in UK time: 3 Mar 2026, 14:05."""
    return local_now(moment).strftime("%-d %b %Y, %H:%M") if moment else "an unknown time"


def _by(row: ContentVersion, published: bool = True) -> str:
    """Who published (or last saved) a version."""
    staff = row.published_by if published else row.updated_by
    return staff.display_name if staff else "someone no longer on the system"


@dataclass(frozen=True)
class ListStatus:
    """One language's list: what is in use, whether a draft waits, phrases per concern."""

    locale: str
    language: str
    source: str
    in_use: str
    draft: str | None
    counts: dict[str, int]
    draft_counts: dict[str, int] | None


def _in_use_words(locale: str, row: ContentVersion | None) -> str:
    """Which version is in use, in words."""
    if row is None:
        return f"The shipped file {_source(locale)}"
    return f"Version {row.number}, published by {_by(row)} on {_when(row.published_at)}"


def _draft_words(row: ContentVersion | None) -> str | None:
    """Who saved the draft and when, or None without one."""
    return f"Saved by {_by(row, published=False)} on {_when(row.updated_at)}" if row else None


def _sections(text: str | None) -> dict[str, list[str]] | None:
    """The risk phrases by concern and the not_risk phrases as written, or None if unreadable."""
    try:
        data = read_yaml(text or "")
    except yaml.YAMLError:  # a broken draft: its problems are shown elsewhere
        return None
    if not isinstance(data, dict):
        return None
    phrases = data.get("phrases") if isinstance(data.get("phrases"), dict) else {}
    found: dict[str, list[str]] = {}
    for name, values in [*((c, phrases.get(c)) for c in CATEGORIES), ("not_risk", data.get("not_risk"))]:
        found[name] = [str(v) for v in values if v is not None] if isinstance(values, list) else []
    return found


def _counts(text: str | None) -> dict[str, int] | None:
    """How many risk phrases a file lists for each concern."""
    sections = _sections(text)
    return {c: len(sections[c]) for c in CATEGORIES} if sections is not None else None


def list_statuses() -> list[ListStatus]:
    """Every language's phrase list and its state, for the overview and the settings page."""
    statuses = []
    for locale in _locales():
        in_use = content.latest(db.session, PHRASES, locale)
        draft = content.draft(db.session, PHRASES, locale)
        text = content.current_text(db.session, PHRASES, locale)
        statuses.append(
            ListStatus(
                locale=locale,
                language=staff_language_name(locale),
                source=_source(locale),
                in_use=_in_use_words(locale, in_use),
                draft=_draft_words(draft),
                counts=_counts(text) or {},
                draft_counts=_counts(draft.content) if draft else None,
            )
        )
    return statuses


@bp.app_template_global("safeguarding_lists")
def safeguarding_lists() -> list[ListStatus]:
    """The phrase lists' state, for the settings page's links."""
    return list_statuses()


# --- checking a file in place of its locale's list ----------------------------------------------


@dataclass(frozen=True)
class ShownProblem:
    """A problem in words: in the edited file (with the line as written) or in another file."""

    line: int
    message: str
    other_file: str | None = None
    written: str = ""

    def __str__(self) -> str:
        where = f"In {self.other_file}, line {self.line}" if self.other_file else f"Line {self.line}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Checked:
    """A file checked in place of its locale's list, the others as in use."""

    book: PhraseBook | None
    problems: list[ShownProblem]


@functools.lru_cache(maxsize=8)
def _parse(texts: tuple[tuple[str, str], ...], sources: tuple[tuple[str, str], ...]) -> PhraseBook:
    """A phrase book, kept for a while: building one takes about half a second."""
    return content.phrase_book(dict(texts), dict(sources))


def _check(locale: str, text: str) -> Checked:
    """Problems with ``text`` as the locale's list, and the phrase book it would make."""
    in_use = _in_use_texts()
    if in_use.get(locale) == text and _book_in_use() is not None:
        return Checked(_book_in_use(), [])
    texts = {**in_use, locale: text}
    sources = {loc: _source(loc) for loc in texts} | {locale: DRAFT}
    try:
        return Checked(_parse(tuple(sorted(texts.items())), tuple(sorted(sources.items()))), [])
    except FlowDefinitionError as error:
        lines = text.splitlines()
        problems = [
            ShownProblem(p.line, p.message, written=lines[p.line - 1].strip() if p.line <= len(lines) else "")
            if p.file == DRAFT
            else ShownProblem(p.line, p.message, other_file=p.file)
            for p in error.problems
        ]
        return Checked(None, sorted(problems, key=lambda p: (p.other_file is not None, p.line)))


def _samples() -> list[dict[str, str]] | None:
    """The labelled test messages, or None where there are none (an installed service may not)."""
    path = Path(current_app.config.get("TRIAGE_SAMPLES") or SAMPLES)
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@dataclass(frozen=True)
class Comparison:
    """The labelled test set read with the list in use and with a candidate list."""

    in_use: Evaluation
    candidate: Evaluation

    @property
    def lost(self) -> list[str]:
        """Risk messages the list in use catches and the candidate would miss."""
        return [m for m in self.candidate.missed if m not in set(self.in_use.missed)]

    @property
    def gained(self) -> list[str]:
        """Risk messages the candidate catches and the list in use misses."""
        return [m for m in self.in_use.missed if m not in set(self.candidate.missed)]

    @property
    def new_alarms(self) -> list[str]:
        """Safe messages only the candidate marks urgent."""
        return [m for m in self.candidate.false_positives if m not in set(self.in_use.false_positives)]

    @property
    def fewer_alarms(self) -> list[str]:
        """Safe messages only the list in use marks urgent."""
        return [m for m in self.in_use.false_positives if m not in set(self.candidate.false_positives)]


def _compare(book: PhraseBook | None) -> Comparison | None:
    """The test set read with the list in use and with ``book``, if there is a test set."""
    rows, in_use = _samples(), _book_in_use()
    if rows is None or in_use is None or book is None:
        return None
    return Comparison(evaluate(in_use, rows), evaluate(book, rows))


@dataclass(frozen=True)
class Change:
    """Phrases added to and taken out of one section, compared with the list in use."""

    section: str
    added: list[str]
    removed: list[str]


def _changes(old: str | None, new: str) -> list[Change]:
    """Risk and not_risk phrases added and taken out, section by section."""
    before, after = _sections(old), _sections(new)
    if before is None or after is None:
        return []
    changes = []
    for name in (*CATEGORIES, "not_risk"):
        added = [p for p in after[name] if p not in set(before[name])]
        removed = [p for p in before[name] if p not in set(after[name])]
        if added or removed:
            label = "Not a risk" if name == "not_risk" else name.replace("_", " ").capitalize()
            changes.append(Change(label, added, removed))
    return changes


@dataclass(frozen=True)
class Refusal:
    """Why nothing was published, and the details (problems or messages)."""

    headline: str
    items: list[str]


def refusal(locale: str, text: str, what: str) -> Refusal | None:
    """Why ``text`` may not become the locale's list, or None if it may."""
    if text == content.current_text(db.session, PHRASES, locale):
        return Refusal(f"Nothing was published: {what} is the same as the list in use.", [])
    checked = _check(locale, text)
    if checked.problems:
        count = len(checked.problems)
        return Refusal(
            f"Nothing was published: {what} has {count} problem{'s' if count != 1 else ''}. "
            "Fix them and publish again.",
            [str(p) for p in checked.problems],
        )
    comparison = _compare(checked.book)
    if comparison and comparison.lost:
        count = len(comparison.lost)
        return Refusal(
            f"Nothing was published: {what} would miss {count} risk message{'s' if count != 1 else ''} "
            "from the test set that the list in use catches. A phrase list must never get less safe "
            "by accident: put back the phrases that found " + ("it." if count == 1 else "them."),
            comparison.lost,
        )
    return None


# --- pages --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionRow:
    """One row of a list's history; number 0 is the shipped file."""

    number: int
    label: str
    by: str
    when: str
    note: str
    in_use: bool


def _history(locale: str) -> list[VersionRow]:
    """Every published version, newest first, then the shipped file."""
    rows = content.published_versions(db.session, PHRASES, locale)
    history = [
        VersionRow(r.number or 0, f"Version {r.number}", _by(r), _when(r.published_at), r.note, i == 0)
        for i, r in enumerate(rows)
    ]
    if content.shipped_text(PHRASES, locale) is not None:
        history.append(
            VersionRow(SHIPPED, "The shipped file", "", "", f"{_source(locale)}, as installed", not rows)
        )
    return history


def _render_edit(
    locale: str,
    form: DraftForm,
    *,
    refusal: Refusal | None = None,
    verdicts: tuple[Triage, Triage | None] | None = None,
) -> str:
    """The edit page for the text in ``form``: its problems, changes and test-set result."""
    in_use_row = content.latest(db.session, PHRASES, locale)
    draft_row = content.draft(db.session, PHRASES, locale)
    in_use_text = content.current_text(db.session, PHRASES, locale)
    text = form.content.data if form.content.data is not None else (in_use_text or "")
    checked = _check(locale, text)
    stale = bool(
        draft_row
        and in_use_row
        and in_use_row.published_at
        and in_use_row.published_at > draft_row.created_at
    )
    return render_template(
        "editor/phrases_edit.html",
        locale=locale,
        language=staff_language_name(locale),
        source=_source(locale),
        form=form,
        in_use=_in_use_words(locale, in_use_row),
        in_use_number=in_use_row.number if in_use_row else None,
        draft=_draft_words(draft_row),
        stale=stale,
        changed=text != in_use_text,
        problems=checked.problems,
        comparison=_compare(checked.book),
        samples=_samples() is not None,
        changes=_changes(in_use_text, text),
        refusal=refusal,
        verdicts=verdicts,
        history=_history(locale),
    )


def _normalised(text: str | None) -> str:
    """What a browser sends as the file: its line endings as in the file."""
    return (text or "").replace("\r\n", "\n").replace("\r", "\n")


@bp.get("/settings/phrases")
@roles_required(*EDITOR_ROLES)
def phrases() -> str:
    """Every language's list: the version in use, any draft, phrases per concern."""
    return render_template(
        "editor/phrases.html",
        statuses=list_statuses(),
        categories=CATEGORIES,
        samples=_samples() is not None,
    )


@bp.route("/settings/phrases/<locale>", methods=["GET", "POST"])
@roles_required(*EDITOR_ROLES)
def phrase_edit(locale: str) -> str | Response:
    """Edit a draft of one language's list; save, try a message against it, or publish it."""
    _known(locale)
    if request.method == "GET":
        draft_row = content.draft(db.session, PHRASES, locale)
        text = draft_row.content if draft_row else content.current_text(db.session, PHRASES, locale)
        return _render_edit(
            locale, DraftForm(formdata=None, data={"content": text or "", "stamp": _stamp(locale)})
        )
    form = DraftForm()
    action = request.form.get("action", "save")
    if not form.validate_on_submit():
        db.session.rollback()
        return _render_edit(locale, form)
    text = _normalised(form.content.data)
    form.content.data = text
    draft_row = content.draft(db.session, PHRASES, locale)
    if form.stamp.data != _stamp(locale):
        # Someone saved since this form was opened: saving would throw their work away.
        who = draft_row.updated_by.display_name if draft_row and draft_row.updated_by else "Someone"
        return _conflict(
            locale,
            form,
            f"{who} changed this draft after you opened it, so your changes were not saved. Copy what "
            "you need, reload the page, and add your changes again.",
        )
    if draft_row is not None or text != content.current_text(db.session, PHRASES, locale):
        # Nothing typed is lost: every button keeps the draft first, broken or not.
        try:
            draft_row = content.save_draft(db.session, PHRASES, locale, text, current_user)
        except content.Clash:
            return _conflict(locale, form, CLASH)
    db.session.commit()
    form.stamp.data = _stamp(locale)
    if action == "try":
        return _try(locale, form, text)
    if action == "publish":
        return _publish(locale, form, text, draft_row)
    if draft_row is None:
        flash("Nothing to save: this is the same as the list in use.")
    else:
        problems = len(_check(locale, text).problems)
        saved = "Draft saved."
        if problems:
            saved += (
                f" It has {problems} problem{'s' if problems != 1 else ''} to fix before it can be published."
            )
        flash(saved)
    return redirect(url_for("editor.phrase_edit", locale=locale))


def _try(locale: str, form: DraftForm, text: str) -> str:
    """Triage a message with the draft and with the list in use; the message is not stored."""
    message = (form.message.data or "").strip()
    if not message:
        form.message.errors = [*form.message.errors, "Type a message to try."]
        return _render_edit(locale, form)
    book = _check(locale, text).book
    in_use = _book_in_use()
    if book is None:
        form.message.errors = [
            *form.message.errors,
            "The draft has problems, so it cannot check messages yet. Fix the problems first.",
        ]
        return _render_edit(locale, form)
    verdicts = (assess(message, book=book), assess(message, book=in_use) if in_use else None)
    return _render_edit(locale, form, verdicts=verdicts)


def _publish(locale: str, form: DraftForm, text: str, draft_row: ContentVersion | None) -> str | Response:
    """Publish the draft unless it is refused; the refusal is shown on the edit page."""
    refused = refusal(locale, text, "the draft")
    if refused:
        return _render_edit(locale, form, refusal=refused)
    note = (form.note.data or "").strip() or "Published from the editor"
    try:
        row = content.publish(db.session, PHRASES, locale, text, current_user, note, row=draft_row)
    except content.Clash:
        return _conflict(locale, form, CLASH)
    db.session.commit()
    flash(f"Published version {row.number}. Every new message is checked against it from now on.")
    return redirect(url_for("editor.phrase_edit", locale=locale))


@bp.post("/settings/phrases/<locale>/discard")
@roles_required(*EDITOR_ROLES)
def phrase_discard(locale: str) -> Response:
    """Throw the draft away; the list in use stays."""
    _known(locale)
    if not PlainForm().validate_on_submit():
        abort(400)
    if content.draft(db.session, PHRASES, locale) is not None:
        content.discard_draft(db.session, PHRASES, locale)
        audit(db.session, current_user, "discarded draft", detail=f"{PHRASES} {locale}")
        db.session.commit()
        flash("Draft discarded. The list in use has not changed.")
    return redirect(url_for("editor.phrase_edit", locale=locale))


def _version_text(locale: str, number: int) -> str:
    """A published version's file, or the shipped file for version 0 (404 if there is none)."""
    if number == SHIPPED:
        text = content.shipped_text(PHRASES, locale)
    else:
        text = db.session.scalar(
            select(ContentVersion.content).where(
                ContentVersion.kind == PHRASES,
                ContentVersion.key == locale,
                ContentVersion.status == "published",
                ContentVersion.number == number,
            )
        )
    if text is None:
        abort(404)
    return text


@bp.get("/settings/phrases/<locale>/versions/<int:number>")
@roles_required(*EDITOR_ROLES)
def phrase_version(locale: str, number: int) -> str:
    """One published version (or the shipped file) as written, read-only."""
    _known(locale)
    return render_template(
        "editor/phrases_version.html",
        locale=locale,
        language=staff_language_name(locale),
        label="the shipped file" if number == SHIPPED else f"version {number}",
        text=_version_text(locale, number),
    )


@bp.post("/settings/phrases/<locale>/versions/<int:number>/publish")
@roles_required(*EDITOR_ROLES)
def phrase_republish(locale: str, number: int) -> str | Response:
    """Publish an earlier version (or the shipped file) again, after the same checks as a draft."""
    _known(locale)
    if not PlainForm().validate_on_submit():
        abort(400)
    text = _version_text(locale, number)
    label = "the shipped file" if number == SHIPPED else f"version {number}"
    refused = refusal(locale, text, label)
    if refused:
        draft_row = content.draft(db.session, PHRASES, locale)
        shown = draft_row.content if draft_row else content.current_text(db.session, PHRASES, locale)
        form = DraftForm(formdata=None, data={"content": shown or "", "stamp": _stamp(locale)})
        return _render_edit(locale, form, refusal=refused)
    try:
        row = content.publish(db.session, PHRASES, locale, text, current_user, f"Re-published {label}")
    except content.Clash:
        flash(CLASH)
        return redirect(url_for("editor.phrase_edit", locale=locale))
    db.session.commit()
    flash(f"Published {label} again as version {row.number}. Every new message is checked against it now.")
    return redirect(url_for("editor.phrase_edit", locale=locale))
