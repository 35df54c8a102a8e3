"""Translations side by side, for participation workers and admins (issue 6).

``/flows/translations`` lists each language with what is approved, waiting for review and missing,
and moves .po files in and out for translation agencies. ``/flows/translations/<locale>/<flow>``
shows a flow's English beside its translation: saving proposes a translation, and a second person
approves it before children get it (``app.translations``). The system messages are at
``/flows/translations/<locale>/system-messages``: a flow id cannot contain "-", so no flow can
take that address.
"""

from __future__ import annotations

from datetime import datetime

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app import content, translations
from app.access import audit, roles_required
from app.editor import EDITOR_ROLES, _catalogs, _library, bp
from app.engine.definition import Flow
from app.extensions import db
from app.i18n import SOURCE_LOCALE, staff_language_name
from app.models import Translation
from app.models.flows import FLOW

SYSTEM_PAGE = "system-messages"
WHAT = {"message": "Message", "choice": "Choice", "keywords": "Keywords"}


def _locale_or_404(locale: str) -> str:
    if locale == SOURCE_LOCALE or locale not in _catalogs().locales:
        abort(404)
    return locale


def _flow_or_404(flow_id: str) -> tuple[str | None, str, Flow | None, Flow | None, bool]:
    """(flow id or None for the system messages, title, published flow, parsed draft, has a draft)."""
    if flow_id == SYSTEM_PAGE:
        return None, "System messages", None, None, False
    published = _library().flows.get(flow_id)
    has_draft = content.draft(db.session, FLOW, flow_id) is not None
    if published is None and not has_draft:
        abort(404)
    draft = translations.draft_flow(db.session, flow_id) if has_draft else None
    title = (draft or published).title if (draft or published) else flow_id
    return flow_id, title, published, draft, has_draft


def _when(moment: datetime | None) -> str:
    return f"{moment.day} {moment:%b %Y %H:%M}" if moment else ""


def _sections(locale: str) -> list[tuple[str, str, translations.Counts, bool]]:
    """(page id, title, counts, only a draft) for the system messages and every flow."""
    library, catalogs = _library(), _catalogs()
    drafts = translations.draft_flows(db.session)
    found = [
        (
            SYSTEM_PAGE,
            "System messages",
            translations.counts(translations.rows(db.session, catalogs, library, None, locale)),
            False,
        )
    ]
    flow_ids = sorted(
        set(library.flows) | set(drafts), key=lambda i: (library.flows.get(i) or drafts[i]).title
    )
    for flow_id in flow_ids:
        flow = library.flows.get(flow_id) or drafts[flow_id]
        found_rows = translations.rows(db.session, catalogs, library, flow_id, locale, drafts.get(flow_id))
        found.append((flow_id, flow.title, translations.counts(found_rows), flow_id not in library.flows))
    return found


def _render_index(result: translations.ImportResult | None = None, result_locale: str | None = None) -> str:
    locales = [locale for locale in _catalogs().locales if locale != SOURCE_LOCALE]
    languages = []
    for locale in locales:
        sections = _sections(locale)
        total = translations.Counts(
            sum(s[2].approved for s in sections),
            sum(s[2].needs_review for s in sections),
            sum(s[2].missing for s in sections),
        )
        languages.append((locale, staff_language_name(locale), sections, total))
    return render_template(
        "editor/translations.html",
        languages=languages,
        result=result,
        result_locale=result_locale,
        result_language=staff_language_name(result_locale) if result_locale else None,
        max_mb=translations.MAX_PO_BYTES // (1024 * 1024),
    )


@bp.get("/translations")
@roles_required(*EDITOR_ROLES)
def translations_overview() -> str:
    return _render_index()


@bp.get("/translations/<locale>.po")
@roles_required(*EDITOR_ROLES)
def export_translations(locale: str) -> Response:
    """Download every message in one language as a .po file."""
    _locale_or_404(locale)
    data = translations.export_po(db.session, locale)
    audit(db.session, current_user, "translations exported", detail=f"{locale} .po file")
    db.session.commit()
    return Response(
        data,
        mimetype="text/x-gettext-translation",
        headers={"Content-Disposition": f'attachment; filename="reviewline-{locale}.po"'},
    )


@bp.post("/translations/<locale>/import")
@roles_required(*EDITOR_ROLES)
def import_translations(locale: str) -> tuple[str, int]:
    """Read a .po file into proposals waiting for review, and say what happened."""
    _locale_or_404(locale)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        result = translations.ImportResult(error="Choose a .po file to import.")
    else:
        try:
            data = upload.stream.read(translations.MAX_PO_BYTES + 1)
        finally:
            upload.close()  # a large upload is spooled to a temporary file
        result = translations.import_po(db.session, locale, data, upload.filename, current_user)
    db.session.commit()
    return _render_index(result, locale), 400 if result.error else 200


