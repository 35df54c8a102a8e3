"""Editing a flow: drafts, checks as you type, the diagram, preview, publish, compare, roll back.

A participation worker edits a draft with forms (``app.editor.steps``); the draft is saved however
broken it is, so nothing typed is lost, but it is published only when the checks that
``flask --app app flows check`` runs find no errors. Publishing makes a new numbered version: new
conversations get it, a child half-way through finishes on the version they started (every
published version stays loaded, see ``app.content``). Preview runs the draft through the pure engine
as a made-up test child: nothing is stored and no one real is told.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app import content
from app.access import roles_required
from app.conversations import render_for_child, safety_reply, urgent_concern
from app.editor import EDITOR_ROLES, _catalogs, _library, bp
from app.editor.compare import describe_changes
from app.editor.diagram import flow_diagram
from app.editor.steps import (
    NEW_STEP_KINDS,
    TARGET_FIELDS,
    FormError,
    StepForm,
    flow_from_steps,
    from_yaml,
    new_step,
    steps_from_flow,
    steps_from_form,
    to_yaml,
)
from app.engine import Context, Flow, FlowDefinitionError, Inbound, Library, Reply, advance, parse_flow
from app.engine.runtime import ActionView, FlowRuntimeError, begin, new_state
from app.engine.sms import sms_cost
from app.engine.triage import assess
from app.extensions import db
from app.flow_report import check, sample_variables
from app.i18n import SOURCE_LOCALE, Catalogs, english_name, staff_language_name
from app.models import ContentVersion
from app.models.flows import FLOW
from app.translations import carry_over

MAX_YAML_CHARS = 200_000
PREVIEW_NAME = "Test"


@dataclass
class DraftCheck:
    """What the checks say about a draft: errors stop publishing; notes do not."""

    errors: list[str]
    notes: list[str]
    by_step: dict[str, list[str]]
    costs: list[dict[str, Any]]  # SMS segments of each message in each locale
    flow: Flow | None

    @property
    def ok(self) -> bool:
        return not self.errors


def _flow_or_404(flow_id: str) -> str:
    if content.shipped_text(FLOW, flow_id) is None and content.latest(db.session, FLOW, flow_id) is None:
        abort(404)
    return flow_id


def _step_message(flow_id: str, node: str | None, message: str) -> tuple[str | None, str]:
    """(step, message) with the step named in words; report lines start "flow.step: ..."."""
    prefix = f"{flow_id}."
    if node is None and message.startswith(prefix) and ":" in message:
        where, _, rest = message.partition(":")
        node, message = where[len(prefix) :].split(".")[0], rest.strip()
    return node, message


STEP_NAME = re.compile(r"^nodes: '(.*)' does not match ")
STEP_NAME_RULE = "a step name can only have small letters, numbers and _, and must start with a letter"
SCHEMA_WORDS = [
    (re.compile(r"^'(\w+)' is a required property$"), r"it needs '\1'"),
    (
        re.compile(r"^(\w+): '(.*)' does not match '\^\(flow:.*$"),
        r"\1: '\2' is not a step name (or flow:name)",
    ),
    (
        re.compile(r"^(\w+): '(.*)' does not match '\^\[a-z\]\[a-z0-9_.\]\*\$'$"),
        r"\1: '\2' can only have small letters, numbers, _ and .",
    ),
    (
        re.compile(r"^Additional properties are not allowed \((.*) (was|were) unexpected\)$"),
        r"this kind of step has no \1",
    ),
]


def plain_words(message: str) -> str:
    """A schema checker's message in words a participation worker would use."""
    for pattern, words in SCHEMA_WORDS:
        if pattern.match(message):
            return pattern.sub(words, message)
    return message


