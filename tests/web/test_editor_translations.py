"""Translations side by side, through the real sign-in: a .po file exported, changed and imported
changes what a Welsh child is sent once a second person approves it; broken files and bad
translations are refused with nothing stored; English that changes sends its translation back for
review, and the child gets English with a note meanwhile; only participation workers and admins
get in."""

from __future__ import annotations

import re
from io import BytesIO

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from app import content, translations
from app.extensions import db
from app.models import AuditEvent, StaffUser, Translation
from app.models.flows import FLOW

from .staff import ALEX, GRACE, PRIYA, SAM, csrf_token, sign_in

CERYS = "+447700900002"  # Welsh, IRO Rhys Evans
NAME = "who_is_my_iro.name"  # the IRO introduction: "Your {role_title} ({role_short}) is {iro_name}."
OLD_WELSH = "Rhys Evans yw dy Swyddog Adolygu Annibynnol (SAA)."
NEW_WELSH_PO = "Dy {role_title} ({role_short}) yw {iro_name}."
NEW_WELSH = "Dy Swyddog Adolygu Annibynnol (SAA) yw Rhys Evans."
NOT_READY = "(Mae'r rhan hon yn Saesneg, achos dydy hi ddim yn barod yn dy iaith di eto.)"
PAGE = "/flows/translations/cy/who_is_my_iro"


def signed_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    response = sign_in(client, email)
    assert response.status_code == 302, response.status_code
    return client


def staff(email: str) -> StaffUser:
    return db.session.scalar(select(StaffUser).where(StaffUser.email == email))


def cerys_asks_who_her_iro_is(app: Flask) -> list[str]:
    response = app.test_client().post(
        "/simulator/api/messages", json={"child": CERYS, "text": "pwy yw fy SAA"}
    )
    assert response.status_code == 200, response.text
    return response.get_json()["replies"]


def translation(context: str, locale: str = "cy") -> Translation | None:
    db.session.expire_all()
    return db.session.scalar(
        select(Translation).where(Translation.locale == locale, Translation.context == context)
    )


def stored_count() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Translation))


def export(client: FlaskClient) -> Catalog:
    response = client.get("/flows/translations/cy.po")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="reviewline-cy.po"'
    return read_po(BytesIO(response.data), abort_invalid=True)


def po_bytes(catalog: Catalog) -> bytes:
    buffer = BytesIO()
    write_po(buffer, catalog)
    return buffer.getvalue()


def upload(client: FlaskClient, data: bytes, filename: str = "cy-agency.po"):  # type: ignore[no-untyped-def]
    """Post a file to the import form as a browser would (encoded in memory: the test client's
    own encoder leaves a temporary file open for a large body)."""
    fields = {
        "csrf_token": csrf_token(client, "/flows/translations"),
        "file": FileStorage(BytesIO(data), filename=filename, content_type="text/x-gettext-translation"),
    }
    boundary, body = encode_multipart(MultiDict(fields))
    return client.post(
        "/flows/translations/cy/import", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )


def row_html(page: str, context: str) -> str:
    found = re.search(rf'<tr id="row-[0-9a-f]+"[^>]*data-context="{re.escape(context)}".*?</tr>', page, re.S)
    assert found, f"no row for {context}"
    return found.group(0)


def approve_form(page: str, context: str) -> tuple[str, dict[str, str]]:
    """The approve form's action and fields for a row, as the browser would send them."""
    key = re.search(r'<tr id="row-([0-9a-f]+)"', row_html(page, context)).group(1)
    form = re.search(
        rf'<form method="post" id="approve-{key}" action="([^"]+)" hidden>(.*?)</form>', page, re.S
    )
    assert form, f"no approve form for {context}"
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(2)))
    fields = {name: value.replace("&#39;", "'").replace("&amp;", "&") for name, value in fields.items()}
    return form.group(1), fields


