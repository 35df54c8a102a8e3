"""The flow editor in real Chromium: a participation worker rewords a question, previews it and
publishes it while a child is half-way through; checks and the diagram follow what is typed; a
broken draft is refused; staff-typed HTML is shown as text; axe-core on the editor's pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import func, select

from app.conversations import InboundMessage, handle
from app.extensions import db
from app.models import ContentVersion
from tests.browser.conftest import start_live_app
from tests.browser.test_inbox_pages import serious_violations
from tests.web.staff import PASSWORD, SAM

pytestmark = pytest.mark.browser

JORDAN = "+447700900001"
AMIR = "+447700900003"
FLOW_TITLE = "My views for my review"
OLD_QUESTION = "How are things going for you at the moment?"
NEW_QUESTION = "How are you getting on at the moment?"
OLD_HOME = "How are things where you live?"
NEW_HOME = "What is it like where you live?"


@pytest.fixture
def editor(tmp_path: Path) -> Iterator[tuple[str, Flask]]:
    url, app, stop = start_live_app(tmp_path)
    try:
        yield url, app
    finally:
        stop()


def child_says(app: Flask, text: str, sender: str = JORDAN) -> str:
    """A child texts the service (as the SMS webhook would hand it over); the replies, one a line."""
    with app.app_context():
        replies = handle(InboundMessage(channel="sms", sender=sender, text=text)).replies
        db.session.remove()
    return "\n".join(replies)


def published_versions(app: Flask) -> int:
    with app.app_context():
        count = db.session.scalar(
            select(func.count()).select_from(ContentVersion).where(ContentVersion.status == "published")
        )
        db.session.remove()
    return count


def sign_in_as_sam(page: Page, url: str) -> None:
    """The participation worker signs in and lands on the flows page."""
    page.goto(f"{url}/login")
    page.get_by_label("Email").fill(SAM)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1, name="Flows")).to_be_visible()


def start_wishes_draft(page: Page) -> None:
    """From /flows: open the views flow and start a draft of it."""
    page.get_by_role("link", name=FLOW_TITLE).click()
    expect(page.get_by_role("heading", level=1, name=FLOW_TITLE)).to_be_visible()
    page.get_by_role("button", name="Make changes (start a draft)").click()
    expect(page.get_by_role("heading", level=1, name=f"Draft: {FLOW_TITLE}")).to_be_visible()


def step(page: Page, step_id: str) -> Locator:
    """A step's fieldset in the draft form."""
    return page.locator(f'#draft-form fieldset.step[data-step="{step_id}"]')


def diagram_box(page: Page, step_id: str) -> Locator:
    return page.locator(f'#diagram g.step[data-step="{step_id}"]')


