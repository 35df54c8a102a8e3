"""A child's thread: every message in and out with its delivery status, private notes, concerns, replies.

Every view gets the child through ``child_for_staff`` (404 for a child this member of staff may not
see, an audit row for every read). Replies are never sent from the request: they are queued through
``app.outbound`` on the child's most recently linked channel that is not opted out, and the worker
delivers them. ``/messages?after=<id>`` and ``/inbox/urgent.json`` feed the small script in
``static/inbox.js`` that shows new messages and urgent concerns without a reload.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import IntegerField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length

from app.access import CHILD_DATA_ROLES, audit, child_for_staff, may_see, roles_required
from app.delivery import retry_dead
from app.extensions import db
from app.inbox import bp
from app.inbox.caseload import open_urgent
from app.models import (
    CannedReply,
    ChannelIdentity,
    Child,
    Concern,
    Message,
    OutboxMessage,
    Review,
    StaffNote,
    StaffUser,
    utcnow,
)
from app.outbound import queue_message, reply_channel

MAX_REPLY = 640  # four SMS segments in GSM-7; a longer text is hard to read on a phone
MAX_NOTE = 4000
ASSIGNABLE_ROLES = ("iro", "iro_manager")
CHANNEL_LABELS = {"sms": "SMS", "telegram": "Telegram", "web": "Simulator"}
STATUS_LABELS = {
    "received": "Received",
    "queued": "Queued",
    "accepted": "Queued",
    "sending": "Sending",
    "sent": "Sent",
    "delivered": "Delivered",
    "read": "Delivered",
    "undelivered": "Failed",
    "failed": "Failed",
    "cancelled": "Cancelled (the child opted out)",
}
ROUTE_LABELS = {"iro": "IRO", "manager": "IRO manager", "advocacy": "Advocacy"}


class ReplyForm(FlaskForm):
    text = TextAreaField(
        "Reply",
        validators=[
            DataRequired(message="Write a reply first."),
            Length(max=MAX_REPLY, message=f"A reply can be at most {MAX_REPLY} characters."),
        ],
    )


class NoteForm(FlaskForm):
    note = TextAreaField(
        "Private note",
        validators=[
            DataRequired(message="Write the note first."),
            Length(max=MAX_NOTE, message=f"A note can be at most {MAX_NOTE} characters."),
        ],
    )


class AssignForm(FlaskForm):
    assignee = IntegerField("Assign to", validators=[InputRequired(message="Choose who to assign it to.")])


@dataclass
class ThreadItem:
    """One row of the thread: a message in or out, or a private staff note."""

    kind: str  # "in", "out" or "note"
    id: int
    text: str
    at: datetime
    channel: str = ""
    status: str = ""
    author: str = ""
    urgent: bool = False
    outbox_id: int | None = None
    dead: bool = False
    retrying: bool = False

    @property
    def status_label(self) -> str:
        if self.dead:
            return "Not delivered"
        label = STATUS_LABELS.get(self.status, self.status.capitalize())
        return f"{label} (retrying)" if self.retrying and self.status == "queued" else label

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "direction": self.kind,
            "channel": self.channel,
            "channel_label": CHANNEL_LABELS.get(self.channel, self.channel),
            "text": self.text,
            "time": self.at.isoformat() + "Z",
            "time_label": self.at.strftime("%-d %b %Y %H:%M") + " UTC",
            "status": "not_delivered" if self.dead else self.status,
            "status_label": self.status_label,
            "author": self.author,
            "urgent": self.urgent,
        }


def _staff_names(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    query = select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(ids))
    return {staff_id: name for staff_id, name in db.session.execute(query)}


def _messages(child: Child, after: int | None = None) -> list[ThreadItem]:
    """The child's messages in order (after a message id, if given), with delivery and urgency."""
    query = (
        select(Message, OutboxMessage.id, OutboxMessage.status, OutboxMessage.attempts)
        .outerjoin(OutboxMessage, OutboxMessage.message_id == Message.id)
        .where(Message.child_id == child.id)
        .order_by(Message.created_at, Message.id)
    )
    if after is not None:
        query = query.where(Message.id > after)
    rows = db.session.execute(query).all()
    ids = [message.id for message, *_ in rows]
    urgent = (
        set(
            db.session.scalars(
                select(Concern.message_id).where(
                    Concern.child_id == child.id, Concern.urgent.is_(True), Concern.message_id.in_(ids)
                )
            )
        )
        if ids
        else set()
    )
    names = _staff_names({m.staff_id for m, *_ in rows if m.staff_id})
    items = []
    for message, outbox_id, outbox_status, attempts in rows:
        author = ""
        if message.direction == "out":
            author = names.get(message.staff_id, "Staff") if message.staff_id else "Reviewline (automatic)"
        items.append(
            ThreadItem(
                kind="in" if message.direction == "in" else "out",
                id=message.id,
                text=message.body,
                at=message.created_at,
                channel=message.channel,
                status=message.status,
                author=author,
                urgent=message.id in urgent,
                outbox_id=outbox_id,
                dead=outbox_status == "dead",
                retrying=outbox_status == "pending" and bool(attempts),
            )
        )
    return items


