"""Editing a flow in the browser's forms, through the test client and the real sign-in: drafts,
checks that name the step, publish and what children then get, preview, compare and roll back."""

from __future__ import annotations

import html
from html.parser import HTMLParser

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.conversations import InboundMessage, handle
from app.extensions import db
from app.models import AuditEvent, Concern, ContentVersion

from .staff import ALEX, PRIYA, SAM, csrf_token, sign_in

JORDAN = "+447700900001"
CERYS = "+447700900002"
OLD_QUESTION = "How are things going for you at the moment?"
NEW_QUESTION = "How are you getting on at the moment?"


class _FormFields(HTMLParser):
    """The fields of one form as a browser would post them (no button pressed)."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id, self.inside, self.fields = form_id, False, []
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        elif self.inside and tag == "input" and a.get("name"):
            self.fields.append((a["name"], a.get("value") or ""))
        elif self.inside and tag == "textarea" and a.get("name"):
            self._textarea, self._text = a["name"], []

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea" and self._textarea:
            self.fields.append((self._textarea, html.unescape("".join(self._text)).removeprefix("\n")))
            self._textarea = None
        elif tag == "form":
            self.inside = False


def draft_fields(client: FlaskClient, flow_id: str) -> dict[str, str]:
    page = client.get(f"/flows/{flow_id}/draft")
    assert page.status_code == 200, page.status_code
    parser = _FormFields("draft-form")
    parser.feed(page.text)
    return dict(parser.fields)


def field_with(fields: dict[str, str], value: str) -> str:
    """The name of the field holding a value (e.g. a question's text)."""
    names = [name for name, v in fields.items() if v == value]
    assert len(names) == 1, f"{value!r} is in {names}"
    return names[0]


def signed_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    assert sign_in(client, email).status_code == 302
    return client


def start_draft(client: FlaskClient, flow_id: str) -> None:
    token = csrf_token(client, f"/flows/{flow_id}")
    response = client.post(f"/flows/{flow_id}/draft/new", data={"csrf_token": token})
    assert response.status_code == 302


def post_draft(client: FlaskClient, flow_id: str, fields: dict[str, str], op: str = "save"):  # type: ignore[no-untyped-def]
    return client.post(f"/flows/{flow_id}/draft", data={**fields, "op": op})


def publish(client: FlaskClient, flow_id: str, note: str = ""):  # type: ignore[no-untyped-def]
    token = csrf_token(client, f"/flows/{flow_id}/draft")
    return client.post(f"/flows/{flow_id}/draft/publish", data={"csrf_token": token, "note": note})


def child(sender: str, text: str) -> list[str]:
    return handle(InboundMessage(channel="sms", sender=sender, text=text)).replies


def published_count() -> int:
    return db.session.scalar(select(func.count()).where(ContentVersion.status == "published"))


def test_a_reworded_question_is_published_and_a_child_half_way_finishes_on_the_old_version(
    demo: Flask,
) -> None:
    # Jordan starts giving views on the version in use now.
    first = "\n".join(child(JORDAN, "views"))
    assert OLD_QUESTION in first
    client = signed_in(demo, SAM)
    start_draft(client, "wishes")
    fields = draft_fields(client, "wishes")
    fields[field_with(fields, OLD_QUESTION)] = NEW_QUESTION
    assert post_draft(client, "wishes", fields).status_code == 302
    assert NEW_QUESTION in client.get("/flows/wishes/draft").text
    # Saved, but not live: a new conversation still gets the old words.
    assert OLD_QUESTION in "\n".join(child("+447700900003", "views"))

    response = publish(client, "wishes", note="Friendlier first question")
    assert response.status_code == 302, response.text
    assert "Version 1 is published" in client.get(response.location).text
    row = db.session.scalar(select(ContentVersion).where(ContentVersion.key == "wishes"))
    assert (row.status, row.number, row.note) == ("published", 1, "Friendlier first question")
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "publish")).detail.startswith(
        "flow wishes version 1"
    )

    # Jordan is half-way through the old version and finishes it: their answer is understood by it.
    replies = "\n".join(child(JORDAN, "1"))
    assert "How are things where you live?" in replies
    # A new conversation gets the new words.
    child("+447700900003", "menu")
    assert NEW_QUESTION in "\n".join(child("+447700900003", "views"))


