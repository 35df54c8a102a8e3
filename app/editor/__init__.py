"""Flows and settings for participation workers and admins (issue 6, first slice).

``/flows`` lists every flow in the running library with its translation coverage and the problems
``flask --app app flows check`` reports; editing flows in the browser is not built yet (flows are
the YAML files in ``flows/``). ``/flows/settings`` changes the authority's settings that children
see in their replies (role title, reply time, office hours...), every save audited, and has a box
that says whether a message would be triaged as urgent without storing it anywhere.
No view here reads any child's data: IROs and managers get 403.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import phonenumbers
from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import Field, IntegerField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, ValidationError

from app import content
from app.access import audit, roles_required
from app.auth import staff_error_pages
from app.engine.definition import Library
from app.engine.sms import non_gsm7_characters
from app.engine.triage import Triage, assess
from app.extensions import db
from app.flow_report import check
from app.i18n import SOURCE_LOCALE, Catalogs, Coverage, staff_language_name
from app.models import Authority
from app.models.flows import FLOW
from app.phones import display_phone, normalise_phone
from app.translations import coverage as translation_coverage

bp = Blueprint("editor", __name__, url_prefix="/flows", template_folder="templates")
staff_error_pages(bp)

EDITOR_ROLES = ("participation_worker", "admin")
WORDING_FIELDS = {
    "role_title": "Role title",
    "role_short": "Short role title",
    "reply_time": "Promised reply time",
}
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
MAX_REMINDERS = 4
BAD_PHONE = "Enter a UK phone number, like 01632 960999."


def _library() -> Library:
    return content.current(db.session)[0]


def _catalogs() -> Catalogs:
    return content.current(db.session)[1]


def parse_reminder_days(text: str) -> list[int]:
    """'14, 7' as [14, 7]: whole numbers 1-60, at most four, largest first (ValueError says why)."""
    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
    if not parts:
        raise ValueError("Enter at least one number of days, like 14, 7.")
    days: set[int] = set()
    for part in parts:
        if not part.isdigit():
            raise ValueError(f"'{part}' is not a whole number of days.")
        value = int(part)
        if not 1 <= value <= 60:
            raise ValueError(f"{value} is not between 1 and 60 days.")
        days.add(value)
    if len(days) > MAX_REMINDERS:
        raise ValueError(f"Give at most {MAX_REMINDERS} reminder days.")
    return sorted(days, reverse=True)


def _gsm7(form: FlaskForm, field: Field) -> None:
    """English text sent by SMS must stay in the basic SMS alphabet (one segment holds 160)."""
    odd = non_gsm7_characters(field.data or "")
    if odd:
        shown = " ".join(f"'{ch}'" for ch in odd)
        raise ValidationError(
            f"These characters cost more by SMS: {shown}. Use plain letters and straight quotes."
        )


def _time(form: FlaskForm, field: Field) -> None:
    if not TIME.match((field.data or "").strip()):
        raise ValidationError("Enter a time as HH:MM, like 09:00.")


def uk_phone(raw: str) -> str | None:
    """A UK phone number in E.164, or None: a full-length UK number (including the 01632 and
    07700 900 ranges kept for drama and examples) or any number the numbering plan knows."""
    e164 = normalise_phone(raw)
    if e164 is None or not e164.startswith("+44"):
        return None
    full_length = len(e164) - 3 in (9, 10)
    return e164 if full_length or phonenumbers.is_valid_number(phonenumbers.parse(e164)) else None


def _phone(form: FlaskForm, field: Field) -> None:
    if uk_phone(field.data or "") is None:
        raise ValidationError(BAD_PHONE)


def _reminders(form: FlaskForm, field: Field) -> None:
    try:
        parse_reminder_days(field.data or "")
    except ValueError as error:
        raise ValidationError(str(error)) from None


class SettingsBase(FlaskForm):
    reply_working_days = IntegerField(
        "Reply time in working days", validators=[InputRequired(), NumberRange(1, 20)]
    )
    out_of_hours_phone = StringField("Out-of-hours phone", validators=[DataRequired(), _phone])
    office_days = SelectMultipleField(
        "Office days", choices=[SelectChoice(str(i), d) for i, d in enumerate(DAYS)], validate_choice=True
    )
    office_opens_at = StringField("Office opens at", validators=[DataRequired(), _time])
    office_closes_at = StringField("Office closes at", validators=[DataRequired(), _time])
    advocacy_contact = StringField("Advocacy service contact", validators=[Length(max=200), _gsm7])
    reminder_days = StringField("Reminder days before a review", validators=[DataRequired(), _reminders])

    def validate(self, extra_validators: Any = None) -> bool:  # type: ignore[override]
        ok = super().validate(extra_validators)
        if not self.office_days.data:
            self.office_days.errors = [*self.office_days.errors, "Tick at least one office day."]
            ok = False
        opens, closes = self.office_opens_at, self.office_closes_at
        if not opens.errors and not closes.errors and opens.data.strip() >= closes.data.strip():
            closes.errors = [*closes.errors, "The office must close after it opens."]
            ok = False
        return ok


def settings_form(locales: list[str], **kwargs: Any) -> SettingsBase:
    """The settings form with a role title, short title and reply time for every locale."""

    class SettingsForm(SettingsBase):
        pass

    for locale in locales:
        language = staff_language_name(locale)
        for name, label in WORDING_FIELDS.items():
            validators: list[Any] = [Length(max=100)]
            if locale == SOURCE_LOCALE:
                validators = [DataRequired(), *validators, _gsm7]
            setattr(
                SettingsForm, f"{name}_{locale}", StringField(f"{label} ({language})", validators=validators)
            )
    return SettingsForm(**kwargs)


class TriageForm(FlaskForm):
    text = TextAreaField("A message a child might send", validators=[DataRequired(), Length(max=1000)])


def _current_values(authority: Authority, locales: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "reply_working_days": authority.reply_working_days,
        "out_of_hours_phone": _shown_phone(authority.out_of_hours_phone),
        "office_days": [str(d) for d in authority.office_days or []],
        "office_opens_at": authority.office_opens_at,
        "office_closes_at": authority.office_closes_at,
        "advocacy_contact": authority.advocacy_contact,
        "reminder_days": ", ".join(str(d) for d in sorted(authority.reminder_days or [], reverse=True)),
    }
    for locale in locales:
        for name in WORDING_FIELDS:
            values[f"{name}_{locale}"] = (getattr(authority, name) or {}).get(locale, "")
    return values


def _shown_phone(raw: str) -> str:
    e164 = normalise_phone(raw) if raw else None
    return display_phone(e164) if e164 else raw


def _apply(form: SettingsBase, authority: Authority, locales: list[str]) -> list[str]:
    """Save the form's values on the authority; the names of the settings that changed."""
    changed: list[str] = []

    def put(name: str, old: Any, new: Any) -> None:
        if old != new:
            setattr(authority, name, new)
            changed.append(name)

    for name in WORDING_FIELDS:
        old = dict(getattr(authority, name) or {})
        new = dict(old)
        for locale in locales:
            value = (form[f"{name}_{locale}"].data or "").strip()
            if value:
                new[locale] = value
            else:
                new.pop(locale, None)
            if old.get(locale) != new.get(locale):
                changed.append(f"{name} ({locale})")
        if old != new:
            setattr(authority, name, new)
    put("reply_working_days", authority.reply_working_days, form.reply_working_days.data)
    phone = display_phone(uk_phone(form.out_of_hours_phone.data) or "")
    put("out_of_hours_phone", authority.out_of_hours_phone, phone)
    put("office_days", list(authority.office_days or []), sorted(int(d) for d in form.office_days.data))
    put("office_opens_at", authority.office_opens_at, form.office_opens_at.data.strip())
    put("office_closes_at", authority.office_closes_at, form.office_closes_at.data.strip())
    put("advocacy_contact", authority.advocacy_contact, (form.advocacy_contact.data or "").strip())
    put("reminder_days", list(authority.reminder_days or []), parse_reminder_days(form.reminder_days.data))
    return changed


