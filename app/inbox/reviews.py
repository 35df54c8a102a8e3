"""The review workspace: a review's wishes and feelings, its actions (the child's "my plan"), updates.

Every view gets the child through ``child_for_staff`` (404 for a child this member of staff may
not see, audited) and then the review only among that child's reviews, so a review id from another
child is 404 too. The actions recorded here are exactly what ``app.conversations.child_actions``
shows the child: the actions of their most recent held review. "Mark review held" makes a review
that took place the source of "my plan". An update to the child is staff-written text, queued as
written through ``app.outbound`` to the child's most recently linked channel that is not opted out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from app.access import CHILD_DATA_ROLES, audit, child_for_staff, roles_required
from app.conversations import library
from app.extensions import db
from app.inbox import bp
from app.models import (
    Child,
    Review,
    ReviewAction,
    StaffUser,
    WishesSubmission,
    utcnow,
)
from app.outbound import queue_message, reply_channel

STATUS_LABELS = {
    "agreed": "Agreed, not done yet",
    "awaiting_manager": "Waiting for a manager to agree",
    "done": "Done",
}
REVIEW_STATUS_LABELS = {
    "scheduled": "Scheduled",
    "held": "Held",
    "postponed": "Postponed",
    "cancelled": "Cancelled",
}
MAX_ACTION_TEXT = 300
MAX_UPDATE_TEXT = 640  # four SMS segments at most; staff text is sent as written
WISHES_FLOW = "wishes"


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class DayField(DateField):
    """A date input whose error says plainly what is wanted."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError as error:
            self.data = None
            raise ValueError("Give a real date (day, month and year), e.g. 2026-03-31.") from error


class ActionForm(FlaskForm):
    """Add or change an action agreed at a review (what, who, by when, status)."""

    class Meta:
        # CSRFProtect checks every POST (a ``csrf_token`` hidden input is in each form); the
        # per-form check is off so one page can hold one prefixed form per action.
        csrf = False

    description = TextAreaField(
        "What",
        filters=[_strip],
        validators=[
            DataRequired(message="Say what needs to happen."),
            Length(max=MAX_ACTION_TEXT, message=f"Keep it to {MAX_ACTION_TEXT} characters or fewer."),
        ],
    )
    owner = StringField(
        "Who",
        filters=[_strip],
        validators=[
            DataRequired(message="Say who will do it."),
            Length(max=MAX_ACTION_TEXT, message=f"Keep it to {MAX_ACTION_TEXT} characters or fewer."),
        ],
    )
    due_on = DayField("By when (optional)", validators=[Optional()])
    status = SelectField(
        "Status", choices=[SelectChoice(k, v) for k, v in STATUS_LABELS.items()], default="agreed"
    )


class UpdateForm(FlaskForm):
    """A "what I did since your last review" message, written by staff and sent as written."""

    class Meta:
        csrf = False

    message = TextAreaField(
        "Message",
        filters=[_strip],
        validators=[
            DataRequired(message="Write the update before sending it."),
            Length(max=MAX_UPDATE_TEXT, message=f"Keep it to {MAX_UPDATE_TEXT} characters or fewer."),
        ],
    )


class EmptyForm(FlaskForm):
    class Meta:
        csrf = False


@dataclass
class Answer:
    key: str
    question: str
    value: str


@dataclass
class Submission:
    id: int
    submitted_at: datetime
    seen_at: datetime | None
    newly_seen: bool
    answers: list[Answer] = field(default_factory=list)
    private: list[Answer] = field(default_factory=list)


def question_labels(role_short: str) -> dict[str, str]:
    """Each wishes answer key with the English text of the question that asked it, in flow order."""
    flow = library().get(WISHES_FLOW)
    nodes: dict[str, Any] = (flow.data.get("nodes") or {}) if flow else {}
    labels: dict[str, str] = {}
    for node in nodes.values():
        if isinstance(node, dict) and node.get("save") and node.get("text"):
            text = re.sub(r"\{role_short\}", role_short or "IRO", str(node["text"]))
            labels.setdefault(str(node["save"]), text)
    return labels


def _readable(key: str) -> str:
    return key.split(".", 1)[-1].replace("_", " ").capitalize()


def _child_review(child: Child, review_id: int) -> Review:
    review = db.session.get(Review, review_id)
    if review is None or review.child_id != child.id:
        abort(404)
    return review


def _marks_seen(staff: StaffUser, child: Child) -> bool:
    """Opening the views counts as the IRO seeing them: by an IRO, or by a manager for a child with none."""
    return staff.role == "iro" or child.current_iro is None