def _render_page(
    locale: str,
    flow_id: str,
    typed: dict[str, str] | None = None,
    errors: dict[str, list[str]] | None = None,
    notice: list[str] | None = None,
    lost: list[tuple[str, str]] | None = None,
) -> str:
    key, title, published, draft, has_draft = _flow_or_404(flow_id)
    found = translations.rows(db.session, _catalogs(), _library(), key, locale, draft)
    return render_template(
        "editor/translations_flow.html",
        locale=locale,
        language=staff_language_name(locale),
        flow_id=flow_id,
        title=title,
        is_system=key is None,
        source=published.source if published else None,
        rows=found,
        counts=translations.counts(found),
        has_draft=has_draft,
        draft_broken=has_draft and draft is None,
        can_carry_over=published is not None and any(r.previous for r in found),
        typed=typed or {},
        errors=errors or {},
        notice=notice or [],
        lost=lost or [],
        what=WHAT,
        when=_when,
        me=current_user.id,
    )


@bp.route("/translations/<locale>/<flow_id>", methods=["GET", "POST"])
@roles_required(*EDITOR_ROLES)
def translation_page(locale: str, flow_id: str) -> str | Response | tuple[str, int]:
    """A flow's English beside one language; saving proposes every translation that was changed."""
    _locale_or_404(locale)
    key, _, _, draft, _ = _flow_or_404(flow_id)
    if request.method == "GET":
        return _render_page(locale, flow_id)
    found = translations.rows(db.session, _catalogs(), _library(), key, locale, draft)
    known = translations.known_messages(db.session)
    typed: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    saved = 0
    for row in found:
        text = request.form.get(f"text-{row.key}")
        if text is None or text.strip() == request.form.get(f"was-{row.key}", "").strip():
            continue
        problems = translations.propose(
            db.session, locale, row.context, row.english, text, current_user, known
        )
        if problems:
            typed[row.key], errors[row.key] = text, problems
        else:
            saved += 1
    shown = {row.key for row in found}
    lost = [
        (name.removeprefix("text-"), value)
        for name, value in request.form.items()
        if name.startswith("text-")
        and name.removeprefix("text-") not in shown
        and value.strip() != request.form.get(f"was-{name.removeprefix('text-')}", "").strip()
    ]
    db.session.commit()
    done = (
        f"Saved {saved} translation{'s' if saved != 1 else ''}. Someone else must approve "
        f"{'them' if saved != 1 else 'it'} before children get {'them' if saved != 1 else 'it'}."
        if saved
        else ""
    )
    if errors or lost:
        notice = [done] if done else []
        return _render_page(locale, flow_id, typed, errors, notice, lost), 422
    flash(done or "Nothing changed.")
    return redirect(url_for("editor.translation_page", locale=locale, flow_id=flow_id))


def _back(locale: str, flow_id: str, key: str = "") -> Response:
    anchor = f"#row-{key}" if key else ""
    return redirect(url_for("editor.translation_page", locale=locale, flow_id=flow_id) + anchor)


@bp.post("/translations/<locale>/<flow_id>/approve/<int:translation_id>")
@roles_required(*EDITOR_ROLES)
def approve_translation(locale: str, flow_id: str, translation_id: int) -> Response | tuple[str, int]:
    """Approve someone else's translation, so children get it from their next message."""
    _locale_or_404(locale)
    _flow_or_404(flow_id)
    row = db.session.get(Translation, translation_id)
    if row is None or row.locale != locale:
        abort(404)
    key = row.key
    error = translations.approve(db.session, translation_id, current_user, request.form.get("text"))
    if error:
        db.session.rollback()
        return _render_page(locale, flow_id, notice=[], errors={key: [error]}), 409
    db.session.commit()
    flash("Approved. Children get this translation from their next message.")
    return _back(locale, flow_id, key)


@bp.post("/translations/<locale>/<flow_id>/approve-file")
@roles_required(*EDITOR_ROLES)
def approve_file_translation(locale: str, flow_id: str) -> Response | tuple[str, int]:
    """Approve, as it is, a translation the shipped .po file marks as needing review."""
    _locale_or_404(locale)
    key, _, _, draft, _ = _flow_or_404(flow_id)
    wanted = request.form.get("key", "")
    row = next(
        (
            r
            for r in translations.rows(db.session, _catalogs(), _library(), key, locale, draft)
            if r.key == wanted
        ),
        None,
    )
    if row is None:
        abort(404)
    error = translations.approve_file(
        db.session, locale, row.context, row.english, current_user, request.form.get("text")
    )
    if error:
        db.session.rollback()
        return _render_page(locale, flow_id, errors={wanted: [error]}), 409
    db.session.commit()
    flash("Approved. Children get this translation from their next message.")
    return _back(locale, flow_id, wanted)


@bp.post("/translations/<locale>/<flow_id>/carry-over")
@roles_required(*EDITOR_ROLES)
def carry_over_translations(locale: str, flow_id: str) -> Response:
    """Start the translations of English the draft changed from the earlier translations."""
    _locale_or_404(locale)
    _, _, published, draft, _ = _flow_or_404(flow_id)
    if published is None or draft is None:
        flash("There is no draft with changed English to copy translations for.")
        return _back(locale, flow_id)
    made = translations.carry_over(db.session, [locale], published, draft, current_user)
    if made:
        audit(db.session, current_user, "translations carried over", detail=f"{locale} {flow_id}: {made}")
    db.session.commit()
    flash(
        f"Copied {made} earlier translation{'s' if made != 1 else ''}. Check each one against the new "
        "English; someone else must approve them."
        if made
        else "There was nothing to copy."
    )
    return _back(locale, flow_id)