def check_draft(library: Library, catalogs: Catalogs, flow_id: str, text: str) -> DraftCheck:
    """The checks `flows check` runs, on one flow's draft, in words that name the step."""
    errors: list[str] = []
    notes: list[str] = []
    by_step: dict[str, list[str]] = {}

    def add(target: list[str], node: str | None, message: str) -> None:
        node, message = _step_message(flow_id, node, plain_words(message))
        if node is None and (named := STEP_NAME.match(message)):
            node, message = named.group(1), STEP_NAME_RULE
        line = f"Step '{node}': {message}" if node else message
        if line not in target:
            target.append(line)
        if node and target is errors:  # the diagram marks errors only; notes do not stop publishing
            by_step.setdefault(node, []).append(message)

    for problem in content.flow_problems(library, flow_id, text):
        add(errors, problem.node, problem.message)
    if errors:
        return DraftCheck(errors, notes, by_step, [], None)
    flow = parse_flow(text, content.version_source(flow_id, None))
    trial = Library(
        flows={**library.flows, flow_id: flow},
        messages=library.messages,
        entry=library.entry,
        safeguarding=library.safeguarding,
    )
    report = check(trial, catalogs, flows=[flow])
    for problem in report.problems:
        add(errors, problem.node, problem.message)
    costs: dict[str, dict[str, Any]] = {}
    for row in report.rows:
        node, _ = _step_message(flow_id, None, f"{row.context}: x")
        entry = costs.setdefault(row.context, {"step": node, "cells": {}})
        entry["cells"][row.locale] = {
            "segments": row.segments,
            "encoding": row.encoding,
            "translated": row.translated,
        }
        if row.locale != SOURCE_LOCALE and not row.translated:
            add(
                notes,
                node,
                f"not in {english_name(row.locale)} yet: children who chose it get the English with a note",
            )
    return DraftCheck(errors, notes, by_step, list(costs.values()), flow)


def draft_stamp(row: ContentVersion) -> str:
    """Which save of the draft a form was made from."""
    return f"{row.id}:{row.revision}"


CLASH = (
    "Someone else saved or published this flow at the same moment, so nothing was changed. "
    "Reload the page to see their change, then try again."
)


def _head(form: Any, flow_id: str) -> dict[str, Any]:
    return {
        "id": flow_id,
        "title": form.get("title", "").strip(),
        "description": form.get("description", "").strip(),
        "start": form.get("start", "").strip(),
    }


def _apply_operation(steps: list[StepForm], operation: str) -> list[StepForm]:
    """Add, remove or move a step or a choice (the buttons beside each)."""
    name, _, arg = operation.partition(":")
    parts = [int(p) for p in arg.split(":") if p.isdigit()] if arg else []
    if name == "add" and arg in NEW_STEP_KINDS:
        steps.append(new_step(arg, {s.id for s in steps}))
    elif name in ("remove", "up", "down") and parts and parts[0] < len(steps):
        i = parts[0]
        if name == "remove":
            del steps[i]
        elif name == "up" and i > 0:
            steps[i - 1], steps[i] = steps[i], steps[i - 1]
        elif name == "down" and i + 1 < len(steps):
            steps[i + 1], steps[i] = steps[i], steps[i + 1]
    elif name == "add-choice" and parts and parts[0] < len(steps):
        step = steps[parts[0]]
        if step.choices is not None and len(step.choices) < 9:
            step.choices.append({"label": "", "goto": "", "keywords": "", "value": ""})
            step.extra_choice_fields.append({})
    elif name == "remove-choice" and len(parts) == 2 and parts[0] < len(steps):
        step = steps[parts[0]]
        if step.choices is not None and parts[1] < len(step.choices):
            del step.choices[parts[1]]
            del step.extra_choice_fields[parts[1]]
    return steps


def _targets_for(library: Library, steps: list[StepForm]) -> list[str]:
    """Suggestions for "go to" boxes: this flow's steps, then other flows."""
    others = sorted(f"flow:{flow_id}" for flow_id in library.flows)
    return [s.id for s in steps if s.id] + others


def _editor_page(
    flow_id: str,
    head: dict[str, Any],
    steps: list[StepForm],
    row: ContentVersion | None,
    errors: list[str],
    stamp: str | None = None,
) -> str:
    library, catalogs = _library(), _catalogs()
    data = flow_from_steps(head, steps) if not errors else {**head, "nodes": {}}
    result = check_draft(library, catalogs, flow_id, to_yaml(data)) if not errors else None
    return render_template(
        "editor/draft.html",
        flow_id=flow_id,
        head=head,
        steps=steps,
        row=row,
        form_errors=errors,
        check=result,
        diagram=flow_diagram(data, result.by_step if result else None),
        targets=_targets_for(library, steps),
        target_labels=TARGET_FIELDS,
        new_kinds=NEW_STEP_KINDS,
        locales=[(loc, staff_language_name(loc)) for loc in catalogs.locales],
        # A form refused for a clash keeps the stamp it came with, so saving it again is refused too.
        stamp=stamp if stamp is not None else (draft_stamp(row) if row else ""),
        newer=content.newer_than_draft(db.session, row) if row else None,
    )