def _notes(child: Child) -> list[ThreadItem]:
    notes = list(
        db.session.scalars(
            select(StaffNote)
            .where(StaffNote.child_id == child.id)
            .order_by(StaffNote.created_at, StaffNote.id)
        )
    )
    names = _staff_names({n.staff_id for n in notes})
    return [
        ThreadItem(kind="note", id=n.id, text=n.body, at=n.created_at, author=names.get(n.staff_id, "Staff"))
        for n in notes
    ]


def _assignees(child: Child) -> list[StaffUser]:
    """Who a concern can be given to: active IROs and managers of the child's authority."""
    return list(
        db.session.scalars(
            select(StaffUser)
            .where(
                StaffUser.authority_id == child.authority_id,
                StaffUser.role.in_(ASSIGNABLE_ROLES),
                StaffUser.active.is_(True),
            )
            .order_by(StaffUser.role, StaffUser.display_name)
        )
    )


def _thread_page(
    child: Child,
    reply_form: ReplyForm | None = None,
    note_form: NoteForm | None = None,
    status: int = 200,
) -> tuple[str, int]:
    today = utcnow().date()
    items = sorted(
        _messages(child) + _notes(child),
        key=lambda item: (item.at, item.kind == "note", item.id),
    )
    concerns = list(
        db.session.scalars(
            select(Concern)
            .where(Concern.child_id == child.id, Concern.status == "open")
            .order_by(Concern.urgent.desc(), Concern.created_at, Concern.id)
        )
    )
    assignees = _assignees(child)
    names = {s.id: s.display_name for s in assignees} | _staff_names(
        {c.assigned_to_id for c in concerns if c.assigned_to_id}
    )
    next_review = db.session.scalar(Review.next_of(child.id, today))
    last_review = db.session.scalar(Review.last_held_of(child.id))
    if reply_form is None:
        reply_form = ReplyForm(formdata=None)
        canned_id = request.args.get("canned", type=int)
        if canned_id is not None:
            canned = db.session.get(CannedReply, canned_id)
            if canned is not None and canned.authority_id == child.authority_id:
                reply_form.text.data = canned.body
    canned_replies = list(
        db.session.scalars(
            select(CannedReply).where(CannedReply.authority_id == child.authority_id).order_by(CannedReply.id)
        )
    )
    last_message_id = max((i.id for i in items if i.kind != "note"), default=0)
    page = render_template(
        "inbox/thread.html",
        child=child,
        iro=child.current_iro,
        identities=sorted(child.identities, key=lambda i: (i.linked_at, i.id)),
        reply_to=reply_channel(db.session, child.id),
        items=items,
        concerns=concerns,
        assignees=assignees,
        staff_names=names,
        next_review=next_review,
        last_review=last_review,
        today=today,
        reply_form=reply_form,
        note_form=note_form or NoteForm(formdata=None),
        canned_replies=canned_replies,
        last_message_id=last_message_id,
        channel_labels=CHANNEL_LABELS,
        route_labels=ROUTE_LABELS,
        max_reply=MAX_REPLY,
    )
    db.session.commit()  # the audit row written by child_for_staff
    return page, status