def submissions(child: Child, review: Review, mark_seen: bool) -> list[Submission]:
    """The child's views for this review, newest first, each answer labelled; marks them seen."""
    labels = question_labels(child.authority.wording("role_short", "en"))
    order = {key: n for n, key in enumerate(labels)}
    rows = db.session.scalars(
        select(WishesSubmission)
        .where(WishesSubmission.child_id == child.id, WishesSubmission.review_id == review.id)
        .order_by(WishesSubmission.submitted_at.desc(), WishesSubmission.id.desc())
    ).all()
    now = utcnow()
    found: list[Submission] = []
    newly: list[int] = []
    for row in rows:
        stored = row.answers or {}
        answers: dict[str, Any] = stored.get("answers") or {}
        private = set(stored.get("private") or [])
        newly_seen = row.seen_at is None and mark_seen
        if newly_seen:
            row.seen_at = now
            newly.append(row.id)
        item = Submission(row.id, row.submitted_at, row.seen_at, newly_seen)
        for key in sorted(answers, key=lambda k: (order.get(k, len(order)), k)):
            answer = Answer(key, labels.get(key, _readable(key)), str(answers[key]))
            (item.private if key in private else item.answers).append(answer)
        found.append(item)
    if newly:
        audit(
            db.session,
            current_user,
            "marked wishes seen",
            child.id,
            f"review {review.id} submissions {', '.join(map(str, newly))}",
        )
    return found


def _edit_form(action: ReviewAction, formdata: Any = None) -> ActionForm:
    form = ActionForm(formdata=formdata, prefix=f"action{action.id}")
    if formdata is None:
        form.description.data = action.description
        form.owner.data = action.owner
        form.due_on.data = action.due_on
        form.status.data = action.status
    return form


def _render(
    child: Child,
    review: Review,
    *,
    add_form: ActionForm | None = None,
    edit_forms: dict[int, ActionForm] | None = None,
    update_form: UpdateForm | None = None,
    status: int = 200,
) -> tuple[str, int]:
    """The workspace page (forms given are shown with their errors)."""
    today = utcnow().date()
    all_reviews = db.session.scalars(
        select(Review)
        .where(Review.child_id == child.id)
        .order_by(Review.scheduled_for.desc(), Review.id.desc())
    ).all()
    views = submissions(child, review, _marks_seen(current_user, child))
    forms = {action.id: _edit_form(action) for action in review.actions}
    forms.update(edit_forms or {})
    channel = reply_channel(db.session, child.id)
    db.session.commit()
    page = render_template(
        "inbox/review.html",
        child=child,
        review=review,
        reviews=all_reviews,
        submissions=views,
        today=today,
        add_form=add_form or ActionForm(),
        edit_forms=forms,
        update_form=update_form or UpdateForm(),
        held_form=EmptyForm(),
        channel=channel,
        status_labels=STATUS_LABELS,
        review_status_labels=REVIEW_STATUS_LABELS,
        max_update=MAX_UPDATE_TEXT,
        is_source_of_plan=review.id == _plan_review_id(child),
    )
    return page, status


def _plan_review_id(child: Child) -> int | None:
    """The review whose actions the child sees in "my plan" (as app.conversations.child_actions)."""
    return db.session.scalar(Review.last_held_of(child.id).with_only_columns(Review.id))


def _back(child: Child, review: Review, anchor: str = "") -> Response:
    return redirect(
        url_for("inbox.review", child_id=child.id, review_id=review.id) + (f"#{anchor}" if anchor else "")
    )


@bp.get("/children/<int:child_id>/reviews")
@roles_required(*CHILD_DATA_ROLES)
def reviews(child_id: int) -> Response | tuple[str, int]:
    """The child's review to work on: the next scheduled one, else the latest."""
    child = child_for_staff(db.session, current_user, child_id, "reviews")
    today = utcnow().date()
    chosen = db.session.scalar(
        select(Review)
        .where(Review.child_id == child.id, Review.status == "scheduled", Review.scheduled_for >= today)
        .order_by(Review.scheduled_for)
        .limit(1)
    ) or db.session.scalar(
        select(Review).where(Review.child_id == child.id).order_by(Review.scheduled_for.desc()).limit(1)
    )
    db.session.commit()
    if chosen is None:
        return render_template("inbox/review_none.html", child=child), 200
    return _back(child, chosen)


@bp.get("/children/<int:child_id>/reviews/<int:review_id>")
@roles_required(*CHILD_DATA_ROLES)
def review(child_id: int, review_id: int) -> tuple[str, int]:
    """The review workspace: views (private ones apart), actions with forms, the update form."""
    child = child_for_staff(db.session, current_user, child_id, "review")
    return _render(child, _child_review(child, review_id))


@bp.get("/children/<int:child_id>/reviews/<int:review_id>/print")
@roles_required(*CHILD_DATA_ROLES)
def review_print(child_id: int, review_id: int) -> str:
    """A print-friendly record of the review: the child's views (private marked) and the actions."""
    child = child_for_staff(db.session, current_user, child_id, "review print")
    review = _child_review(child, review_id)
    views = submissions(child, review, _marks_seen(current_user, child))
    db.session.commit()
    return render_template(
        "inbox/review_print.html",
        child=child,
        review=review,
        submissions=views,
        today=utcnow().date(),
        status_labels=STATUS_LABELS,
        review_status_labels=REVIEW_STATUS_LABELS,
        printed_at=utcnow(),
    )


