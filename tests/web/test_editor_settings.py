"""Flows and settings pages for participation workers and admins, through the test client with the
real sign-in form: the flows overview, who may open it, changing the authority's settings (audited,
reaching a child's reply), refusing bad input, and the triage box that stores nothing."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.conversations import InboundMessage, handle
from app.extensions import db
from app.models import AuditEvent, Authority, Concern, Message, StaffUser

from .staff import ALEX, GRACE, PRIYA, SAM, csrf_token, sign_in

JORDAN = "+447700900001"


def signed_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    response = sign_in(client, email)
    assert response.status_code == 302, response.status_code
    return client


def authority() -> Authority:
    db.session.expire_all()
    return db.session.scalar(select(Authority))


def current_form(client: FlaskClient) -> dict[str, object]:
    """The settings form as the page shows it, ready to post back unchanged."""
    page = client.get("/flows/settings").text
    data: dict[str, object] = {"csrf_token": csrf_token(client, "/flows/settings")}
    for name, value in re.findall(r'<input[^>]*name="([a-z_]+)"[^>]*value="([^"]*)"', page):
        if name not in ("csrf_token", "office_days"):
            data[name] = value.replace("&#39;", "'").replace("&amp;", "&")
    data["office_days"] = re.findall(r'name="office_days" value="(\d)" checked', page)
    return data


def save(client: FlaskClient, **changes: object):  # type: ignore[no-untyped-def]
    return client.post("/flows/settings", data={**current_form(client), **changes})


def child_replies(text: str) -> str:
    outcome = handle(InboundMessage(channel="sms", sender=JORDAN, text=text))
    return "\n".join(outcome.replies)


def test_a_participation_worker_signs_in_to_the_flows_overview_with_coverage(demo: Flask) -> None:
    client = demo.test_client()
    response = sign_in(client, SAM)
    assert response.location.endswith("/flows")
    page = client.get("/flows")
    assert page.status_code == 200
    text = page.text
    # Each flow says which version children get: the shipped file until a version is published.
    assert "The shipped file" in text and "flows/wishes.yaml" in text
    # Every flow in the running library, with its title, steps and Welsh coverage.
    library = demo.extensions["reviewline.content"].shipped.library
    catalogs = demo.extensions["reviewline.content"].shipped.catalogs
    for flow in library.flows.values():
        row = re.search(rf'<tr data-flow="{flow.id}">(.*?)</tr>', text, re.S)
        assert row, f"{flow.id} is not listed"
        assert flow.title in row.group(1)
        assert f"<td>{len(flow.nodes)}</td>" in row.group(1)
        refs = [(m.context, m.text) for m in flow.messages()]
        coverage = catalogs.coverage("cy", refs)
        assert f"{coverage.translated} of {coverage.total} translated" in row.group(1)
    assert "Cymraeg" in text
    assert "Problems found by the checks" in text
    assert 'href="/flows"' in text, "the Flows link is in the navigation"
    assert "Jordan" not in text and "Caseload" not in text


@pytest.mark.parametrize("who", [PRIYA, GRACE])
def test_iros_and_managers_may_not_open_the_flow_pages(demo: Flask, who: str) -> None:
    client = signed_in(demo, who)
    assert 'href="/flows"' not in client.get("/inbox/").text
    for path in ("/flows", "/flows/settings"):
        assert client.get(path).status_code == 403
    token = csrf_token(client, "/account")
    before = authority().reply_time
    response = client.post("/flows/settings", data={"csrf_token": token, "reply_time_en": "never"})
    assert response.status_code == 403
    response = client.post("/flows/settings/triage", data={"csrf_token": token, "text": "hello"})
    assert response.status_code == 403
    assert authority().reply_time == before


def test_signed_out_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/flows/settings")
    assert response.status_code == 302 and "/login" in response.location


@pytest.mark.parametrize("who", [SAM, ALEX])
def test_a_settings_change_is_audited_and_reaches_a_childs_reply(demo: Flask, who: str) -> None:
    assert "within two working days" in child_replies("who is my IRO")
    client = signed_in(demo, who)
    page = client.get("/flows/settings").text
    assert 'value="01632 960999"' in page and 'value="14, 7"' in page
    response = save(
        client,
        role_title_en="Reviewing Officer",
        reply_time_en="three working days",
        reply_time_cy="tri diwrnod gwaith",
        out_of_hours_phone="+441632960123",
        reminder_days="7 , 21,14",
        office_days=["0", "1", "2", "3"],
        office_closes_at="16:30",
    )
    assert response.status_code == 302
    assert "Settings saved" in client.get(response.location).text
    saved = authority()
    assert saved.reply_time == {"en": "three working days", "cy": "tri diwrnod gwaith"}
    assert saved.role_title["en"] == "Reviewing Officer"
    assert saved.role_title["cy"] == "Swyddog Adolygu Annibynnol"
    assert saved.out_of_hours_phone == "01632 960123"
    assert saved.reminder_days == [21, 14, 7]
    assert saved.office_days == [0, 1, 2, 3]
    assert saved.office_closes_at == "16:30"
    page = client.get("/flows/settings").text
    assert 'value="21, 14, 7"' in page and 'value="01632 960123"' in page

    staff = db.session.scalar(select(StaffUser).where(StaffUser.email == who))
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "changed settings").order_by(AuditEvent.id.desc())
    )
    assert event is not None and event.staff_id == staff.id
    for name in (
        "role_title (en)",
        "reply_time (en)",
        "reply_time (cy)",
        "out_of_hours_phone",
        "reminder_days",
    ):
        assert name in event.detail
    assert "role_short" not in event.detail

    child_replies("menu")
    replies = child_replies("who is my IRO")
    assert "Your Reviewing Officer (IRO) is Priya Shah." in replies
    assert "within three working days" in replies
    assert "two working days" not in replies


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"out_of_hours_phone": "12345"}, "Enter a UK phone number"),
        ({"out_of_hours_phone": "+33 1 42 68 53 00"}, "Enter a UK phone number"),
        ({"office_opens_at": "17:00", "office_closes_at": "09:00"}, "The office must close after it opens"),
        ({"office_opens_at": "9am"}, "Enter a time as HH:MM"),
        ({"reminder_days": "14, 0"}, "0 is not between 1 and 60 days"),
        ({"reminder_days": "30, 21, 14, 7, 1"}, "at most 4 reminder days"),
        ({"reminder_days": "two"}, "is not a whole number"),
        ({"reply_time_en": "two working days \u2013 promise"}, "These characters cost more by SMS"),
        ({"role_title_en": "Independent Reviewing Officer \U0001f600"}, "These characters cost more by SMS"),
        ({"role_title_en": ""}, "This field is required"),
        ({"office_days": []}, "Tick at least one office day"),
    ],
)
def test_invalid_settings_are_refused_and_nothing_changes(
    demo: Flask, changes: dict[str, object], message: str
) -> None:
    client = signed_in(demo, SAM)
    before = authority()
    snapshot = {c.name: getattr(before, c.name) for c in Authority.__table__.columns}
    audits = db.session.scalar(select(func.count()).select_from(AuditEvent))
    response = save(client, reply_time_cy="tri diwrnod gwaith", **changes)
    assert response.status_code == 200
    assert message in response.text
    assert 'role="alert"' in response.text
    after = authority()
    assert {c.name: getattr(after, c.name) for c in Authority.__table__.columns} == snapshot
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == audits


def test_welsh_wording_may_use_welsh_letters(demo: Flask) -> None:
    client = signed_in(demo, SAM)
    response = save(client, reply_time_cy="dau ddiwrnod gwaith, ŵyr")
    assert response.status_code == 302
    assert authority().reply_time["cy"] == "dau ddiwrnod gwaith, ŵyr"


def count_rows() -> tuple[int, int, int]:
    return (
        db.session.scalar(select(func.count()).select_from(Message)),
        db.session.scalar(select(func.count()).select_from(Concern)),
        db.session.scalar(select(func.count()).select_from(AuditEvent)),
    )


def test_the_triage_box_says_urgent_or_not_and_stores_nothing(demo: Flask) -> None:
    client = signed_in(demo, SAM)
    page = client.get("/flows/settings").text
    assert "Would this be triaged as urgent?" in page
    assert "flows/safeguarding/en.yaml" in page and "flows/safeguarding/cy.yaml" in page

    before = count_rows()
    token = csrf_token(client, "/flows/settings")
    urgent = client.post(
        "/flows/settings/triage", data={"csrf_token": token, "text": "i want to kill myself"}
    )
    assert urgent.status_code == 200
    verdict = re.search(r'<div class="verdict".*?</div>', urgent.text, re.S).group(0)
    assert "Urgent" in verdict and "suicide" in verdict
    calm = client.post("/flows/settings/triage", data={"csrf_token": token, "text": "i like football"})
    verdict = re.search(r'<div class="verdict".*?</div>', calm.text, re.S).group(0)
    assert "Not urgent" in verdict and "suicide" not in verdict
    assert count_rows() == before
    logged = " ".join(db.session.scalars(select(AuditEvent.detail)))
    assert "kill myself" not in logged and "football" not in logged
