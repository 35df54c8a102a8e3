"""Child admin: add a child, change their IRO, set review dates, link an SMS number or a Telegram chat.

Every view reads the child through ``child_for_staff`` (404 for a child this member of staff may not
see, audited), and every change writes its own audit row. Review dates are proposed from the
statutory timetable in ``app.review_schedule`` and stay editable. When the IRO changes, the child's
open concerns that were assigned to the old IRO go back to unassigned (so they follow the child to
the new IRO), and the child gets a discreet text through the outbox (``iro_changed``: no names, no
words about care) inviting them to reply 1, which shows who their IRO is now.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response
from wtforms import DateField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from app.access import CHILD_DATA_ROLES, audit, child_for_staff, roles_required
from app.auth import qr_svg
from app.channels import telegram
from app.conversations import library, render_for_child
from app.engine import Reply
from app.engine.runtime import pause
from app.extensions import db
from app.inbox import bp
from app.linking import CODE_LIFETIME, deep_link, issue_code
from app.models import (
    ChannelIdentity,
    Child,
    Concern,
    ConversationState,
    IroAssignment,
    OutboxMessage,
    Review,
    StaffUser,
    utcnow,
)
from app.office_hours import local_now
from app.outbound import queue_message, reply_channel
from app.phones import display_phone, normalise_phone
from app.reminders import QUIET_UNTIL, is_quiet, local_time, time_zone
from app.review_schedule import Proposal, date_notes, early_review_problem, propose_next, timetable

LOCALES = [SelectChoice("en", "English"), SelectChoice("cy", "Cymraeg (Welsh)")]
DEFAULT_TIME_ZONE = "Europe/London"
IN_USE = "That number is already in use. Check it, or ask a manager."
BAD_NUMBER = "Enter a UK mobile number, like 07700 900123."
INTRODUCTION = "iro_changed"


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def uk_today() -> date:
    """Today's date in the UK (the authority's calendar), whatever the server's clock zone."""
    return local_now(utcnow()).date()


def uk_mobile(raw: str) -> str | None:
    """A UK mobile number in E.164 (+447...), or None if it is not one."""
    number = normalise_phone(raw)
    if number is None or not number.startswith("+447") or len(number) != 13:
        return None
    return number


def authority_iros(authority_id: int) -> list[StaffUser]:
    """The active IROs of an authority, by name."""
    return list(
        db.session.scalars(
            select(StaffUser)
            .where(
                StaffUser.authority_id == authority_id,
                StaffUser.role == "iro",
                StaffUser.active.is_(True),
            )
            .order_by(StaffUser.display_name)
        )
    )


class NewChildForm(FlaskForm):
    first_name = StringField("First name", validators=[DataRequired(), Length(max=100)])
    date_of_birth = DateField("Date of birth", validators=[DataRequired(message="Enter a date.")])
    locale = SelectField("Language for messages", choices=LOCALES, default="en")
    looked_after_since = DateField(
        "Date they became looked after", validators=[DataRequired(message="Enter a date.")]
    )
    time_zone = StringField(
        "Time zone (for quiet hours)",
        default=DEFAULT_TIME_ZONE,
        validators=[DataRequired(), Length(max=60)],
    )
    phone = StringField("UK mobile number (optional)", validators=[Optional(), Length(max=40)])
    iro_id = SelectField("IRO", coerce=int, validate_choice=False)

    def check(self, today: date) -> str | None:
        """Cross-field checks; returns a normalised phone number (or None) and adds errors."""
        if self.date_of_birth.data and self.date_of_birth.data > today:
            self.date_of_birth.errors.append("The date of birth cannot be in the future.")
        since = self.looked_after_since.data
        if since and since > today:
            self.looked_after_since.errors.append("This date cannot be in the future.")
        if since and self.date_of_birth.data and since < self.date_of_birth.data:
            self.looked_after_since.errors.append("This date cannot be before the date of birth.")
        if self.time_zone.data.strip() not in _time_zones():
            self.time_zone.errors.append("Use a time zone name like Europe/London.")
        phone = None
        if self.phone.data and self.phone.data.strip():
            phone = uk_mobile(self.phone.data)
            if phone is None:
                self.phone.errors.append(BAD_NUMBER)
            elif ChannelIdentity.find(db.session, "sms", phone) is not None:
                self.phone.errors.append(IN_USE)
        return phone