def _back(child: Child) -> Response:
    return redirect(url_for("inbox.thread", child_id=child.id))


@bp.get("/children/<int:child_id>")
@roles_required(*CHILD_DATA_ROLES)
def thread(child_id: int) -> tuple[str, int]:
    """A child's thread: header, messages and notes in order, open concerns, reply and note forms."""
    child = child_for_staff(db.session, current_user, child_id, "thread")
    return _thread_page(child)


@bp.get("/children/<int:child_id>/messages")
@roles_required(*CHILD_DATA_ROLES)
def thread_messages(child_id: int) -> Response:
    """Messages newer than ``after`` (a message id), as JSON, for the page to add without a reload."""
    # Polled every few seconds: audited only when it shows something new, not for every empty poll.
    child = child_for_staff(db.session, current_user, child_id, "new messages", audit_read=False)
    after = request.args.get("after", default=0, type=int)
    items = _messages(child, after=after)
    if items:
        audit(db.session, current_user, "viewed new messages", child.id, f"{len(items)} after {after}")
    db.session.commit()
    response = jsonify([item.as_json() for item in items])
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/children/<int:child_id>/reply")
@roles_required(*CHILD_DATA_ROLES)
def reply(child_id: int) -> Response | tuple[str, int]:
    """Queue a staff reply to the child on their reply channel; the worker sends it."""
    child = child_for_staff(db.session, current_user, child_id, "reply")
    form = ReplyForm()
    if not form.validate():
        return _thread_page(child, reply_form=form, status=400)
    identity = reply_channel(db.session, child.id)
    if identity is None:
        refused = "opted out on every channel (they texted STOP)" if child.identities else "no linked channel"
        audit(db.session, current_user, "reply refused", child.id, refused)
        db.session.commit()
        flash(f"Not sent: {child.first_name} has {refused}. Nothing was queued.")
        return _back(child)
    text = form.text.data.strip()
    message = queue_message(db.session, child.id, identity, text, utcnow())
    message.staff_id = current_user.id
    db.session.flush()
    audit(db.session, current_user, "replied", child.id, f"message {message.id} by {identity.channel}")
    db.session.commit()
    flash(f"Reply queued for {child.first_name} by {CHANNEL_LABELS.get(identity.channel, identity.channel)}.")
    return _back(child)


@bp.post("/children/<int:child_id>/notes")
@roles_required(*CHILD_DATA_ROLES)
def add_note(child_id: int) -> Response | tuple[str, int]:
    """Add a private note to the thread (staff only; never sent to the child)."""
    child = child_for_staff(db.session, current_user, child_id, "add note")
    form = NoteForm()
    if not form.validate():
        return _thread_page(child, note_form=form, status=400)
    note = StaffNote(child_id=child.id, staff_id=current_user.id, body=form.note.data.strip())
    db.session.add(note)
    db.session.flush()
    audit(db.session, current_user, "added note", child.id, f"note {note.id}")
    db.session.commit()
    flash("Private note added.")
    return _back(child)


def _open_concern(child: Child, concern_id: int) -> Concern:
    """The child's open concern, or 404 (a concern of another child is never touched)."""
    concern = db.session.get(Concern, concern_id)
    if concern is None or concern.child_id != child.id:
        abort(404)
    return concern