@dataclass(frozen=True)
class FlowRow:
    id: str
    title: str
    description: str
    steps: int
    source: str
    coverage: list[Coverage]
    published: Any = None  # the ContentVersion in use, None while the shipped file is
    draft: Any = None


@bp.get("")
@roles_required(*EDITOR_ROLES)
def flows() -> str:
    library, catalogs = _library(), _catalogs()
    report = check(library, catalogs)
    rows = []
    messages = library.messages
    locales = [loc for loc in catalogs.locales if loc != SOURCE_LOCALE]

    def ready(flow_id: str | None) -> list[Coverage]:
        return [translation_coverage(db.session, catalogs, library, flow_id, loc) for loc in locales]

    for flow in sorted(library.flows.values(), key=lambda f: f.title.lower()):
        rows.append(
            FlowRow(
                flow.id,
                flow.title,
                flow.description,
                len(flow.nodes),
                flow.source,
                ready(flow.id),
                content.latest(db.session, FLOW, flow.id),
                content.draft(db.session, FLOW, flow.id),
            )
        )
    system = ready(None)
    return render_template(
        "editor/flows.html",
        rows=rows,
        system=system,
        system_source=messages.source,
        locales=[
            (locale, staff_language_name(locale)) for locale in catalogs.locales if locale != SOURCE_LOCALE
        ],
        problems=report.problems,
    )


def _render_settings(form: SettingsBase, triage_form: TriageForm, verdict: Triage | None = None) -> str:
    locales = _catalogs().locales
    return render_template(
        "editor/settings.html",
        form=form,
        triage_form=triage_form,
        verdict=verdict,
        wording=[
            (locale, staff_language_name(locale), [form[f"{name}_{locale}"] for name in WORDING_FIELDS])
            for locale in locales
        ],
        days=DAYS,
    )


@bp.route("/settings", methods=["GET", "POST"])
@roles_required(*EDITOR_ROLES)
def settings() -> str | Response:
    authority: Authority = current_user.authority
    locales = _catalogs().locales
    form = settings_form(locales, data=_current_values(authority, locales))
    if form.validate_on_submit():
        changed = _apply(form, authority, locales)
        if changed:
            audit(db.session, current_user, "changed settings", detail="changed: " + ", ".join(changed))
            db.session.commit()
            flash("Settings saved. Children see the new values from their next message.")
        else:
            flash("Nothing changed.")
        return redirect(url_for("editor.settings"))
    db.session.rollback()
    return _render_settings(form, TriageForm(formdata=None))


@bp.post("/settings/triage")
@roles_required(*EDITOR_ROLES)
def triage() -> str:
    """Say whether a message would be urgent; the text is never stored or logged."""
    authority: Authority = current_user.authority
    locales = _catalogs().locales
    form = settings_form(locales, formdata=None, data=_current_values(authority, locales))
    triage_form = TriageForm()
    verdict = None
    if triage_form.validate_on_submit():
        verdict = assess(triage_form.text.data, book=_library().safeguarding)
    return _render_settings(form, triage_form, verdict)


# The editor's other pages register their routes on ``bp``.
import app.editor.drafts  # noqa: E402,F401
import app.editor.phrases  # noqa: E402,F401
import app.editor.translations  # noqa: E402,F401
