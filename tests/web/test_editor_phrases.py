"""Editing the safeguarding phrase lists in the browser, through the test client with the real
sign-in form: the overview, drafts that are kept even when broken, problems named by line, trying a
message against a draft, publishing (refused when broken or less safe than the list in use) that
changes a child's triage at once, discarding, re-publishing an earlier version, and who may do it."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEvent, Concern, ContentVersion, Message, StaffUser
from app.models.flows import PHRASES

from .staff import ALEX, GRACE, PRIYA, SAM, csrf_token, sign_in

JORDAN = "+447700900001"
EDIT = "/flows/settings/phrases/en"
ROOT = Path(__file__).resolve().parents[2]
SHIPPED_EN = (ROOT / "flows" / "safeguarding" / "en.yaml").read_text(encoding="utf-8")
NEW_RISK = "the purple van man is outside again"
ANCHOR = "  unsafe:\n"
assert SHIPPED_EN.count(ANCHOR) == 1


def signed_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    response = sign_in(client, email)
    assert response.status_code == 302, response.status_code
    return client


def with_unsafe_phrase(text: str, phrase: str) -> str:
    """The file with one more phrase at the top of the 'unsafe' list."""
    return text.replace(ANCHOR, f"{ANCHOR}    - {phrase}\n", 1)


def page_stamp(client: FlaskClient) -> str:
    """Which save of the draft the edit page was made from."""
    return re.search(r'name="stamp" type="hidden" value="([^"]*)"', client.get(EDIT).text).group(1)


def post_draft(client: FlaskClient, text: str, action: str = "save", **fields: str):  # type: ignore[no-untyped-def]
    data = {
        "csrf_token": csrf_token(client, EDIT),
        "stamp": page_stamp(client),
        "content": text,
        "action": action,
        **fields,
    }
    return client.post(EDIT, data=data)


def say(client: FlaskClient, text: str) -> dict:
    response = client.post("/simulator/api/messages", json={"child": JORDAN, "text": text})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def urgent_effects(body: dict) -> list[dict]:
    return [e for e in body["effects"] if e["kind"] == "concern" and e.get("urgent")]


def versions() -> list[ContentVersion]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(ContentVersion).where(ContentVersion.kind == PHRASES).order_by(ContentVersion.id)
        )
    )


def published() -> list[tuple[str, int | None]]:
    return [(v.key, v.number) for v in versions() if v.status == "published"]


def draft_text() -> str | None:
    return next((v.content for v in versions() if v.status == "draft" and v.key == "en"), None)


def section(page: str, element_id: str) -> str:
    """The text of the element with this id, tags and whitespace collapsed."""
    found = re.search(rf'<(\w+)[^>]*id="{element_id}"[^>]*>(.*?)</\1>', page, re.S)
    assert found, f"no #{element_id} on the page"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(2))).split())


def textarea(page: str) -> str:
    found = re.search(r'<textarea[^>]*name="content"[^>]*>\r?\n?(.*?)</textarea>', page, re.S)
    assert found
    return html.unescape(found.group(1)).replace("\r\n", "\n")


@pytest.mark.parametrize("who", [SAM, ALEX])
def test_the_overview_shows_each_language_with_the_list_in_use_and_phrases_per_concern(
    demo: Flask, who: str
) -> None:
    client = signed_in(demo, who)
    page = client.get("/flows/settings/phrases")
    assert page.status_code == 200
    for locale, language in (("en", "English"), ("cy", "Cymraeg")):
        row = re.search(rf'<tr data-locale="{locale}">(.*?)</tr>', page.text, re.S).group(1)
        assert language in row
        assert f"The shipped file flows/safeguarding/{locale}.yaml" in row
        assert "No draft" in row
    suicide = re.search(r'<tr data-category="suicide">(.*?)</tr>', page.text, re.S).group(1)
    en_count = len(re.findall(r"^    - ", SHIPPED_EN.split("  suicide:\n")[1].split("  self_harm:")[0], re.M))
    assert f'<td data-locale="en">{en_count}</td>' in suicide

    settings = client.get("/flows/settings").text
    assert f'href="{EDIT}"' in settings and 'href="/flows/settings/phrases"' in settings

    post_draft(client, with_unsafe_phrase(SHIPPED_EN, "purple van"))
    row = re.search(r'<tr data-locale="en">(.*?)</tr>', client.get("/flows/settings/phrases").text, re.S)
    assert "Draft" in row.group(1) and "No draft" not in row.group(1)


def test_the_edit_page_shows_the_whole_file_with_its_notes_on_how_to_write_a_phrase(demo: Flask) -> None:
    page = signed_in(demo, SAM).get(EDIT).text
    assert textarea(page) == SHIPPED_EN
    assert "HOW TO WRITE A PHRASE" in textarea(page)
    assert "font-family: ui-monospace" in page
    assert "The shipped file flows/safeguarding/en.yaml" in section(page, "in-use")
    assert "No draft" in section(page, "draft-state")
    assert signed_in(demo, SAM).get("/flows/settings/phrases/xx").status_code == 404


def test_publishing_a_new_phrase_makes_a_childs_message_urgent_at_once(demo: Flask) -> None:
    child = demo.test_client()
    assert urgent_effects(say(child, NEW_RISK)) == []

    client = signed_in(demo, SAM)
    response = post_draft(client, with_unsafe_phrase(SHIPPED_EN, "purple van"))
    assert response.status_code == 302
    page = client.get(response.location).text
    assert "Draft saved." in page
    assert "No problems" in section(page, "problems")
    changes = section(page, "changes")
    assert "Unsafe" in changes and "Added: purple van" in changes
    assert published() == [], "saving a draft publishes nothing"
    assert urgent_effects(say(child, NEW_RISK)) == []

    response = post_draft(
        client, with_unsafe_phrase(SHIPPED_EN, "purple van"), "publish", note="Van seen near homes"
    )
    assert response.status_code == 302
    page = client.get(response.location).text
    assert "Published version 1" in page
    assert "Version 1, published by Sam Patel" in section(page, "in-use")
    assert published() == [("en", 1)] and draft_text() is None

    effects = urgent_effects(say(child, NEW_RISK))
    assert len(effects) == 1 and effects[0]["category"] == "unsafe"
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "publish").order_by(AuditEvent.id.desc())
    )
    assert event.detail == "safeguarding en version 1: Van seen near homes"
    assert event.staff_id == db.session.scalar(select(StaffUser.id).where(StaffUser.email == SAM))
    history = section(page, "history")
    assert "Version 1 Sam Patel" in history and "Van seen near homes" in history


def test_trying_a_message_checks_it_against_the_draft_and_stores_nothing(demo: Flask) -> None:
    client = signed_in(demo, SAM)
    counts = [db.session.scalar(select(func.count()).select_from(t)) for t in (Message, Concern, AuditEvent)]
    draft = with_unsafe_phrase(SHIPPED_EN, "purple van")
    response = post_draft(client, draft, "try", message=NEW_RISK)
    assert response.status_code == 200
    verdict = section(response.text, "verdict")
    assert "With this draft: Urgent" in verdict and "Concern: unsafe" in verdict and "purple van" in verdict
    assert "With the list in use: Not urgent" in verdict
    calm = section(post_draft(client, draft, "try", message="my new bike is blue").text, "verdict")
    assert "With this draft: Not urgent" in calm
    assert draft_text() == draft, "trying keeps the draft, like saving"
    after = [db.session.scalar(select(func.count()).select_from(t)) for t in (Message, Concern, AuditEvent)]
    assert after == counts
    stored = " ".join(v.content for v in versions()) + " ".join(db.session.scalars(select(AuditEvent.detail)))
    assert NEW_RISK not in stored
    assert "bike is blue" not in stored

    empty = post_draft(client, draft, "try", message="  ")
    assert "Type a message to try." in empty.text and 'id="verdict"' not in empty.text


def test_a_broken_draft_is_kept_and_refused_with_its_problem_named_by_line(demo: Flask) -> None:
    client = signed_in(demo, SAM)
    broken = SHIPPED_EN.replace("    - kill/killing/killed myself\n", "    - kill/killing/ myself\n", 1)
    line = broken.splitlines().index("    - kill/killing/ myself") + 1
    response = post_draft(client, broken)
    assert response.status_code == 302
    page = client.get(EDIT).text
    assert "Draft saved. It has 1 problem to fix" in page
    problems = section(page, "problems")
    assert f"Line {line}: 'kill/killing/ myself': 'kill/killing/' has an empty choice" in problems
    assert draft_text() == broken and textarea(page) == broken

    refused = post_draft(client, broken, "publish")
    assert refused.status_code == 200
    refusal = section(refused.text, "refusal")
    assert "Nothing was published: the draft has 1 problem" in refusal
    assert f"Line {line}:" in refusal
    assert published() == []
    assert db.session.scalar(select(func.count()).where(AuditEvent.action == "publish")) == 0
    tried = post_draft(client, broken, "try", message="hello")
    assert "cannot check messages yet" in tried.text
    assert draft_text() == broken, "a refused draft is still kept"

    not_yaml = SHIPPED_EN.replace("phrases:\n", "phrases:\n  suicide: [\n", 1)
    post_draft(client, not_yaml)
    assert "this is not valid YAML" in section(client.get(EDIT).text, "problems")


def test_a_draft_that_would_miss_a_risk_the_list_in_use_catches_is_refused_naming_it(demo: Flask) -> None:
    client = signed_in(demo, SAM)
    unsafer = SHIPPED_EN.replace("    - kill/killing/killed myself\n", "", 1)
    refused = post_draft(client, unsafer, "publish")
    assert refused.status_code == 200
    refusal = section(refused.text, "refusal")
    assert "Nothing was published: the draft would miss" in refusal
    assert "must never get less safe" in refusal
    assert "i want to kill myself" in refusal and "killmyself" in refusal
    assert published() == [] and draft_text() == unsafer
    page = refused.text
    assert "i want to kill myself" in section(page, "lost")
    assert "Taken out: kill/killing/killed myself" in section(page, "changes")
    child = demo.test_client()
    assert urgent_effects(say(child, "i want to kill myself")), "the list in use still catches it"


def test_discarding_a_draft_brings_back_the_list_in_use(demo: Flask) -> None:
    client = signed_in(demo, SAM)
    post_draft(client, with_unsafe_phrase(SHIPPED_EN, "purple van"))
    assert draft_text() is not None
    response = client.post(
        "/flows/settings/phrases/en/discard", data={"csrf_token": csrf_token(client, EDIT)}
    )
    assert response.status_code == 302
    page = client.get(response.location).text
    assert "Draft discarded" in page
    assert draft_text() is None and published() == []
    assert textarea(page) == SHIPPED_EN
    assert "Discard draft" not in page
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "discarded draft"))
    assert event is not None and event.detail == "safeguarding en"


def test_an_earlier_version_can_be_published_again_after_the_same_checks(demo: Flask, tmp_path: Path) -> None:
    # A test set with the new risk in it: once a list catches it, no version that misses it may return.
    samples = tmp_path / "samples.csv"
    rows = (ROOT / "tests" / "data" / "safeguarding_utterances.csv").read_text(encoding="utf-8")
    samples.write_text(rows.rstrip("\n") + f"\n{NEW_RISK},,yes,unsafe,\n", encoding="utf-8")
    demo.config["TRIAGE_SAMPLES"] = str(samples)
    client = signed_in(demo, SAM)
    child = demo.test_client()

    first = with_unsafe_phrase(SHIPPED_EN, "purple van")
    assert post_draft(client, first, "publish").status_code == 302
    second = with_unsafe_phrase(first, "green lorry")
    assert post_draft(client, second, "publish").status_code == 302
    assert urgent_effects(say(child, "the green lorry came back"))

    token = csrf_token(client, EDIT)
    refused = client.post("/flows/settings/phrases/en/versions/0/publish", data={"csrf_token": token})
    assert refused.status_code == 200
    refusal = section(refused.text, "refusal")
    assert "Nothing was published: the shipped file would miss 1 risk message" in refusal
    assert NEW_RISK in refusal
    assert published() == [("en", 1), ("en", 2)]

    response = client.post("/flows/settings/phrases/en/versions/1/publish", data={"csrf_token": token})
    assert response.status_code == 302
    page = client.get(response.location).text
    assert "Published version 1 again as version 3" in page
    row = next(v for v in versions() if v.number == 3)
    assert row.content == first and row.note == "Re-published version 1"
    assert urgent_effects(say(child, "a green lorry was there")) == []
    assert urgent_effects(say(child, NEW_RISK))
    assert "Version 3, published by Sam Patel" in section(page, "in-use")
    assert "Re-published version 1" in section(page, "history")

    shown = client.get("/flows/settings/phrases/en/versions/2")
    assert shown.status_code == 200 and "- green lorry" in html.unescape(shown.text)
    assert client.get("/flows/settings/phrases/en/versions/9").status_code == 404
    same = client.post("/flows/settings/phrases/en/versions/3/publish", data={"csrf_token": token})
    assert "the same as the list in use" in section(same.text, "refusal")


def test_without_labelled_messages_only_the_problems_are_checked(demo: Flask, tmp_path: Path) -> None:
    demo.config["TRIAGE_SAMPLES"] = str(tmp_path / "missing.csv")
    client = signed_in(demo, SAM)
    assert "no labelled test messages" in client.get(EDIT).text
    response = post_draft(client, with_unsafe_phrase(SHIPPED_EN, "purple van"), "publish")
    assert response.status_code == 302 and published() == [("en", 1)]


@pytest.mark.parametrize("who", [PRIYA, GRACE])
def test_iros_and_managers_may_not_open_or_change_the_phrase_lists(demo: Flask, who: str) -> None:
    client = signed_in(demo, who)
    for path in ("/flows/settings/phrases", EDIT, "/flows/settings/phrases/en/versions/0"):
        assert client.get(path).status_code == 403, path
    token = csrf_token(client, "/account")
    posts = {
        EDIT: {"content": with_unsafe_phrase(SHIPPED_EN, "purple van"), "action": "publish"},
        "/flows/settings/phrases/en/discard": {},
        "/flows/settings/phrases/en/versions/0/publish": {},
    }
    for path, data in posts.items():
        assert client.post(path, data={"csrf_token": token, **data}).status_code == 403, path
    assert versions() == []


def test_a_post_without_its_csrf_token_is_refused(demo: Flask) -> None:
    client = signed_in(demo, SAM)
    draft = with_unsafe_phrase(SHIPPED_EN, "purple van")
    for action in ("save", "publish", "try"):
        response = client.post(EDIT, data={"content": draft, "action": action, "message": "hi"})
        assert response.status_code == 400
    assert versions() == []
    post_draft(client, draft)
    for path in ("/flows/settings/phrases/en/discard", "/flows/settings/phrases/en/versions/0/publish"):
        assert client.post(path, data={}).status_code == 400
    assert draft_text() == draft and published() == []


def test_a_save_over_someone_elses_newer_save_of_the_list_is_refused_and_keeps_the_typing(
    demo: Flask,
) -> None:
    sam, alex = signed_in(demo, SAM), signed_in(demo, ALEX)
    sams_stamp = page_stamp(sam)
    assert post_draft(alex, with_unsafe_phrase(SHIPPED_EN, "alex added this")).status_code == 302
    mine = with_unsafe_phrase(SHIPPED_EN, "sam added this")
    data = {"csrf_token": csrf_token(sam, EDIT), "stamp": sams_stamp, "content": mine, "action": "save"}
    refused = sam.post(EDIT, data=data)
    assert refused.status_code == 200
    assert "changed this draft after you opened it, so your changes were not saved" in refused.text
    assert "sam added this" in refused.text
    draft = db.session.scalar(select(ContentVersion.content).where(ContentVersion.status == "draft"))
    assert "alex added this" in draft and "sam added this" not in draft