def test_a_choice_that_leads_nowhere_is_kept_in_the_draft_but_publishing_is_refused_naming_the_step(
    demo: Flask,
) -> None:
    client = signed_in(demo, SAM)
    start_draft(client, "wishes")
    fields = draft_fields(client, "wishes")
    good = field_with(fields, "Good")
    goto = good.replace("-label", "-goto")
    fields[goto] = "nowhere_at_all"
    assert post_draft(client, "wishes", fields).status_code == 302
    page = client.get("/flows/wishes/draft").text
    assert (
        "Step &#39;overall&#39;: leads to &#39;nowhere_at_all&#39;, which is not a step in this flow" in page
    )

    refused = publish(client, "wishes")
    assert refused.status_code == 422
    assert "Step &#39;overall&#39;: leads to &#39;nowhere_at_all&#39;" in refused.text
    assert published_count() == 0
    # Children are unaffected.
    assert OLD_QUESTION in "\n".join(child(JORDAN, "views"))


def test_removing_a_step_that_others_lead_to_names_every_step_left_pointing_at_it(demo: Flask) -> None:
    client = signed_in(demo, SAM)
    start_draft(client, "wishes")
    fields = draft_fields(client, "wishes")
    index = next(n.split("-")[1] for n, v in fields.items() if n.endswith("-id") and v == "home")
    response = post_draft(client, "wishes", fields, op=f"remove:{index}")
    assert response.status_code == 302
    check = client.post("/flows/wishes/draft/check", data=draft_fields(client, "wishes")).get_json()
    assert not check["ok"]
    assert any(e.startswith("Step 'overall': leads to 'home'") for e in check["errors"])
    assert 'data-step="home"' not in check["diagram"]
    assert "missing" in check["diagram"]


def test_checks_as_you_type_find_sms_alphabet_length_reading_level_and_unknown_variables(demo: Flask) -> None:
    client = signed_in(demo, SAM)
    start_draft(client, "wishes")
    fields = draft_fields(client, "wishes")
    name = field_with(fields, "How are things where you live?")

    def errors(text: str) -> list[str]:
        result = client.post("/flows/wishes/draft/check", data={**fields, name: text}).get_json()
        return result["errors"]

    assert errors("How are things where you live now?") == []
    assert any("outside GSM-7" in e and e.startswith("Step 'home'") for e in errors("How\u2019s home?"))
    assert any("SMS segments" in e for e in errors("Tell me. " * 40))
    hard = "Characterise the institutional accommodation arrangements' appropriateness comprehensively."
    assert any("reads at US grade" in e for e in errors(hard))
    assert any("'{nickname}' is not a variable" in e for e in errors("Hi {nickname}, how is home?"))
    # Nothing was saved by checking.
    assert "How are things where you live?" in client.get("/flows/wishes/draft").text


def test_steps_and_choices_can_be_added_moved_and_removed(demo: Flask) -> None:
    client = signed_in(demo, SAM)
    start_draft(client, "rights")
    fields = draft_fields(client, "rights")
    count = int(fields["step-count"])
    post_draft(client, "rights", fields, op="add:ask")
    fields = draft_fields(client, "rights")
    assert int(fields["step-count"]) == count + 1
    assert fields[f"step-{count}-id"] == "new_step_1"
    post_draft(client, "rights", fields, op=f"up:{count}")
    fields = draft_fields(client, "rights")
    assert fields[f"step-{count - 1}-id"] == "new_step_1"
    post_draft(client, "rights", fields, op=f"remove:{count - 1}")
    fields = draft_fields(client, "rights")
    assert "new_step_1" not in fields.values()
    # A choice added to the first choice step, then removed again.
    step = next(n.split("-")[1] for n in fields if n.endswith("-choice-count"))
    choices = int(fields[f"step-{step}-choice-count"])
    post_draft(client, "rights", fields, op=f"add-choice:{step}")
    fields = draft_fields(client, "rights")
    assert int(fields[f"step-{step}-choice-count"]) == choices + 1
    post_draft(client, "rights", fields, op=f"remove-choice:{step}:{choices}")
    assert int(draft_fields(client, "rights")[f"step-{step}-choice-count"]) == choices