def test_a_reworded_question_is_previewed_and_published_and_a_child_half_way_finishes_on_the_old_version(
    page: Page, editor: tuple[str, Flask]
) -> None:
    url, app = editor
    # Jordan starts giving views on the version in use now, and is asked the first question.
    assert OLD_QUESTION in child_says(app, "views")

    sign_in_as_sam(page, url)
    assert page.url == f"{url}/flows"
    start_wishes_draft(page)
    expect(page.locator("#check-ok")).to_be_visible()
    question = step(page, "overall").get_by_label("What the child is sent")
    expect(question).to_have_value(OLD_QUESTION)
    question.fill(NEW_QUESTION)
    # The next question is reworded too, so what Jordan is asked next shows which version he is on.
    step(page, "home").get_by_label("What the child is sent").fill(NEW_HOME)
    expect(page.locator("#dirty")).to_contain_text("Unsaved changes")
    expect(page.locator("#publish")).to_be_disabled()
    # The checks and the diagram follow the typing, before anything is saved.
    expect(diagram_box(page, "overall").locator("text.excerpt")).to_have_text(NEW_QUESTION, timeout=10_000)
    expect(diagram_box(page, "home").locator("text.excerpt")).to_have_text(NEW_HOME)
    expect(page.locator("#check-ok")).to_be_visible()
    expect(page.locator("#check-errors-box")).to_be_hidden()
    expect(page.locator("#check-errors li")).to_have_count(0)
    expect(page.locator("#diagram svg")).to_be_visible()

    page.locator("#save-draft").click()
    expect(page.get_by_text("Draft saved. It is not live until you publish it.")).to_be_visible()
    expect(step(page, "overall").get_by_label("What the child is sent")).to_have_value(NEW_QUESTION)
    # Saved, but not live: a new conversation still gets the old words.
    assert published_versions(app) == 0

    page.get_by_role("link", name="Preview", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="Preview the draft")).to_be_visible()
    page.get_by_label("Language").select_option("en")
    page.get_by_role("button", name="Start from the beginning").click()
    chat = page.locator("#preview-chat")
    expect(chat.locator("li.out", has_text=NEW_QUESTION)).to_have_count(1)
    expect(chat).not_to_contain_text(OLD_QUESTION)
    page.get_by_label("Reply as the child").fill("1")
    page.get_by_role("button", name="Send").click()
    expect(chat.locator("li.out", has_text=NEW_HOME)).to_have_count(1)
    # Previewing told no one and changed nothing children get.
    assert published_versions(app) == 0

    page.get_by_role("link", name="Back to the draft").click()
    page.get_by_label("What changed, in a few words (optional)").fill("Friendlier questions")
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_text("Version 1 is published")).to_be_visible()
    expect(page.get_by_role("heading", level=1, name=FLOW_TITLE)).to_be_visible()
    expect(page.locator('#versions tr[data-version="1"]')).to_contain_text("Friendlier questions")
    assert published_versions(app) == 1

    # Jordan was half-way through the old version and finishes on it.
    next_question = child_says(app, "1")
    assert OLD_HOME in next_question
    assert NEW_HOME not in next_question
    # A new conversation gets the new wording.
    child_says(app, "menu", sender=AMIR)
    first = child_says(app, "views", sender=AMIR)
    assert NEW_QUESTION in first
    assert OLD_QUESTION not in first


def test_a_choice_leading_nowhere_is_named_as_you_type_and_publishing_it_is_refused(
    page: Page, editor: tuple[str, Flask]
) -> None:
    url, app = editor
    sign_in_as_sam(page, url)
    start_wishes_draft(page)
    expect(page.locator("#publish")).to_be_enabled()
    expect(page.locator("#diagram .edge.missing")).to_have_count(0)

    step(page, "overall").get_by_label("Choice 1 goes to").fill("nowhere_at_all")
    errors = page.locator("#check-errors")
    expect(errors).to_contain_text("Step 'overall': leads to 'nowhere_at_all'", timeout=10_000)
    expect(page.locator("#check-errors-box")).to_be_visible()
    expect(page.locator("#check-ok")).to_be_hidden()
    expect(page.locator("#diagram .edge.missing")).not_to_have_count(0)
    expect(page.locator("#diagram .missing-step")).to_contain_text("missing: nowhere_at_all")
    expect(diagram_box(page, "overall")).to_have_class(re.compile(r"\bproblem\b"))
    # Publishing would use the last saved draft, which is not what is on the screen.
    expect(page.locator("#publish")).to_be_disabled()

    page.locator("#save-draft").click()
    expect(page.get_by_text("Draft saved.")).to_be_visible()
    expect(errors).to_contain_text("Step 'overall': leads to 'nowhere_at_all'")
    expect(page.locator("#publish")).to_be_enabled()
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_role("heading", level=1, name=f"Draft: {FLOW_TITLE}")).to_be_visible()
    expect(page.locator("#check-errors-box")).to_be_visible()
    expect(errors).to_contain_text("Step 'overall': leads to 'nowhere_at_all', which is not a step")
    expect(page.get_by_text("is published")).to_have_count(0)
    assert published_versions(app) == 0

    page.get_by_role("link", name="Back to the flow").click()
    expect(page.locator('#versions tr[data-version="1"]')).to_have_count(0)
    expect(page.locator('#versions tr[data-version="file"]')).to_contain_text("in use")
    # Children are unaffected.
    assert OLD_QUESTION in child_says(app, "views")


