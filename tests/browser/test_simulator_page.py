"""The /simulator page in real Chromium, checked the way a person using it would notice."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page, Request, expect

pytestmark = pytest.mark.browser

JORDAN = "+447700900001"
CERYS = "+447700900002"
AMIR = "+447700900003"
UNLINKED = "+447700900999"


def open_simulator(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/simulator")
    # The picker is filled from the JSON API once the page has loaded.
    expect(page.locator("#child option")).to_have_count(4)


def conversation(page: Page) -> Locator:
    return page.get_by_role("list", name="Conversation")


def message_box(page: Page) -> Locator:
    return page.get_by_role("textbox", name="Message")


def text_as(page: Page, phone: str) -> None:
    page.get_by_label("Text as").select_option(phone)


def send(page: Page, text: str) -> None:
    box = message_box(page)
    box.fill(text)
    box.press("Enter")


def test_the_picker_lists_the_demo_children_and_an_unlinked_number(page: Page, live_server: str) -> None:
    open_simulator(page, live_server)
    options = page.locator("#child option")
    expect(options).to_contain_text(["Jordan", "Cerys", "Amir", "Unlinked number"])
    expect(page.locator(f'#child option[value="{JORDAN}"]')).to_contain_text("Jordan")
    expect(page.locator(f'#child option[value="{CERYS}"]')).to_contain_text("Cerys")
    expect(page.locator(f'#child option[value="{AMIR}"]')).to_contain_text("Amir")
    expect(page.locator(f'#child option[value="{UNLINKED}"]')).to_contain_text("Unlinked number")


def test_jordan_asks_who_his_iro_is_and_hears_priya_shah(page: Page, live_server: str) -> None:
    open_simulator(page, live_server)
    log = conversation(page)
    # New messages are announced to screen readers.
    expect(log).to_have_attribute("aria-live", "polite")

    text_as(page, JORDAN)
    send(page, "who is my IRO")

    expect(log.locator("li.child", has_text="who is my IRO")).to_have_count(1)
    expect(log.locator("li.service", has_text="Priya Shah").first).to_be_visible()
    box = message_box(page)
    expect(box).to_have_value("")
    expect(box).to_be_focused()


def test_the_send_button_sends_too(page: Page, live_server: str) -> None:
    open_simulator(page, live_server)
    text_as(page, JORDAN)
    message_box(page).fill("who is my IRO")
    page.get_by_role("button", name="Send").click()

    expect(conversation(page).locator("li.service", has_text="Priya Shah").first).to_be_visible()
    expect(message_box(page)).to_have_value("")
    expect(message_box(page)).to_be_focused()


def test_cerys_is_answered_in_welsh(page: Page, live_server: str) -> None:
    open_simulator(page, live_server)
    text_as(page, CERYS)
    send(page, "helo")

    replies = conversation(page).locator("li.service")
    expect(replies.first).to_contain_text("Cerys")
    for reply in replies.all():
        expect(reply).not_to_contain_text("Hi Cerys")


def test_someone_hurt_me_raises_an_urgent_concern_and_gives_999(page: Page, live_server: str) -> None:
    open_simulator(page, live_server)
    text_as(page, JORDAN)
    send(page, "someone hurt me")

    urgent = page.locator("#effects li.urgent")
    expect(urgent).to_have_count(1)
    expect(urgent).to_contain_text("concern")
    expect(conversation(page).locator("li.service", has_text="999").first).to_be_visible()


def test_an_unlinked_number_hears_nothing_about_any_child(page: Page, live_server: str) -> None:
    open_simulator(page, live_server)
    text_as(page, UNLINKED)
    send(page, "who is my IRO")

    log = conversation(page)
    expect(log.locator("li.service").first).to_be_visible()
    expect(log).not_to_contain_text("Priya")
    expect(log).not_to_contain_text("Jordan")


def test_an_empty_message_is_not_sent(page: Page, live_server: str) -> None:
    posts: list[Request] = []

    def record(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/simulator/api/messages"):
            posts.append(request)

    page.on("request", record)
    open_simulator(page, live_server)
    text_as(page, JORDAN)
    log = conversation(page)
    box = message_box(page)

    box.press("Enter")
    box.fill("   ")
    page.get_by_role("button", name="Send").click()
    expect(log.locator("li.child")).to_have_count(0)

    # A real message afterwards is the only one that reaches the service.
    send(page, "who is my IRO")
    expect(log.locator("li.service", has_text="Priya Shah").first).to_be_visible()
    expect(log.locator("li.child")).to_have_count(1)
    assert len(posts) == 1


def test_a_service_failure_is_reported_in_the_conversation(page: Page, live_server: str) -> None:
    page.route(
        "**/simulator/api/messages",
        lambda route: route.fulfill(
            status=500, content_type="text/html", body="<h1>Internal Server Error</h1>"
        ),
    )
    open_simulator(page, live_server)
    send(page, "who is my IRO")

    expect(conversation(page).locator("li.note", has_text="Something went wrong")).to_have_count(1)