def test_more_settings_that_are_not_valid_are_refused_and_what_was_typed_is_shown_again(demo: Flask) -> None:
    client = signed_in(demo, SAM)
    start_draft(client, "wishes")
    fields = draft_fields(client, "wishes")
    more = next(n for n, v in fields.items() if n.endswith("-more") and "cases" in v)
    fields[more] = "cases: [unclosed"
    response = post_draft(client, "wishes", fields)
    assert response.status_code == 200
    assert "Not saved" in response.text
    assert "cases: [unclosed" in response.text
    assert "cases: [unclosed" not in db.session.scalar(select(ContentVersion.content))


def test_preview_runs_the_draft_as_a_test_child_in_welsh_and_stores_nothing(demo: Flask) -> None:
    client = signed_in(demo, SAM)
    start_draft(client, "wishes")
    fields = draft_fields(client, "wishes")
    fields[field_with(fields, OLD_QUESTION)] = NEW_QUESTION
    post_draft(client, "wishes", fields)
    token = csrf_token(client, "/flows/wishes/preview")
    headers = {"X-CSRFToken": token}
    english = client.post(
        "/flows/wishes/preview/api", json={"start": True, "locale": "en"}, headers=headers
    ).get_json()
    assert any(NEW_QUESTION in r["text"] for r in english["replies"])
    welsh = client.post("/flows/wishes/preview/api", json={"start": True, "locale": "cy"}, headers=headers)
    texts = [r["text"] for r in welsh.get_json()["replies"]]
    # The changed question has no Welsh yet: English, with the note in Welsh, as a child would get.
    assert any(NEW_QUESTION in t and "dy iaith di" in t for t in texts)
    assert all(r["segments"] >= 1 for r in welsh.get_json()["replies"])

    concerns_before = db.session.scalar(select(func.count()).select_from(Concern))
    state = english["state"]
    risky = client.post(
        "/flows/wishes/preview/api",
        json={"text": "my carer hits me", "state": state, "locale": "en"},
        headers=headers,
    ).get_json()
    assert [(e["kind"], e["urgent"]) for e in risky["effects"]] == [("concern", True)]
    assert "call 999" in risky["replies"][0]["text"]
    assert risky["state"] == state  # the test child keeps their place, as a real child does
    answered = client.post(
        "/flows/wishes/preview/api", json={"text": "1", "state": state, "locale": "en"}, headers=headers
    ).get_json()
    assert "How are things where you live?" in answered["replies"][-1]["text"]
    assert db.session.scalar(select(func.count()).select_from(Concern)) == concerns_before
    assert client.post("/flows/wishes/preview/api", data="nonsense", headers=headers).status_code == 400


def test_versions_are_compared_in_words_and_an_earlier_one_can_be_published_again(demo: Flask) -> None:
    client = signed_in(demo, SAM)
    start_draft(client, "wishes")
    fields = draft_fields(client, "wishes")
    fields[field_with(fields, OLD_QUESTION)] = NEW_QUESTION
    post_draft(client, "wishes", fields)
    assert publish(client, "wishes").status_code == 302
    compare = html.unescape(client.get("/flows/wishes/compare?from=file&to=1").text)
    assert f'Step "overall": the text changed from "{OLD_QUESTION}" to "{NEW_QUESTION}"' in compare

    admin = signed_in(demo, ALEX)
    token = csrf_token(admin, "/flows/wishes")
    response = admin.post("/flows/wishes/versions/0/republish", data={"csrf_token": token})
    assert response.status_code == 302
    versions = db.session.scalars(select(ContentVersion).order_by(ContentVersion.number)).all()
    assert [(v.number, v.note) for v in versions] == [(1, ""), (2, "Re-published the shipped file")]
    child("+447700900003", "menu")
    assert OLD_QUESTION in "\n".join(child("+447700900003", "views"))
    page = client.get("/flows/wishes").text
    assert "Version 2" in page and "Alex Morgan" in page


def test_staff_who_are_not_editors_cannot_open_or_change_flows(demo: Flask) -> None:
    client = signed_in(demo, PRIYA)
    for path in ["/flows/wishes", "/flows/wishes/draft", "/flows/wishes/preview", "/flows/wishes/compare"]:
        assert client.get(path).status_code == 403, path
    token = csrf_token(client, "/account")
    for path in [
        "/flows/wishes/draft/new",
        "/flows/wishes/draft/publish",
        "/flows/wishes/versions/0/republish",
    ]:
        assert client.post(path, data={"csrf_token": token}).status_code == 403, path
    assert published_count() == 0
    editor = signed_in(demo, SAM)
    assert editor.get("/flows/no_such_flow").status_code == 404