def test_a_step_that_only_needs_its_welsh_is_not_drawn_as_a_problem_while_the_checks_find_no_errors(
    page: Page, editor: tuple[str, Flask]
) -> None:
    url, _ = editor
    sign_in_as_sam(page, url)
    start_wishes_draft(page)
    step(page, "overall").get_by_label("What the child is sent").fill(NEW_QUESTION)
    box = diagram_box(page, "overall")
    expect(box.locator("text.excerpt")).to_have_text(NEW_QUESTION, timeout=10_000)
    expect(page.locator("#check-ok")).to_contain_text("No errors")
    expect(page.locator("#check-notes")).to_contain_text("Step 'overall': not in Welsh yet")
    # A missing translation is a note, not an error: the box should not be red with "1 problem".
    expect(
        box,
        "BUG app/editor/drafts.py check_draft: notes go into by_step, which flow_diagram draws as "
        "problems, so a step only missing its Welsh is red with '1 problem' beside 'No errors'",
    ).not_to_have_class(re.compile(r"\bproblem\b"))
    expect(box).not_to_contain_text("problem")


def test_html_typed_into_a_step_is_shown_as_text_in_the_checks_and_the_diagram_and_runs_nothing(
    page: Page, editor: tuple[str, Flask]
) -> None:
    url, _ = editor
    sign_in_as_sam(page, url)
    start_wishes_draft(page)
    script = "<script>window.pwned = 1</script>"
    image = '<img src=x onerror="window.pwned=2">'
    bad_id = "<img src=x onerror=pwned=3>"
    step(page, "overall").get_by_label("What the child is sent").fill(script)
    step(page, "home").get_by_label("What the child is sent").fill(image)
    # A step renamed to HTML is quoted by the checks and drawn as a box.
    step(page, "anything_at_all").get_by_label("Step name").fill(bad_id)

    checks = page.locator("#checks")
    expect(checks.locator("#check-errors")).to_contain_text(f"'{bad_id}'", timeout=10_000)
    diagram = page.locator("#diagram")
    expect(diagram_box(page, "overall").locator("text.excerpt")).to_have_text(script)
    expect(diagram_box(page, "home").locator("text.excerpt")).to_have_text(image)
    expect(diagram.locator("g.step text.id", has_text="<img src=x onerror=pwned")).to_have_count(1)
    assert page.evaluate("window.pwned") is None
    for where in ("#checks", "#diagram"):
        assert page.locator(f"{where} img, {where} script").count() == 0, where

    # Saved (with the step's name put back), the page drawn by the server shows the text too.
    step(page, "anything_at_all").get_by_label("Step name").fill("anything_at_all")
    page.locator("#save-draft").click()
    expect(page.get_by_text("Draft saved.")).to_be_visible()
    expect(diagram_box(page, "overall").locator("text.excerpt")).to_have_text(script)
    expect(diagram_box(page, "home").locator("text.excerpt")).to_have_text(image)
    expect(step(page, "home").get_by_label("What the child is sent")).to_have_value(image)
    assert page.evaluate("window.pwned") is None
    assert page.locator("main img, main script").count() == 0


def test_the_editor_pages_have_no_serious_accessibility_problems(
    page: Page, editor: tuple[str, Flask]
) -> None:
    url, _ = editor
    sign_in_as_sam(page, url)
    assert serious_violations(page) == [], "flows"
    page.get_by_role("link", name=FLOW_TITLE).click()
    expect(page.locator(".diagram svg")).to_be_visible()
    assert serious_violations(page) == [], "flow page"
    page.get_by_role("button", name="Make changes (start a draft)").click()
    expect(page.locator("#diagram svg")).to_be_visible()
    assert serious_violations(page) == [], "draft editor"
    step(page, "overall").get_by_label("Choice 1 goes to").fill("nowhere_at_all")
    expect(page.locator("#check-errors-box")).to_be_visible(timeout=10_000)
    assert serious_violations(page) == [], "draft editor with errors as you type"
    page.goto(f"{url}/flows/wishes/preview")
    page.get_by_role("button", name="Start from the beginning").click()
    expect(page.locator("#preview-chat li").first).to_be_visible()
    assert serious_violations(page) == [], "preview"