def test_a_po_file_exported_changed_and_imported_changes_what_a_welsh_child_is_sent(demo: Flask) -> None:
    assert OLD_WELSH in cerys_asks_who_her_iro_is(demo)
    sam = signed_in(demo, SAM)

    catalog = export(sam)
    assert str(catalog.locale) == "cy"
    entry = catalog.get("Your {role_title} ({role_short}) is {iro_name}.", context=NAME)
    assert entry is not None and entry.string == "{iro_name} yw dy {role_title} ({role_short})."
    assert not entry.fuzzy
    assert any("Step 'name' of the flow 'Who is my IRO'" in c for c in entry.auto_comments)
    assert catalog.get(
        "(This part is in English, as it is not ready in your language yet.)", "system.not_in_your_language"
    )
    assert not any(m.fuzzy for m in catalog if m.id), "nothing waits for review yet"

    entry.string = NEW_WELSH_PO
    response = upload(sam, po_bytes(catalog))
    assert response.status_code == 200
    assert "1 translation saved, waiting for someone else to approve it." in response.text
    proposed = translation(NAME)
    assert proposed is not None
    assert (proposed.text, proposed.approved_text, proposed.status) == (NEW_WELSH_PO, None, "needs_review")
    assert proposed.reason == "imported from cy-agency.po"
    assert proposed.updated_by_id == staff(SAM).id
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "translations imported"))
    assert event is not None and event.staff_id == staff(SAM).id and "1 changed" in event.detail

    # Exported again, it is marked fuzzy (waiting for review) with the new text.
    again = export(sam).get("Your {role_title} ({role_short}) is {iro_name}.", context=NAME)
    assert again.fuzzy and again.string == NEW_WELSH_PO
    assert "1 need review" in sam.get("/flows/translations").text

    replies = cerys_asks_who_her_iro_is(demo)
    assert OLD_WELSH in replies, "children keep the approved Welsh until a second person approves"
    assert NEW_WELSH not in "\n".join(replies)

    page = sam.get(PAGE).text
    row = row_html(page, NAME)
    assert "Needs review" in row and "imported from cy-agency.po" in row and "Sam Patel" in row
    assert "disabled" in row and "You made the last change, so someone else must approve it." in row
    token = csrf_token(sam, PAGE)
    response = sam.post(f"{PAGE}/approve/{proposed.id}", data={"csrf_token": token, "text": NEW_WELSH_PO})
    assert response.status_code == 409
    assert "A second person must approve a translation" in response.text
    assert translation(NAME).status == "needs_review"
    assert NEW_WELSH not in "\n".join(cerys_asks_who_her_iro_is(demo))

    alex = signed_in(demo, ALEX)
    page = alex.get(PAGE).text
    assert "disabled" not in row_html(page, NAME)
    action, fields = approve_form(page, NAME)
    assert fields["text"] == NEW_WELSH_PO
    response = alex.post(action, data=fields)
    assert response.status_code == 302
    assert "Approved. Children get this translation" in alex.get(response.location).text
    approved = translation(NAME)
    assert (approved.approved_text, approved.status, approved.approved_by_id) == (
        NEW_WELSH_PO,
        "approved",
        staff(ALEX).id,
    )
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "translation approved"))
    assert event is not None and event.staff_id == staff(ALEX).id and NAME in event.detail

    replies = cerys_asks_who_her_iro_is(demo)
    assert replies[0] == NEW_WELSH
    assert OLD_WELSH not in replies and NOT_READY not in "\n".join(replies)
    assert "Approved by Alex Morgan" in row_html(alex.get(PAGE).text, NAME)
    assert not export(alex).get("Your {role_title} ({role_short}) is {iro_name}.", context=NAME).fuzzy


def test_a_file_that_is_not_a_po_file_or_is_for_another_language_is_refused_and_nothing_stored(
    demo: Flask,
) -> None:
    sam = signed_in(demo, SAM)
    response = upload(sam, b"Dear Reviewline, please find our translations attached.", "letter.po")
    assert response.status_code == 400
    assert "This file could not be read as a .po translation file. Nothing was saved." in response.text

    response = upload(sam, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "picture.po")
    assert response.status_code == 400 and "could not be read as a .po" in response.text

    french = export(sam)
    french.locale = "fr"
    for entry in french:
        if entry.id:
            entry.string = "Bonjour"
    response = upload(sam, po_bytes(french), "fr.po")
    assert response.status_code == 400
    assert "This file is for Français (fr), not Cymraeg. Nothing was saved." in response.text

    response = sam.post(
        "/flows/translations/cy/import", data={"csrf_token": csrf_token(sam, "/flows/translations")}
    )
    assert response.status_code == 400 and "Choose a .po file to import." in response.text
    assert stored_count() == 0
    assert OLD_WELSH in cerys_asks_who_her_iro_is(demo)


