"""The IRO inbox in real Chromium: sign in, a child's urgent message arriving live, a reply reaching
the SMS provider, children's text shown as text, and axe-core accessibility checks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_playwright_python.base import AXE_SCRIPT
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.conversations import InboundMessage, handle
from app.delivery import deliver_due, twilio_sender
from app.extensions import db
from app.models import ChannelIdentity, Review
from tests.browser.conftest import start_live_app
from tests.fakes.twilio_server import FakeTwilio

pytestmark = pytest.mark.browser

JORDAN = "+447700900001"
PASSWORD = "demo-password-1"


@pytest.fixture
def inbox(tmp_path: Path, fake_twilio: FakeTwilio) -> Iterator[tuple[str, Flask]]:
    url, app, stop = start_live_app(tmp_path, **fake_twilio.settings())
    try:
        yield url, app
    finally:
        stop()


def child_says(app: Flask, text: str, sender: str = JORDAN) -> None:
    """A child texts the service (as the SMS webhook would hand it over)."""
    with app.app_context():
        handle(InboundMessage(channel="sms", sender=sender, text=text))
        db.session.remove()


def jordan_id(app: Flask) -> int:
    with app.app_context():
        child_id = ChannelIdentity.find(db.session, "sms", JORDAN).child_id
        db.session.remove()
        return child_id


def sign_in(page: Page, url: str, email: str = "priya.shah@demo.invalid") -> None:
    page.goto(f"{url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Caseload")).to_be_visible()


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    page.evaluate(AXE_SCRIPT)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_an_urgent_message_appears_without_a_reload_and_the_reply_reaches_the_sms_provider(
    page: Page, inbox: tuple[str, Flask], fake_twilio: FakeTwilio
) -> None:
    url, app = inbox
    sign_in(page, url)
    page.get_by_role("link", name="Jordan").click()
    expect(page.get_by_role("heading", name="Jordan", level=1)).to_be_visible()
    page.evaluate("window.notReloaded = true")

    child_says(app, "my step dad hit me again and I am scared to go home")
    thread = page.locator("#thread")
    expect(thread).to_contain_text("I am scared to go home", timeout=15_000)
    expect(thread.locator("li", has_text="scared to go home").locator(".tag.urgent")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True, "the page was not reloaded"

    page.get_by_label("Your reply").fill("I have read your message. I am calling you now.")
    page.get_by_role("button", name="Queue reply").click()
    expect(page.locator("#thread")).to_contain_text("I am calling you now")
    with app.app_context():
        deliver_due(db.session, {"sms": twilio_sender(app)})
        db.session.remove()
    assert [(m["To"], m["Body"]) for m in fake_twilio.messages] == [
        (JORDAN, "I have read your message. I am calling you now.")
    ]


def test_the_urgent_queue_updates_without_a_reload(page: Page, inbox: tuple[str, Flask]) -> None:
    url, app = inbox
    sign_in(page, url)
    page.get_by_role("link", name="Urgent").click()
    expect(page.get_by_role("heading", name="Urgent concerns")).to_be_visible()
    child_says(app, "i want to kill myself")
    expect(page.locator("main")).to_contain_text("Jordan", timeout=15_000)


def test_a_childs_html_is_shown_as_text_and_runs_nothing(page: Page, inbox: tuple[str, Flask]) -> None:
    url, app = inbox
    attack = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"> <b>bold</b>'
    child_says(app, attack)
    sign_in(page, url)
    page.goto(f"{url}/inbox/children/{jordan_id(app)}")
    expect(page.locator("#thread")).to_contain_text("<script>window.pwned = 1</script>")
    child_says(app, attack.replace("1", "3"))  # and once more, arriving through the live update
    expect(page.locator("#thread")).to_contain_text("window.pwned = 3", timeout=15_000)
    assert page.evaluate("window.pwned") is None
    assert page.locator("#thread img, #thread script, #thread b").count() == 0


def test_the_staff_pages_have_no_serious_accessibility_problems(page: Page, inbox: tuple[str, Flask]) -> None:
    url, app = inbox
    child_says(app, "I am worried about my contact with my mum")
    page.goto(f"{url}/login")
    assert serious_violations(page) == [], "sign-in page"
    sign_in(page, url)
    assert serious_violations(page) == [], "caseload"
    child_id = jordan_id(app)
    page.goto(f"{url}/inbox/children/{child_id}")
    assert serious_violations(page) == [], "thread"
    with app.app_context():
        review = db.session.scalar(
            select(Review).where(Review.child_id == child_id).order_by(Review.id.desc())
        )
        review_id = review.id
        db.session.remove()
    page.goto(f"{url}/inbox/children/{child_id}/reviews/{review_id}")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert serious_violations(page) == [], "review workspace"


def test_the_flows_and_settings_pages_have_no_serious_accessibility_problems(
    page: Page, inbox: tuple[str, Flask]
) -> None:
    url, _ = inbox
    page.goto(f"{url}/login")
    page.get_by_label("Email").fill("sam.patel@demo.invalid")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1, name="Flows")).to_be_visible()
    assert serious_violations(page) == [], "flows"
    page.goto(f"{url}/flows/settings")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Settings")
    assert serious_violations(page) == [], "settings"
    page.get_by_label("Out-of-hours phone").fill("12345")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter a UK phone number")
    assert serious_violations(page) == [], "settings with errors"
    page.get_by_label("A message a child might send").fill("i want to kill myself")
    page.get_by_role("button", name="Check this message").click()
    expect(page.locator("#verdict")).to_contain_text("Urgent")
    assert serious_violations(page) == [], "settings with a triage verdict"
