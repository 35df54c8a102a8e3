"""`flask --app app demo load`: the demo data the contract promises, loaded once however often run."""

from __future__ import annotations

from datetime import date

from flask import Flask
from sqlalchemy import func, select

from app.conversations import next_review
from app.extensions import db
from app.models import Authority, ChannelIdentity, Child, ReviewAction, StaffUser


def counts() -> dict[str, int]:
    return {
        model.__name__: db.session.scalar(select(func.count()).select_from(model))
        for model in (Authority, StaffUser, Child, ChannelIdentity, ReviewAction)
    }


def test_demo_load_twice_changes_nothing_and_prints_the_logins(app: Flask) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "load"])
    assert first.exit_code == 0 and "Demo data loaded." in first.output
    assert "priya.shah@demo.invalid" in first.output and "demo-password-1" in first.output
    before = counts()
    second = runner.invoke(args=["demo", "load"])
    assert second.exit_code == 0 and "already present; nothing changed" in second.output
    assert counts() == before


def test_the_demo_children_are_as_the_contract_says(demo: Flask) -> None:
    today = date.today()
    jordan = ChannelIdentity.find(db.session, "sms", "+447700900001").child
    assert jordan.current_iro.display_name == "Priya Shah" and jordan.locale == "en"
    assert next_review(db.session, jordan, today).scheduled_for > today
    jordans = [a for a in db.session.scalars(select(ReviewAction)) if a.review.child_id == jordan.id]
    states = {("late" if a.is_late(today) else a.status) for a in jordans}
    assert len(jordans) >= 3 and {"done", "agreed", "awaiting_manager", "late"} <= states
    cerys = ChannelIdentity.find(db.session, "sms", "+447700900002").child
    assert cerys.locale == "cy" and cerys.current_iro.display_name == "Rhys Evans"
    assert ChannelIdentity.find(db.session, "sms", "+447700900999") is None
    roles = set(db.session.scalars(select(StaffUser.role)))
    assert roles == {"iro", "iro_manager", "participation_worker", "admin"}