def test_an_imported_translation_with_an_unknown_variable_or_a_number_as_a_keyword_is_refused(
    demo: Flask,
) -> None:
    sam = signed_in(demo, SAM)
    catalog = export(sam)
    name = catalog.get("Your {role_title} ({role_short}) is {iro_name}.", context=NAME)
    name.string = "{enw_saa} yw dy {role_title}."
    keywords = next(m for m in catalog if m.context == "concerns.menu.keywords")
    keywords.string = "1, ddim yn ddiogel"
    no_date = next(m for m in catalog if m.context == "who_is_my_iro.no_review_date")
    no_date.string = "Does dim dyddiad eto. Anfona DEWISLEN (MENU)."
    catalog.add("An English message no flow has any more", "Hen neges", context="who_is_my_iro.gone")

    response = upload(sam, po_bytes(catalog))
    assert response.status_code == 200
    assert "1 translation saved" in response.text
    assert "1 not in any flow now" in response.text
    assert "2 refused" in response.text
    assert "{enw_saa} is not a variable this service knows" in response.text
    assert "A keyword cannot be a number (1)" in response.text
    assert translation(NAME) is None and translation("concerns.menu.keywords") is None
    assert translation("who_is_my_iro.no_review_date").status == "needs_review"
    assert stored_count() == 1


def test_a_translation_typed_with_an_unknown_variable_or_a_number_keyword_is_refused_and_kept_in_the_form(
    demo: Flask,
) -> None:
    sam = signed_in(demo, SAM)
    page = sam.get(PAGE).text
    keys = dict(
        (context, key)
        for key, context in re.findall(r'<tr id="row-([0-9a-f]+)"[^>]*data-context="([^"]+)"', page)
    )
    wrong = "{enw_saa} yw dy {role_title} ({role_short})."
    fine = "Gelli di anfon neges yma at {iro_name}. Mae'r staff yn ceisio ateb o fewn {reply_time}."
    response = sam.post(
        PAGE,
        data={
            "csrf_token": csrf_token(sam, PAGE),
            f"text-{keys[NAME]}": wrong,
            f"was-{keys[NAME]}": "{iro_name} yw dy {role_title} ({role_short}).",
            f"text-{keys['who_is_my_iro.contact_here']}": fine,
            f"was-{keys['who_is_my_iro.contact_here']}": "something else",
        },
    )
    assert response.status_code == 422
    row = row_html(response.text, NAME)
    assert "{enw_saa} is not a variable this service knows" in row
    assert 'aria-invalid="true"' in row and "{enw_saa} yw dy" in row, "what was typed stays in the box"
    assert "Saved 1 translation." in response.text
    assert translation(NAME) is None
    assert translation("who_is_my_iro.contact_here").text == fine

    keywords_page = "/flows/translations/cy/concerns"
    page = sam.get(keywords_page).text
    key = re.search(r'<tr id="row-([0-9a-f]+)"[^>]*data-context="concerns.menu.keywords"', page).group(1)
    response = sam.post(
        keywords_page,
        data={"csrf_token": csrf_token(sam, keywords_page), f"text-{key}": "ofn, 2, saff", f"was-{key}": "x"},
    )
    assert response.status_code == 422
    assert "A keyword cannot be a number (2)" in response.text
    assert "ofn, 2, saff" in response.text
    assert translation("concerns.menu.keywords") is None


def test_proposals_must_be_real_short_and_different_from_what_children_already_get(demo: Flask) -> None:
    sam = staff(SAM)
    english = "Your {role_title} ({role_short}) is {iro_name}."
    assert translations.propose(db.session, "cy", NAME, english, "   ", sam) == [
        "The translation is empty. Type the translation, or leave the box as it was."
    ]
    too_long = translations.propose(db.session, "cy", NAME, english, "a" * 1001, sam)
    assert too_long == ["The translation is 1,001 characters long; keep it to 1,000 or fewer."]
    assert translations.propose(db.session, "cy", NAME, "Not a message here", "Helo", sam) == [
        "This message is not in any flow now, so it cannot be translated."
    ]
    assert (
        translations.propose(
            db.session, "cy", NAME, english, "{iro_name} yw dy {role_title} ({role_short}).", sam
        )
        == []
    )
    assert stored_count() == 0, "the same text as the approved one changes nothing"

    assert translations.propose(db.session, "cy", NAME, english, NEW_WELSH_PO, sam) == []
    db.session.commit()
    assert translation(NAME).status == "needs_review"
    # Typing the approved Welsh again withdraws the proposal: nothing new for children to approve.
    assert (
        translations.propose(
            db.session, "cy", NAME, english, "{iro_name} yw dy {role_title} ({role_short}).", sam
        )
        == []
    )
    db.session.commit()
    assert translation(NAME).status == "approved"
    assert OLD_WELSH in cerys_asks_who_her_iro_is(demo)


