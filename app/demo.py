"""Demo data: one authority, its staff, and children on Ofcom's drama numbers (never real people).

``load_demo`` is idempotent: anything already present (matched by authority name, staff email, or
the child's phone number) is left alone. Dates are relative to the day of the first load.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from app.models import (
    Authority,
    CannedReply,
    ChannelIdentity,
    Child,
    IroAssignment,
    Review,
    ReviewAction,
    StaffUser,
)

AUTHORITY_NAME = "Demo Council"
DEMO_PASSWORD = "demo-password-1"

STAFF = [
    {
        "email": "priya.shah@demo.invalid",
        "name": "Priya Shah",
        "role": "iro",
        "phone": "+447700900101",
    },
    {
        "email": "rhys.evans@demo.invalid",
        "name": "Rhys Evans",
        "role": "iro",
        "phone": "+447700900102",
    },
    {
        "email": "grace.okafor@demo.invalid",
        "name": "Grace Okafor",
        "role": "iro_manager",
        "phone": "",
    },
    {
        "email": "sam.patel@demo.invalid",
        "name": "Sam Patel",
        "role": "participation_worker",
        "phone": "",
    },
    {"email": "alex.morgan@demo.invalid", "name": "Alex Morgan", "role": "admin", "phone": ""},
]

# Saved replies staff can pick in a thread (and edit) before sending: plain, kind, honest, GSM-7.
# They promise only what the member of staff who picks one can do.
CANNED_REPLIES = [
    (
        "Thank you, I have read it",
        "Thank you for your message. I have read it and I will reply to you properly soon. "
        "If you are in danger now, call 999.",
    ),
    (
        "I will call you this week",
        "Thank you for your message. I will call you this week to talk about it. "
        "If there is a time that is not good for you, text me back.",
    ),
    (
        "I need to tell your social worker",
        "Thank you for telling me. I need to talk to your social worker about this, "
        "so we can work out what to do. I will tell you what happens next.",
    ),
]

CHILDREN = [
    # phone, first name, locale, age, IRO email, days until next review (None: not set), actions
    {
        "phone": "+447700900001",
        "name": "Jordan",
        "locale": "en",
        "age": 13,
        "iro": "priya.shah@demo.invalid",
        "next_review_in": 24,
        "in_care_days": 400,
        "actions": [
            ("Start swimming lessons on Saturdays", "your carer", -60, "done"),
            ("Arrange more time with your brother", "your social worker", 30, "agreed"),
            ("Get you a laptop for school work", "your social worker", -14, "agreed"),
            (
                "Check if you can stay at the same school",
                "the school and your social worker",
                10,
                "awaiting_manager",
            ),
        ],
    },
    {
        "phone": "+447700900002",
        "name": "Cerys",
        "locale": "cy",
        "age": 11,
        "iro": "rhys.evans@demo.invalid",
        "next_review_in": 40,
        "in_care_days": 250,
        "actions": [
            ("Find a Welsh-speaking counsellor", "your social worker", 20, "agreed"),
            ("Visit your nan every month", "your carer", -30, "done"),
            ("Join a drama club near home", "your carer", -7, "agreed"),
        ],
    },
    {
        "phone": "+447700900003",
        "name": "Amir",
        "locale": "en",
        "age": 16,
        "iro": "priya.shah@demo.invalid",
        "next_review_in": None,
        "in_care_days": 30,
        "actions": [],
    },
]


def _authority(session: Session) -> tuple[Authority, bool]:
    authority = session.scalar(select(Authority).where(Authority.name == AUTHORITY_NAME))
    if authority:
        return authority, False
    authority = Authority(
        name=AUTHORITY_NAME,
        nation="england",
        role_title={"en": "Independent Reviewing Officer", "cy": "Swyddog Adolygu Annibynnol"},
        role_short={"en": "IRO", "cy": "SAA"},
        reply_time={"en": "two working days", "cy": "dau ddiwrnod gwaith"},
        reply_working_days=2,
        out_of_hours_phone="01632 960999",
        advocacy_contact="Demo Advocacy Service, 01632 960500",
    )
    session.add(authority)
    session.flush()
    return authority, True


def load_demo(session: Session, today: date | None = None) -> bool:
    """Add whatever demo data is missing; True if anything was added. Never commits."""
    today = today or date.today()
    authority, created = _authority(session)
    staff: dict[str, StaffUser] = {}
    for person in STAFF:
        user = session.scalar(select(StaffUser).where(StaffUser.email == person["email"]))
        if user is None:
            user = StaffUser(
                authority_id=authority.id,
                email=person["email"],
                display_name=person["name"],
                role=person["role"],
                password_hash=generate_password_hash(DEMO_PASSWORD),
                contact_phone=person["phone"],
            )
            session.add(user)
            created = True
        staff[person["email"]] = user
    session.flush()

    titles = set(session.scalars(select(CannedReply.title).where(CannedReply.authority_id == authority.id)))
    for title, body in CANNED_REPLIES:
        if title not in titles:
            session.add(CannedReply(authority_id=authority.id, title=title, body=body))
            created = True

    for spec in CHILDREN:
        if ChannelIdentity.find(session, "sms", spec["phone"]):
            continue
        created = True
        child = Child(
            authority_id=authority.id,
            first_name=spec["name"],
            locale=spec["locale"],
            age=spec["age"],
            looked_after_since=today - timedelta(days=spec["in_care_days"]),
        )
        session.add(child)
        ChannelIdentity.link(child, "sms", spec["phone"])
        session.flush()
        session.add(IroAssignment(child_id=child.id, iro_id=staff[spec["iro"]].id))
        if spec["actions"]:
            last = Review(
                child_id=child.id,
                scheduled_for=today - timedelta(days=150),
                kind="regular",
                status="held",
            )
            session.add(last)
            session.flush()
            for description, owner, due_in, status in spec["actions"]:
                session.add(
                    ReviewAction(
                        review_id=last.id,
                        description=description,
                        owner=owner,
                        due_on=today + timedelta(days=due_in),
                        status=status,
                        completed_on=today + timedelta(days=due_in) if status == "done" else None,
                    )
                )
        if spec["next_review_in"] is not None:
            session.add(
                Review(
                    child_id=child.id,
                    scheduled_for=today + timedelta(days=spec["next_review_in"]),
                    kind="regular",
                )
            )
    session.flush()
    return created