def _age(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


@bp.route("/children/new", methods=["GET", "POST"])
@roles_required(*CHILD_DATA_ROLES)
def new_child() -> str | Response | tuple[str, int]:
    """Add a child: their IRO, their first review from the timetable, and their number if given."""
    form = NewChildForm()
    picks_iro = current_user.role != "iro"
    iros = authority_iros(current_user.authority_id) if picks_iro else []
    form.iro_id.choices = [SelectChoice(0, "Choose an IRO")] + [
        SelectChoice(s.id, s.display_name) for s in iros
    ]
    if request.method == "GET":
        return render_template("inbox/child_new.html", form=form, picks_iro=picks_iro)
    today = uk_today()
    valid = form.validate_on_submit()
    phone = form.check(today)
    iro: StaffUser | None = current_user if not picks_iro else None
    if picks_iro:
        iro = next((s for s in iros if s.id == form.iro_id.data), None)
        if iro is None:
            form.iro_id.errors = [*form.iro_id.errors, "Choose the child's IRO."]
    if not valid or form.errors or iro is None:
        return render_template("inbox/child_new.html", form=form, picks_iro=picks_iro), 400
    born, since = form.date_of_birth.data, form.looked_after_since.data
    child = Child(
        authority_id=current_user.authority_id,
        first_name=form.first_name.data.strip(),
        date_of_birth=born,
        age=_age(born, today),
        locale=form.locale.data,
        looked_after_since=since,
        time_zone=form.time_zone.data.strip(),
    )
    db.session.add(child)
    if phone:
        ChannelIdentity.link(child, "sms", phone)
    try:
        db.session.flush()
    except IntegrityError:
        # The same number was linked by someone else a moment ago.
        db.session.rollback()
        form.phone.errors = [IN_USE]
        return render_template("inbox/child_new.html", form=form, picks_iro=picks_iro), 400
    db.session.add(IroAssignment(child_id=child.id, iro_id=iro.id, started_at=utcnow()))
    proposal = propose_next(since, [], current_user.authority.nation, today)
    assert proposal is not None  # a date looked after is required
    db.session.add(Review(child_id=child.id, scheduled_for=proposal.proposed, kind="first"))
    audit(
        db.session,
        current_user,
        "added child",
        child.id,
        f"IRO staff #{iro.id}; first review {proposal.proposed:%Y-%m-%d}; SMS {'yes' if phone else 'no'}",
    )
    db.session.commit()
    flash(
        f"Added. Their first review is proposed for {proposal.proposed:%-d %B %Y} (due by "
        f"{proposal.due_by:%-d %B %Y}); change it below if needed."
    )
    if proposal.overdue:
        flash("The timetable date for their first review has already passed: book it as soon as you can.")
    return redirect(url_for("inbox.child_settings", child_id=child.id))


# -- the settings page -----------------------------------------------------------------------


def _reviews(child: Child) -> list[Review]:
    return list(
        db.session.scalars(select(Review).where(Review.child_id == child.id).order_by(Review.scheduled_for))
    )


def _held(reviews: list[Review]) -> tuple[list[date], str | None]:
    """The dates of the reviews held (``reviews`` is in date order) and the kind of the latest."""
    held = [r for r in reviews if r.status == "held"]
    return [r.scheduled_for for r in held], (held[-1].kind if held else None)


def _proposal(child: Child, reviews: list[Review], today: date) -> Proposal | None:
    held, last_kind = _held(reviews)
    return propose_next(child.looked_after_since, held, child.authority.nation, today, last_kind)


def _booked(reviews: list[Review], today: date) -> list[Review]:
    """The statutory (not early) reviews booked from today on, soonest first."""
    return [r for r in reviews if r.status == "scheduled" and r.kind != "early" and r.scheduled_for >= today]


def _page(child: Child, status: int = 200, **extra: Any) -> tuple[str, int]:
    """The settings page for a child (``errors`` by section, and a fresh link code if one was issued)."""
    today = uk_today()
    reviews = _reviews(child)
    held, last_kind = _held(reviews)
    plan = timetable(child.looked_after_since, held, child.authority.nation, today, last_kind=last_kind)
    upcoming = _booked(reviews, today)
    identities = sorted(child.identities, key=lambda i: (i.linked_at, i.id))
    context: dict[str, Any] = {
        "child": child,
        "reviews": reviews,
        "proposal": plan[0] if plan else None,
        "later": plan[1:],
        "upcoming": upcoming[0] if upcoming else None,
        "today": today,
        "identities": identities,
        "display_phone": display_phone,
        "iros": authority_iros(child.authority_id) if current_user.is_manager else [],
        "telegram_on": telegram.enabled(current_app.config),
        "errors": {},
        "values": {},
        **extra,
    }
    return render_template("inbox/child_settings.html", **context), status


@bp.get("/children/<int:child_id>/settings")
@roles_required(*CHILD_DATA_ROLES)
def child_settings(child_id: int) -> tuple[str, int]:
    """A child's details, IRO, review dates and linked channels."""
    child = child_for_staff(db.session, current_user, child_id, "child settings")
    db.session.commit()
    return _page(child)


def _back(child: Child) -> Response:
    return redirect(url_for("inbox.child_settings", child_id=child.id))


def _date(raw: str | None) -> date | None:
    try:
        return date.fromisoformat((raw or "").strip())
    except ValueError:
        return None


# -- changing the IRO ------------------------------------------------------------------------


def _introduction_text(child: Child) -> str:
    """The discreet "news" text in the child's language; no variables, so no name can slip in."""
    messages = library().messages
    reply = Reply(messages.context(INTRODUCTION), messages.texts[INTRODUCTION])
    return render_for_child(reply, child.locale, {})


def _send_after(child: Child, now: datetime) -> datetime:
    """Now, or 08:00 in the child's time zone if it is quiet hours there (as naive UTC)."""
    local = local_time(now, child.time_zone)
    if not is_quiet(local):
        return now
    day = local.date() if local.time() < QUIET_UNTIL else local.date() + timedelta(days=1)
    morning = datetime.combine(day, QUIET_UNTIL, tzinfo=time_zone(child.time_zone))
    return morning.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def _ready_for_reply_one(child: Child, now: datetime) -> None:
    """Make "1" mean "who is my IRO" next: a child midway through something is paused there
    (as if they had said LATER; CARRY ON resumes it), so their next "1" reaches the main menu."""
    row = db.session.scalar(
        select(ConversationState).where(ConversationState.child_id == child.id).with_for_update()
    )
    if row is None or not row.data.get("node"):
        return
    entry = library().flows[library().entry]
    if row.data.get("flow") == entry.id and row.data.get("node") == entry.start:
        return
    row.data = pause(row.data)  # as if the child had said LATER
    row.paused_at = now


def _introduce(child: Child, now: datetime) -> str:
    """Queue the introduction on the child's newest channel that has not opted out; says what happened."""
    identity = reply_channel(db.session, child.id)
    if identity is None:
        return "not sent: no channel" if not child.identities else "not sent: opted out"
    message = queue_message(db.session, child.id, identity, _introduction_text(child), now)
    db.session.flush()
    when = _send_after(child, now)
    if when != now:
        outbox = db.session.scalar(select(OutboxMessage).where(OutboxMessage.message_id == message.id))
        assert outbox is not None
        outbox.next_attempt_at = when
    _ready_for_reply_one(child, now)
    return f"introduction queued ({identity.channel})"


@bp.post("/children/<int:child_id>/iro")
@roles_required("iro_manager", "admin")
def change_iro(child_id: int) -> Response | tuple[str, int]:
    """Give the child a new IRO: open concerns follow the child, and the child is told discreetly."""
    child = child_for_staff(db.session, current_user, child_id, "change IRO")
    new_id = request.form.get("iro_id", type=int)
    new = next((s for s in authority_iros(child.authority_id) if s.id == new_id), None)
    old = child.current_iro
    if new is None:
        return _page(child, 400, errors={"iro": "Choose an IRO of this authority."})
    if old is not None and old.id == new.id:
        return _page(child, 400, errors={"iro": f"{new.display_name} is already their IRO."})
    now = utcnow()
    for assignment in child.assignments:
        if assignment.ended_at is None:
            assignment.ended_at = now
    db.session.add(IroAssignment(child_id=child.id, iro_id=new.id, started_at=now))
    moved = 0
    if old is not None:
        moved = db.session.execute(
            update(Concern)
            .where(
                Concern.child_id == child.id,
                Concern.status == "open",
                Concern.assigned_to_id == old.id,
            )
            .values(assigned_to_id=None)
        ).rowcount
    db.session.flush()
    db.session.expire(child, ["assignments"])
    sent = _introduce(child, now)
    audit(
        db.session,
        current_user,
        "changed IRO",
        child.id,
        f"from staff #{old.id if old else '-'} to staff #{new.id}; {moved} open concern(s) moved; {sent}",
    )
    db.session.commit()
    flash(f"{new.display_name} is now {child.first_name}'s IRO. {moved} open concern(s) moved with them.")
    if sent.startswith("introduction"):
        flash(f"{child.first_name} has been sent a short text; replying 1 shows them who their IRO is.")
    else:
        flash(f"{child.first_name} was not sent a text ({sent.removeprefix('not sent: ')}).")
    return _back(child)


# -- review dates ----------------------------------------------------------------------------


@bp.post("/children/<int:child_id>/reviews")
@roles_required(*CHILD_DATA_ROLES)
def schedule_review(child_id: int) -> Response | tuple[str, int]:
    """Schedule the next statutory review (default: the timetable's date) or book an early one."""
    child = child_for_staff(db.session, current_user, child_id, "schedule review")
    early = request.form.get("kind") == "early"
    section = "early" if early else "next"
    today = uk_today()
    day = _date(request.form.get("when"))
    values = {section: request.form.get("when", "")}
    if day is None:
        return _page(child, 400, errors={section: "Enter a date."}, values=values)
    if day < today:
        return _page(child, 400, errors={section: "A review date cannot be in the past."}, values=values)
    reviews = _reviews(child)
    proposal = _proposal(child, reviews, today)
    nation = child.authority.nation
    booked = _booked(reviews, today)
    if early:
        problem = early_review_problem(day, today, proposal, booked[0].scheduled_for if booked else None)
        if problem:
            return _page(child, 400, errors={section: problem}, values=values)
        kind, notes = "early", date_notes(day, nation, None)
    else:
        if booked:
            error = (
                f"The next review is already booked for {booked[0].scheduled_for:%-d %B %Y}. Move it instead."
            )
            return _page(child, 400, errors={section: error}, values=values)
        kind, notes = (proposal.kind if proposal else "regular"), date_notes(day, nation, proposal)
    review = Review(child_id=child.id, scheduled_for=day, kind=kind, status="scheduled")
    db.session.add(review)
    db.session.flush()
    audit(
        db.session, current_user, "scheduled review", child.id, f"review #{review.id}: {kind}, {day:%Y-%m-%d}"
    )
    db.session.commit()
    flash(f"{'Early' if early else kind.capitalize()} review booked for {day:%A %-d %B %Y}.")
    for note in notes:
        flash(f"Note: {note}")
    return _back(child)


@bp.post("/children/<int:child_id>/reviews/<int:review_id>")
@roles_required(*CHILD_DATA_ROLES)
def move_review(child_id: int, review_id: int) -> Response | tuple[str, int]:
    """Move a scheduled review to another date (an early review must stay sooner than the timetable)."""
    child = child_for_staff(db.session, current_user, child_id, "move review")
    review = db.session.get(Review, review_id)
    if review is None or review.child_id != child.id:
        abort(404)
    section = f"move-{review.id}"
    values = {section: request.form.get("when", "")}
    if review.status != "scheduled":
        return _page(child, 400, errors={section: "Only a scheduled review can be moved."}, values=values)
    today = uk_today()
    day = _date(request.form.get("when"))
    if day is None:
        return _page(child, 400, errors={section: "Enter a date."}, values=values)
    if day < today:
        return _page(child, 400, errors={section: "A review date cannot be in the past."}, values=values)
    reviews = _reviews(child)
    proposal = _proposal(child, reviews, today)
    if review.kind == "early":
        booked = _booked(reviews, today)
        problem = early_review_problem(day, today, proposal, booked[0].scheduled_for if booked else None)
        if problem:
            return _page(child, 400, errors={section: problem}, values=values)
        notes = date_notes(day, child.authority.nation, None)
    else:
        notes = date_notes(day, child.authority.nation, proposal)
    before = review.scheduled_for
    review.scheduled_for = day
    audit(
        db.session,
        current_user,
        "moved review",
        child.id,
        f"review #{review.id} ({review.kind}) from {before:%Y-%m-%d} to {day:%Y-%m-%d}",
    )
    db.session.commit()
    flash(f"Review moved from {before:%-d %B %Y} to {day:%A %-d %B %Y}.")
    for note in notes:
        flash(f"Note: {note}")
    return _back(child)


# -- channels --------------------------------------------------------------------------------


@bp.post("/children/<int:child_id>/sms")
@roles_required(*CHILD_DATA_ROLES)
def link_sms(child_id: int) -> Response | tuple[str, int]:
    """Link a UK mobile number to the child, so texts from it reach their conversation."""
    child = child_for_staff(db.session, current_user, child_id, "link SMS number")
    raw = request.form.get("phone", "")
    values = {"sms": raw}
    number = uk_mobile(raw)
    if number is None:
        return _page(child, 400, errors={"sms": BAD_NUMBER}, values=values)
    existing = ChannelIdentity.find(db.session, "sms", number)
    if existing is not None:
        error = "That number is already linked to this child." if existing.child_id == child.id else IN_USE
        return _page(child, 400, errors={"sms": error}, values=values)
    identity = ChannelIdentity.link(child, "sms", number)
    identity.linked_at = utcnow()
    audit(db.session, current_user, "linked SMS number", child.id, f"ending {number[-3:]}")
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        child = db.session.get(Child, child_id)
        return _page(child, 400, errors={"sms": IN_USE}, values=values)
    flash(f"{display_phone(number)} is linked: texts from it now reach {child.first_name}'s conversation.")
    return _back(child)


@bp.post("/children/<int:child_id>/telegram-code")
@roles_required(*CHILD_DATA_ROLES)
def telegram_code(child_id: int) -> tuple[str, int, dict[str, str]]:
    """Issue a one-time Telegram link code, shown once on this page with its t.me link and QR code."""
    child = child_for_staff(db.session, current_user, child_id, "issue Telegram code")
    now = utcnow()
    code = issue_code(db.session, child, current_user, now)
    db.session.commit()
    issued: dict[str, Any] = {"code": code, "expires": now + CODE_LIFETIME, "link": None, "qr": None}
    if telegram.enabled(current_app.config):
        try:
            link = deep_link(telegram.bot_username(current_app), code)
        except Exception:  # the Bot API could not be reached: the code still works with /start
            current_app.logger.exception("could not ask Telegram for the bot's username")
            issued["unreachable"] = True
        else:
            issued.update(link=link, qr=qr_svg(link))
    page, status = _page(child, issued=issued)
    # Shown once: never cached, and not kept in the session.
    return page, status, {"Cache-Control": "no-store"}