@bp.get("/<flow_id>")
@roles_required(*EDITOR_ROLES)
def flow_page(flow_id: str) -> str:
    """One flow: the version in use, its history, its draft, its diagram."""
    _flow_or_404(flow_id)
    versions = content.published_versions(db.session, FLOW, flow_id)
    current_text = content.current_text(db.session, FLOW, flow_id) or ""
    data = from_yaml(current_text)
    return render_template(
        "editor/flow.html",
        flow_id=flow_id,
        data=data,
        versions=versions,
        draft=content.draft(db.session, FLOW, flow_id),
        shipped=content.shipped_text(FLOW, flow_id) is not None,
        diagram=flow_diagram(data),
        steps=steps_from_flow(data),
    )


@bp.post("/<flow_id>/draft/new")
@roles_required(*EDITOR_ROLES)
def start_draft(flow_id: str) -> Response:
    """Start a draft from the version in use (or open the one already started)."""
    _flow_or_404(flow_id)
    if content.draft(db.session, FLOW, flow_id) is None:
        text = content.current_text(db.session, FLOW, flow_id) or ""
        try:
            content.save_draft(db.session, FLOW, flow_id, text, current_user)
            db.session.commit()
        except content.Clash:
            pass  # someone started it at the same moment: open theirs
    return redirect(url_for("editor.edit_draft", flow_id=flow_id))


@bp.route("/<flow_id>/draft", methods=["GET", "POST"])
@roles_required(*EDITOR_ROLES)
def edit_draft(flow_id: str) -> str | Response:
    """The draft as forms: save, add, remove and move steps and choices."""
    _flow_or_404(flow_id)
    row = content.draft(db.session, FLOW, flow_id)
    if row is None:
        flash("There is no draft of this flow. Start one to make changes.")
        return redirect(url_for("editor.flow_page", flow_id=flow_id))
    if request.method == "GET":
        data = from_yaml(row.content)
        return _editor_page(flow_id, _head(data, flow_id), steps_from_flow(data), row, [])
    head = _head(request.form, flow_id)
    operation = request.form.get("op", "save")
    submitted = request.form.get("stamp", "")
    try:
        steps = steps_from_form(request.form)
    except FormError as error:
        # A hidden field the page wrote could not be read back: show the saved draft, not an empty one.
        saved = from_yaml(row.content)
        return _editor_page(
            flow_id, _head(saved, flow_id), steps_from_flow(saved), row, [str(error)], submitted
        )
    if submitted != draft_stamp(row):
        # Someone saved since this form was opened: saving would throw their work away.
        who = row.updated_by.display_name if row.updated_by else "Someone"
        message = (
            f"{who} saved this draft at {row.updated_at:%H:%M} after you opened it, so your changes "
            "were not saved. They are shown below: copy what you need, reload the page, and add them again."
        )
        return _editor_page(flow_id, head, steps, row, [message], submitted)
    steps = _apply_operation(steps, operation)
    try:
        text = to_yaml(flow_from_steps(head, steps))
    except FormError as error:
        # Nothing is saved, and everything typed is shown again to put right.
        return _editor_page(flow_id, head, steps, row, [str(error)], submitted)
    if len(text) > MAX_YAML_CHARS:
        return _editor_page(
            flow_id, head, steps, row, ["This flow is too long to save. Split it into two flows."]
        )
    try:
        content.save_draft(db.session, FLOW, flow_id, text, current_user)
    except content.Clash:
        return _editor_page(
            flow_id, head, steps, content.draft(db.session, FLOW, flow_id), [CLASH], submitted
        )
    db.session.commit()
    if operation == "save":
        flash("Draft saved. It is not live until you publish it.")
    return redirect(url_for("editor.edit_draft", flow_id=flow_id) + _anchor(operation))


def _anchor(operation: str) -> str:
    name, _, arg = operation.partition(":")
    index = arg.split(":")[0]
    return (
        f"#step-{index}" if name in ("up", "down", "add-choice", "remove-choice") and index.isdigit() else ""
    )


@bp.post("/<flow_id>/draft/check")
@roles_required(*EDITOR_ROLES)
def check_as_you_type(flow_id: str) -> Response:
    """Checks and the diagram for the form as it is now (nothing saved): the page calls this as
    the person types."""
    _flow_or_404(flow_id)
    head = _head(request.form, flow_id)
    try:
        data = flow_from_steps(head, steps_from_form(request.form))
    except FormError as error:
        return jsonify(errors=[str(error)], notes=[], diagram="", ok=False)
    result = check_draft(_library(), _catalogs(), flow_id, to_yaml(data))
    return jsonify(
        errors=result.errors,
        notes=result.notes,
        ok=result.ok,
        diagram=str(flow_diagram(data, result.by_step)),
    )