@bp.post("/children/<int:child_id>/reviews/<int:review_id>/actions")
@roles_required(*CHILD_DATA_ROLES)
def add_action(child_id: int, review_id: int) -> Response | tuple[str, int]:
    """Record an action agreed at this review."""
    child = child_for_staff(db.session, current_user, child_id, "review action add")
    review = _child_review(child, review_id)
    form = ActionForm()
    if not form.validate():
        db.session.commit()
        return _render(child, review, add_form=form, status=400)
    action = ReviewAction(
        review_id=review.id,
        description=form.description.data,
        owner=form.owner.data,
        due_on=form.due_on.data,
        status=form.status.data,
        completed_on=utcnow().date() if form.status.data == "done" else None,
    )
    db.session.add(action)
    db.session.flush()
    audit(db.session, current_user, "added review action", child.id, f"review {review.id} action {action.id}")
    db.session.commit()
    flash("Action added.")
    return _back(child, review, "actions")


@bp.post("/children/<int:child_id>/reviews/<int:review_id>/actions/<int:action_id>")
@roles_required(*CHILD_DATA_ROLES)
def update_action(child_id: int, review_id: int, action_id: int) -> Response | tuple[str, int]:
    """Change an action's text, who, due date or status."""
    child = child_for_staff(db.session, current_user, child_id, "review action change")
    review = _child_review(child, review_id)
    action = db.session.get(ReviewAction, action_id)
    if action is None or action.review_id != review.id:
        abort(404)
    form = _edit_form(action, formdata=request.form)
    if not form.validate():
        db.session.commit()
        return _render(child, review, edit_forms={action.id: form}, status=400)
    changed = []
    for name, new in (
        ("description", form.description.data),
        ("owner", form.owner.data),
        ("due_on", form.due_on.data),
        ("status", form.status.data),
    ):
        if getattr(action, name) != new:
            setattr(action, name, new)
            changed.append(name)
    if "status" in changed:
        action.completed_on = utcnow().date() if action.status == "done" else None
    if changed:
        audit(
            db.session,
            current_user,
            "changed review action",
            child.id,
            f"review {review.id} action {action.id}: {', '.join(changed)}",
        )
        flash("Action updated.")
    else:
        flash("Nothing changed.")
    db.session.commit()
    return _back(child, review, f"action-{action.id}")


@bp.post("/children/<int:child_id>/reviews/<int:review_id>/held")
@roles_required(*CHILD_DATA_ROLES)
def mark_held(child_id: int, review_id: int) -> Response:
    """Record that the review took place, so its actions become the child's "my plan"."""
    child = child_for_staff(db.session, current_user, child_id, "review held")
    review = _child_review(child, review_id)
    if review.status == "held":
        flash("This review is already marked as held.")
        return _back(child, review)
    today = utcnow().date()
    detail = f"review {review.id}: {review.status} -> held"
    note = ""
    if review.scheduled_for > today:
        # A review held before its date took place today; keeping the future date would make a
        # later review look older than it and put the wrong actions in "my plan".
        detail += f", date {review.scheduled_for.isoformat()} -> {today.isoformat()}"
        note = f" Its date was moved from {_day(review.scheduled_for)} to today, when it took place."
        review.scheduled_for = today
    review.status = "held"
    audit(db.session, current_user, "marked review held", child.id, detail)
    db.session.commit()
    flash(f"Review marked as held. Its actions are now what {child.first_name} sees in “my plan”.{note}")
    return _back(child, review)


@bp.post("/children/<int:child_id>/reviews/<int:review_id>/update")
@roles_required(*CHILD_DATA_ROLES)
def send_update(child_id: int, review_id: int) -> Response | tuple[str, int]:
    """Queue a staff-written "what I did since your last review" message to the child, as written."""
    child = child_for_staff(db.session, current_user, child_id, "review update")
    review = _child_review(child, review_id)
    form = UpdateForm()
    if not form.validate():
        db.session.commit()
        return _render(child, review, update_form=form, status=400)
    identity = reply_channel(db.session, child.id)
    if identity is None:
        form.form_errors.append(
            f"Not sent: {child.first_name} has no linked channel that can receive messages "
            "(none linked, or every one opted out). Nothing was queued."
        )
        audit(db.session, current_user, "review update refused", child.id, f"review {review.id}: no channel")
        db.session.commit()
        return _render(child, review, update_form=form, status=409)
    message = queue_message(db.session, child.id, identity, form.message.data, utcnow())
    message.staff_id = current_user.id
    db.session.flush()
    audit(
        db.session,
        current_user,
        "sent review update",
        child.id,
        f"review {review.id} message {message.id} via {identity.channel}",
    )
    db.session.commit()
    flash(f"Update queued to {child.first_name} by {_channel_name(identity.channel)}.")
    return _back(child, review, "update")


def _day(day: date) -> str:
    return f"{day.day} {day.strftime('%b %Y')}"


def _channel_name(channel: str) -> str:
    return {"sms": "SMS", "telegram": "Telegram"}.get(channel, channel)


@bp.app_template_filter("review_day")
def review_day(day: date | None) -> str:
    """A date as staff read it, e.g. 3 Mar 2026."""
    return _day(day) if day else ""


@bp.app_template_filter("channel_name")
def channel_name(channel: str) -> str:
    return _channel_name(channel)