def test_english_that_changes_sends_its_welsh_back_for_review_and_the_child_gets_english_with_a_note(
    demo: Flask,
) -> None:
    library = content.current(db.session)[0]
    old = library.flows["who_is_my_iro"]
    text = content.current_text(db.session, FLOW, "who_is_my_iro")
    changed = text.replace(
        'text: "Your {role_title} ({role_short}) is {iro_name}."',
        'text: "Your {role_title} ({role_short}) is called {iro_name}."',
    )
    assert changed != text
    sam = staff(SAM)
    version = content.publish(db.session, FLOW, "who_is_my_iro", changed, sam)
    new = content.store().parse("who_is_my_iro", version.number, changed)
    assert translations.carry_over(db.session, ["en", "cy"], old, new, sam) == 1
    db.session.commit()
    assert translations.carry_over(db.session, ["cy"], old, new, sam) == 0, "made once"

    carried = translation(NAME)
    assert carried.msgid == "Your {role_title} ({role_short}) is called {iro_name}."
    assert (carried.text, carried.approved_text) == ("{iro_name} yw dy {role_title} ({role_short}).", None)
    assert (carried.status, carried.reason) == ("needs_review", "the English changed")

    replies = cerys_asks_who_her_iro_is(demo)
    assert replies[0] == f"Your Swyddog Adolygu Annibynnol (SAA) is called Rhys Evans.\n{NOT_READY}"
    assert replies[1].startswith("Dy SAA sy'n cynnal"), "unchanged messages stay Welsh"

    page = signed_in(demo, SAM).get(PAGE).text
    row = row_html(page, NAME)
    assert "is called {iro_name}" in row and "the English changed" in row
    assert "{iro_name} yw dy {role_title} ({role_short}).</textarea>" in row
    assert "Children get now: the English with a note" in row
    assert "disabled" in row, "Sam published the change, so someone else approves"

    alex = signed_in(demo, ALEX)
    action, fields = approve_form(alex.get(PAGE).text, NAME)
    assert alex.post(action, data=fields).status_code == 302
    assert cerys_asks_who_her_iro_is(demo)[0] == OLD_WELSH


def test_a_drafts_new_english_is_shown_missing_and_can_start_from_the_earlier_welsh(demo: Flask) -> None:
    text = content.current_text(db.session, FLOW, "who_is_my_iro")
    draft = text.replace(
        'text: "You can send a message here for {iro_name}. Staff aim to reply within {reply_time}."',
        'text: "You can send {iro_name} a message here. Staff aim to reply within {reply_time}."',
    )
    assert draft != text
    content.save_draft(db.session, FLOW, "who_is_my_iro", draft, staff(SAM))
    db.session.commit()

    sam = signed_in(demo, SAM)
    page = sam.get(PAGE).text
    row = row_html(page, "who_is_my_iro.contact_here")
    assert "You can send {iro_name} a message here." in row and "In the draft" in row
    assert "Missing: children get the English with a note" in row
    assert "Before the English changed, this was:" in row and "Gelli di anfon neges yma i {iro_name}." in row
    assert "Not in the draft" in page, "the published English it replaces is still listed"
    catalog = export(sam)
    entry = catalog.get(
        "You can send {iro_name} a message here. Staff aim to reply within {reply_time}.",
        context="who_is_my_iro.contact_here",
    )
    assert entry is not None and entry.string == ""
    assert any("New in a draft" in c for c in entry.auto_comments)

    response = sam.post(f"{PAGE}/carry-over", data={"csrf_token": csrf_token(sam, PAGE)})
    assert response.status_code == 302
    assert "Copied 1 earlier translation." in sam.get(response.location).text
    carried = db.session.scalar(
        select(Translation).where(Translation.msgid.startswith("You can send {iro_name} a message here."))
    )
    assert carried.text.startswith("Gelli di anfon neges yma i {iro_name}.")
    assert carried.status == "needs_review" and carried.reason == "the English changed"