@bp.post("/children/<int:child_id>/concerns/<int:concern_id>/resolve")
@roles_required(*CHILD_DATA_ROLES)
def resolve_concern(child_id: int, concern_id: int) -> Response:
    """Mark a concern resolved, by whom and when."""
    child = child_for_staff(db.session, current_user, child_id, "resolve concern")
    concern = _open_concern(child, concern_id)
    if concern.status != "open":
        flash("That concern was already resolved.")
        db.session.commit()
        return _back(child)
    concern.status, concern.resolved_at, concern.resolved_by_id = "resolved", utcnow(), current_user.id
    audit(
        db.session, current_user, "resolved concern", child.id, f"concern {concern.id} ({concern.category})"
    )
    db.session.commit()
    flash("Concern resolved.")
    if not may_see(db.session, current_user, child.id):
        # It was assigned to this member of staff, who no longer has a reason to see the child.
        return redirect(url_for("inbox.caseload"))
    return _back(child)


@bp.post("/children/<int:child_id>/concerns/<int:concern_id>/assign")
@roles_required(*CHILD_DATA_ROLES)
def assign_concern(child_id: int, concern_id: int) -> Response:
    """Give a concern to another IRO of the authority or a manager (they can then see the child)."""
    child = child_for_staff(db.session, current_user, child_id, "assign concern")
    concern = _open_concern(child, concern_id)
    form = AssignForm()
    target = db.session.get(StaffUser, form.assignee.data) if form.validate() else None
    if (
        target is None
        or not target.active
        or target.role not in ASSIGNABLE_ROLES
        or target.authority_id != child.authority_id
    ):
        db.session.commit()
        flash("Not assigned: choose an IRO or manager of this authority.")
        return _back(child)
    if concern.status != "open":
        db.session.commit()
        flash("Not assigned: that concern is already resolved.")
        return _back(child)
    concern.assigned_to_id = target.id
    audit(
        db.session,
        current_user,
        "assigned concern",
        child.id,
        f"concern {concern.id} ({concern.category}) to {target.display_name} (staff {target.id})",
    )
    db.session.commit()
    flash(f"Concern assigned to {target.display_name}.")
    return _back(child)


@bp.post("/children/<int:child_id>/outbox/<int:outbox_id>/retry")
@roles_required(*CHILD_DATA_ROLES)
def retry_message(child_id: int, outbox_id: int) -> Response:
    """Send a dead-lettered message again: the worker picks it up at once."""
    child = child_for_staff(db.session, current_user, child_id, "retry message")
    row = db.session.get(OutboxMessage, outbox_id)
    if row is None or row.message.child_id != child.id:
        abort(404)
    identity = db.session.get(ChannelIdentity, row.identity_id) if row.identity_id else None
    if row.status != "dead":
        flash("That message is not waiting for a retry.")
    elif identity is not None and identity.opted_out:
        flash(f"Not retried: {child.first_name} has opted out on that channel (they texted STOP).")
    else:
        retry_dead(db.session, row.id)
        audit(db.session, current_user, "retried message", child.id, f"message {row.message_id}")
        flash("The message will be sent again.")
    db.session.commit()
    return _back(child)


@bp.get("/urgent.json")
@roles_required(*CHILD_DATA_ROLES)
def urgent_json() -> Response:
    """The open urgent concerns this member of staff may see, newest first, for the urgent page."""
    rows = open_urgent(db.session, current_user)
    if rows:
        audit(db.session, current_user, "viewed urgent queue", detail=f"{len(rows)} concerns (live)")
    db.session.commit()
    response = jsonify(
        [
            {
                "id": concern.id,
                "child_id": concern.child_id,
                "child": name,
                "category": concern.category.replace("_", " "),
                "time": concern.created_at.isoformat() + "Z",
                "time_label": concern.created_at.strftime("%-d %b %Y %H:%M") + " UTC",
                "url": url_for("inbox.thread", child_id=concern.child_id),
            }
            for concern, name in rows
        ]
    )
    response.headers["Cache-Control"] = "no-store"
    return response