@bp.post("/<flow_id>/draft/publish")
@roles_required(*EDITOR_ROLES)
def publish_draft(flow_id: str) -> str | Response | tuple[str, int]:
    """Publish the saved draft if the checks pass; otherwise say what stops it and publish nothing."""
    _flow_or_404(flow_id)
    row = content.draft(db.session, FLOW, flow_id)
    if row is None:
        abort(404)
    library, catalogs = _library(), _catalogs()
    result = check_draft(library, catalogs, flow_id, row.content)
    if not result.ok:
        data = from_yaml(row.content)
        page = _editor_page(flow_id, _head(data, flow_id), steps_from_flow(data), row, [])
        return page, 422
    if not _publish(flow_id, row.content, library, note=request.form.get("note", "").strip(), row=row):
        return redirect(url_for("editor.edit_draft", flow_id=flow_id))
    return redirect(url_for("editor.flow_page", flow_id=flow_id))


def _publish(flow_id: str, text: str, library: Library, note: str, row: ContentVersion | None = None) -> bool:
    """Publish and say so; False (and a message) if someone else published at the same moment."""
    old = library.flows.get(flow_id)
    try:
        version = content.publish(db.session, FLOW, flow_id, text, current_user, note=note, row=row)
    except content.Clash:
        flash(CLASH)
        return False
    new = parse_flow(text, content.version_source(flow_id, version.number))
    locales = [loc for loc in _catalogs().locales if loc != SOURCE_LOCALE]
    carried = carry_over(db.session, locales, old, new, current_user)
    db.session.commit()
    message = f"Version {version.number} is published. New conversations use it now."
    if carried:
        message += f" {carried} translation(s) need review because the English changed."
    flash(message)
    return True


@bp.post("/<flow_id>/draft/discard")
@roles_required(*EDITOR_ROLES)
def discard_draft(flow_id: str) -> Response:
    _flow_or_404(flow_id)
    content.discard_draft(db.session, FLOW, flow_id)
    db.session.commit()
    flash("The draft is deleted. The version in use has not changed.")
    return redirect(url_for("editor.flow_page", flow_id=flow_id))


def _version_text(flow_id: str, which: str) -> tuple[str, str] | None:
    """(name, YAML) for "draft", "file" or a version number."""
    if which == "draft":
        row = content.draft(db.session, FLOW, flow_id)
        return ("the draft", row.content) if row else None
    if which == "file":
        text = content.shipped_text(FLOW, flow_id)
        return ("the shipped file", text) if text is not None else None
    if which.isdigit():
        for row in content.published_versions(db.session, FLOW, flow_id):
            if row.number == int(which):
                return (f"version {row.number}", row.content)
    return None


@bp.get("/<flow_id>/compare")
@roles_required(*EDITOR_ROLES)
def compare(flow_id: str) -> str:
    """What changed between two versions, in words."""
    _flow_or_404(flow_id)
    old = _version_text(flow_id, request.args.get("from", "file"))
    new = _version_text(flow_id, request.args.get("to", "draft"))
    if old is None or new is None:
        abort(404)
    changes = describe_changes(from_yaml(old[1]), from_yaml(new[1]))
    return render_template("editor/compare.html", flow_id=flow_id, old=old[0], new=new[0], changes=changes)


@bp.post("/<flow_id>/versions/<int:number>/republish")
@roles_required(*EDITOR_ROLES)
def republish(flow_id: str, number: int) -> Response | tuple[str, int]:
    """Roll back: publish a copy of an earlier version as the newest (checked like any draft)."""
    _flow_or_404(flow_id)
    found = _version_text(flow_id, str(number)) if number else _version_text(flow_id, "file")
    if found is None:
        abort(404)
    library = _library()
    result = check_draft(library, _catalogs(), flow_id, found[1])
    if not result.ok:
        flash(f"{found[0].capitalize()} cannot be published again: " + " ".join(result.errors))
        return redirect(url_for("editor.flow_page", flow_id=flow_id))
    _publish(flow_id, found[1], library, note=f"Re-published {found[0]}")
    return redirect(url_for("editor.flow_page", flow_id=flow_id))