def test_a_save_over_someone_elses_newer_save_is_refused_and_keeps_what_was_typed(demo: Flask) -> None:
    sam, alex = signed_in(demo, SAM), signed_in(demo, ALEX)
    start_draft(sam, "wishes")
    sams_form, alexs_form = draft_fields(sam, "wishes"), draft_fields(alex, "wishes")
    alexs_form[field_with(alexs_form, OLD_QUESTION)] = "Alex's wording?"
    assert post_draft(alex, "wishes", alexs_form).status_code == 302
    sams_form[field_with(sams_form, OLD_QUESTION)] = "Sam's wording?"
    refused = post_draft(sam, "wishes", sams_form)
    assert refused.status_code == 200
    assert "Alex Morgan saved this draft" in html.unescape(refused.text)
    assert "Sam&#39;s wording?" in refused.text
    saved = db.session.scalar(select(ContentVersion.content))
    assert "Alex's wording?" in saved and "Sam's wording?" not in saved


def test_a_bad_step_name_and_a_missing_field_are_explained_in_plain_words(demo: Flask) -> None:
    client = signed_in(demo, SAM)
    start_draft(client, "about")
    fields = draft_fields(client, "about")
    first = next(n for n in fields if n.endswith("-id"))
    fields[first] = "What Now"
    errors = client.post("/flows/about/draft/check", data=fields).get_json()["errors"]
    assert "Step 'What Now': a step name can only have small letters, numbers and _" in errors[0]
    fields[first] = "what"
    fields[first.replace("-id", "-next")] = ""
    errors = client.post("/flows/about/draft/check", data=fields).get_json()["errors"]
    assert errors == ["Step 'what': it needs 'next'"]


def test_publishing_changed_english_keeps_the_welsh_for_review_and_a_welsh_child_is_told(demo: Flask) -> None:
    from app.models import Translation

    client = signed_in(demo, SAM)
    start_draft(client, "wishes")
    fields = draft_fields(client, "wishes")
    fields[field_with(fields, OLD_QUESTION)] = NEW_QUESTION
    post_draft(client, "wishes", fields)
    response = publish(client, "wishes")
    assert "1 translation(s) need review because the English changed" in client.get(response.location).text
    row = db.session.scalar(select(Translation).where(Translation.msgid == NEW_QUESTION))
    assert (row.locale, row.status, row.reason, row.approved_text) == (
        "cy",
        "needs_review",
        "the English changed",
        None,
    )
    # Cerys (Welsh) gets the new English with a Welsh line saying it is not ready in Welsh yet.
    child(CERYS, "menu")
    replies = "\n".join(child(CERYS, "views"))
    assert NEW_QUESTION in replies
    assert "(Mae'r rhan hon yn Saesneg, achos dydy hi ddim yn barod yn dy iaith di eto.)" in replies


def test_every_shipped_flow_saved_through_the_form_unchanged_keeps_every_field(demo: Flask) -> None:
    from app import content
    from app.engine.definition import read_yaml
    from app.models.flows import FLOW

    client = signed_in(demo, SAM)
    flow_ids = sorted(content.store().shipped.flow_texts)
    assert len(flow_ids) == 8
    for flow_id in flow_ids:
        start_draft(client, flow_id)
        assert post_draft(client, flow_id, draft_fields(client, flow_id)).status_code == 302, flow_id
        saved = read_yaml(content.draft(db.session, FLOW, flow_id).content)
        shipped = read_yaml(content.shipped_text(FLOW, flow_id))
        assert saved == shipped, flow_id


def test_a_draft_started_before_a_newer_version_was_published_says_so(demo: Flask) -> None:
    sam, alex = signed_in(demo, SAM), signed_in(demo, ALEX)
    start_draft(sam, "wishes")
    token = csrf_token(alex, "/flows/wishes")
    # Alex publishes the shipped file again as version 1 while Sam's draft is open.
    assert alex.post("/flows/wishes/versions/0/republish", data={"csrf_token": token}).status_code == 302
    page = html.unescape(sam.get("/flows/wishes/draft").text)
    assert "Version 1 was published after this draft was started." in page
    assert "Publishing the draft would replace it." in page