def translation_routes(app: Flask) -> list[tuple[str, str]]:
    """Every translations route in the URL map with its methods, filled in with real values."""
    values = {"locale": "cy", "flow_id": "who_is_my_iro", "translation_id": "1"}
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("editor.") and rule.rule.startswith("/flows/translations"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], rule.rule)
            found.extend((method, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"}))
    return found


@pytest.mark.parametrize("who", [PRIYA, GRACE])
def test_iros_and_managers_get_403_on_every_translations_route(demo: Flask, who: str) -> None:
    routes = translation_routes(demo)
    assert len(routes) >= 7, routes
    english = "Your {role_title} ({role_short}) is {iro_name}."
    assert translations.propose(db.session, "cy", NAME, english, NEW_WELSH_PO, staff(SAM)) == []
    db.session.commit()
    client = signed_in(demo, who)
    assert 'href="/flows/translations"' not in client.get("/inbox/").text
    token = csrf_token(client, "/account")
    for method, path in routes:
        if method == "GET":
            response = client.get(path)
        else:
            response = client.post(
                path, data={"csrf_token": token, "file": (BytesIO(b'msgid "a"\nmsgstr "b"\n'), "x.po")}
            )
        assert response.status_code == 403, (method, path, response.status_code)
    assert translation(NAME).status == "needs_review"
    assert stored_count() == 1


def test_the_overview_links_every_flow_and_the_system_messages_for_each_language(demo: Flask) -> None:
    page = signed_in(demo, SAM).get("/flows/translations")
    assert page.status_code == 200
    text = page.text
    assert "Cymraeg" in text
    library = content.current(db.session)[0]
    for flow_id in library.flows:
        assert f'href="/flows/translations/cy/{flow_id}"' in text
    assert 'href="/flows/translations/cy/system-messages"' in text
    assert 'href="/flows/translations/cy.po"' in text
    assert 'enctype="multipart/form-data"' in text and '<label for="po-cy">' in text
    system = signed_in(demo, SAM).get("/flows/translations/cy/system-messages")
    assert system.status_code == 200 and 'data-context="system.keywords_yes"' in system.text
    assert 'lang="cy"' in system.text
    sam = signed_in(demo, SAM)
    for path in (
        "/flows/translations/fr/who_is_my_iro",
        "/flows/translations/en/who_is_my_iro",
        "/flows/translations/cy/no_such_flow",
        "/flows/translations/xx.po",
    ):
        assert sam.get(path).status_code == 404, path


def test_a_translation_the_file_marks_fuzzy_is_english_with_a_note_until_someone_approves_it(
    demo: Flask,
) -> None:
    english = "Your {role_title} ({role_short}) is {iro_name}."
    shipped = content.store().shipped.catalogs.catalogs["cy"]
    shipped.get(english, context=NAME).flags.add("fuzzy")  # as `make translations` marks changed English
    content.store().invalidate()
    replies = cerys_asks_who_her_iro_is(demo)
    assert replies[0] == f"Your Swyddog Adolygu Annibynnol (SAA) is Rhys Evans.\n{NOT_READY}"

    alex = signed_in(demo, ALEX)
    page = alex.get(PAGE).text
    row = row_html(page, NAME)
    assert "Needs review" in row and "the translation file marks it fuzzy" in row
    assert "Approve as it is" in row
    assert export(alex).get(english, context=NAME).fuzzy
    action, fields = approve_form(page, NAME)
    assert alex.post(action, data=fields).status_code == 302
    approved = translation(NAME)
    assert (approved.approved_text, approved.approved_by_id) == (
        "{iro_name} yw dy {role_title} ({role_short}).",
        staff(ALEX).id,
    )
    assert cerys_asks_who_her_iro_is(demo)[0] == OLD_WELSH


def test_a_po_file_over_2_mb_is_refused_unread(demo: Flask) -> None:
    sam = signed_in(demo, SAM)
    catalog = export(sam)
    big = po_bytes(catalog) + b"#" * (2 * 1024 * 1024)
    response = upload(sam, big)
    assert response.status_code == 400
    assert "The file is larger than 2 MB, so it was not read." in response.text
    assert stored_count() == 0


def test_the_flows_page_counts_a_translation_waiting_for_approval_as_needing_review(demo: Flask) -> None:
    english = "Your {role_title} ({role_short}) is {iro_name}."
    assert translations.propose(db.session, "cy", NAME, english, NEW_WELSH_PO, staff(SAM)) == []
    db.session.commit()
    page = signed_in(demo, SAM).get("/flows").text
    row = re.search(r'<tr data-flow="who_is_my_iro">(.*?)</tr>', page, re.S).group(1)
    assert "6 of 7 translated" in row and "1 need review" in row