# --- preview ----------------------------------------------------------------------------------


def _preview_library(flow_id: str) -> tuple[Library, Flow | None]:
    """The library in use with the draft (if it is valid) in place of the flow."""
    library = _library()
    row = content.draft(db.session, FLOW, flow_id)
    if row is None:
        return library, library.flows.get(flow_id)
    try:
        flow = parse_flow(row.content, content.version_source(flow_id, None))
    except FlowDefinitionError:
        return library, None
    trial = Library(
        flows={**library.flows, flow_id: flow},
        messages=library.messages,
        versions=dict(library.versions),
        entry=library.entry,
        safeguarding=library.safeguarding,
    )
    return trial, flow


def _preview_context(locale: str, catalogs: Catalogs) -> Context:
    now = datetime.now(UTC)
    variables: dict[str, str | None] = {**sample_variables(locale), "first_name": PREVIEW_NAME}
    actions = (
        ActionView(1, "Help you join a football club", "Your social worker", None, "agreed"),
        ActionView(2, "Plan more time with your brother", "Your carer", None, "late"),
        ActionView(3, "Start driving lessons", "Your IRO", None, "done"),
    )
    return Context(
        now=now, locale=locale, variables=variables, translate=catalogs.translator(locale), actions=actions
    )


@bp.get("/<flow_id>/preview")
@roles_required(*EDITOR_ROLES)
def preview(flow_id: str) -> str:
    """Chat with the draft as a made-up test child, in any language."""
    _flow_or_404(flow_id)
    catalogs = _catalogs()
    return render_template(
        "editor/preview.html",
        flow_id=flow_id,
        has_draft=content.draft(db.session, FLOW, flow_id) is not None,
        locales=[(loc, staff_language_name(loc)) for loc in catalogs.locales],
    )


@bp.post("/<flow_id>/preview/api")
@roles_required(*EDITOR_ROLES)
def preview_api(flow_id: str) -> Response | tuple[Response, int]:
    """JSON ``{"text", "locale", "state", "start"}`` -> ``{"replies", "effects", "state"}``, as the
    simulator's API, from the pure engine: nothing is stored and no one is told."""
    _flow_or_404(flow_id)
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return jsonify(error="Send JSON with text, locale and state."), 400
    catalogs = _catalogs()
    locale = payload.get("locale") if payload.get("locale") in catalogs.locales else SOURCE_LOCALE
    state = payload.get("state") if isinstance(payload.get("state"), dict) else new_state()
    text = payload.get("text") if isinstance(payload.get("text"), str) else ""
    library, flow = _preview_library(flow_id)
    if flow is None:
        return jsonify(error="The draft has errors, so it cannot be previewed. Fix them first."), 422
    context = _preview_context(locale, catalogs)
    state = {**new_state(), **state}
    # As for a real child (app/conversations.py): risk words get the safety reply and an urgent
    # concern before anything else, and the child keeps their place.
    triage = assess(text, book=library.safeguarding) if text.strip() else None
    if triage is not None and triage.urgent:
        replies, effects, path = [safety_reply()], [urgent_concern(triage)], []
    else:
        try:
            if payload.get("start"):
                step = begin(library, state, flow_id, context)
            else:
                step = advance(library, state, Inbound(text=text[:1600]), context)
        except (FlowRuntimeError, KeyError, TypeError, ValueError) as error:
            return jsonify(error=f"The preview stopped: {error}. Start again."), 422
        replies, effects, state, path = list(step.replies), list(step.effects), step.state, list(step.path)
        chosen = assess(" ".join(step.chosen), book=library.safeguarding) if step.chosen else None
        if chosen is not None and chosen.urgent and not any(getattr(e, "urgent", False) for e in effects):
            effects.insert(0, urgent_concern(chosen))
        if any(getattr(e, "urgent", False) for e in effects):
            replies.insert(0, safety_reply())
    return jsonify(
        replies=[_preview_text(reply, catalogs, locale, context) for reply in replies],
        effects=[effect.as_dict() for effect in effects],
        state=state,
        path=path,
    )


def _preview_text(reply: Reply, catalogs: Catalogs, locale: str, context: Context) -> dict[str, Any]:
    """A reply as the child would get it (with the note when it is not translated), and its SMS cost."""
    text = render_for_child(reply, locale, context.variables, catalogs)
    cost = sms_cost(text)
    return {"text": text, "segments": cost.segments, "encoding": cost.encoding}
