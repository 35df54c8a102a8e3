"""Twilio SMS inbound webhook: signatures checked with the twilio library, TwiML replies, once per sid."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from app.channels import twilio_sms
from app.extensions import db
from app.models import Message

TOKEN = "test-auth-token"


@pytest.fixture
def sms(demo: Flask) -> FlaskClient:
    demo.config["TWILIO_AUTH_TOKEN"] = TOKEN
    return demo.test_client()


def form(text: str, sid: str = "SM0001", sender: str = "+447700900001") -> dict[str, str]:
    return {"From": sender, "To": "+447700900500", "Body": text, "MessageSid": sid, "AccountSid": "AC123"}


def post(
    client: FlaskClient,
    data: dict[str, str],
    url: str = "http://localhost/webhooks/twilio/sms",
    signature: str | None = None,
    path: str = "/webhooks/twilio/sms",
    **kwargs: object,
):
    if signature is None:
        signature = RequestValidator(TOKEN).compute_signature(url, data)
    return client.post(path, data=data, headers={"X-Twilio-Signature": signature}, **kwargs)


def messages_in(response_xml: bytes) -> list[str]:
    root = ET.fromstring(response_xml)
    assert root.tag == "Response"
    return [m.text or "" for m in root.findall("Message")]


def inbound_count() -> int:
    return db.session.scalar(select(func.count()).where(Message.direction == "in"))


def test_a_signed_message_is_answered_with_twiml(sms: FlaskClient) -> None:
    response = post(sms, form("who is my IRO"))
    assert response.status_code == 200 and response.mimetype == "application/xml"
    assert any("Priya Shah" in m for m in messages_in(response.data))


def test_a_national_format_sender_is_the_same_child(sms: FlaskClient) -> None:
    response = post(sms, form("who is my iro", sender="07700 900001"))
    assert any("Priya Shah" in m for m in messages_in(response.data))


@pytest.mark.parametrize("signature", ["", "bm90LXRoZS1zaWduYXR1cmU="])
def test_a_missing_or_wrong_signature_is_refused_and_nothing_is_stored(
    sms: FlaskClient, signature: str
) -> None:
    before = sum(twilio_sms.rejections.values())
    response = post(sms, form("who is my IRO"), signature=signature)
    assert response.status_code == 403
    assert inbound_count() == 0
    assert sum(twilio_sms.rejections.values()) == before + 1


def test_a_signature_for_other_words_is_refused(sms: FlaskClient) -> None:
    signature = RequestValidator(TOKEN).compute_signature(
        "http://localhost/webhooks/twilio/sms", form("hello")
    )
    assert post(sms, form("tampered"), signature=signature).status_code == 403


def test_a_query_string_and_a_port_are_part_of_what_is_signed(sms: FlaskClient) -> None:
    url = "http://localhost:8080/webhooks/twilio/sms?tenant=demo"
    data = form("who is my iro")
    response = post(
        sms, data, url=url, path="/webhooks/twilio/sms?tenant=demo", base_url="http://localhost:8080"
    )
    assert response.status_code == 200


def test_behind_a_proxy_the_public_url_is_what_twilio_signed(sms: FlaskClient, demo: Flask) -> None:
    demo.config["PUBLIC_BASE_URL"] = "https://reviewline.example.org"
    data = form("who is my iro", sid="SMproxy")
    assert post(sms, data, url="https://reviewline.example.org/webhooks/twilio/sms").status_code == 200
    assert post(sms, form("hi", sid="SMproxy2")).status_code == 403  # signed for the internal URL


def test_a_signature_for_the_url_with_its_default_port_is_accepted_too(sms: FlaskClient, demo: Flask) -> None:
    # Twilio sometimes signs "https://host:443/..." for a webhook configured as "https://host/...".
    demo.config["PUBLIC_BASE_URL"] = "https://reviewline.example.org"
    data = form("who is my iro", sid="SMport")
    signed_with_port = "https://reviewline.example.org:443/webhooks/twilio/sms"
    assert post(sms, data, url=signed_with_port).status_code == 200
    other_port = "https://reviewline.example.org:8443/webhooks/twilio/sms"
    assert post(sms, form("hi", sid="SMport2"), url=other_port).status_code == 403  # another URL


def test_the_url_is_signed_as_the_twilio_library_reads_it(sms: FlaskClient, demo: Flask) -> None:
    # The library reads the scheme in lower case: a signature over the URL as written differs.
    demo.config["PUBLIC_BASE_URL"] = "HTTPS://reviewline.example.org"
    as_written = "HTTPS://reviewline.example.org/webhooks/twilio/sms"
    assert post(sms, form("hi", sid="SMcase1"), url=as_written).status_code == 403
    as_read = "https://reviewline.example.org/webhooks/twilio/sms"
    assert post(sms, form("who is my iro", sid="SMcase2"), url=as_read).status_code == 200


def test_a_messaging_service_sender_is_accepted(sms: FlaskClient) -> None:
    data = {**form("who is my iro", sid="SMsvc"), "MessagingServiceSid": "MG123", "To": "MG123"}
    assert post(sms, data).status_code == 200


def test_a_repeated_message_sid_is_processed_once_and_answered_empty(sms: FlaskClient) -> None:
    first = post(sms, form("who is my iro", sid="SMdup"))
    again = post(sms, form("who is my iro", sid="SMdup"))
    assert messages_in(first.data) and messages_in(again.data) == []
    assert inbound_count() == 1


def test_a_form_without_sender_or_sid_is_a_clear_error(sms: FlaskClient) -> None:
    data = {"Body": "hi", "AccountSid": "AC123"}
    response = post(sms, data)
    assert response.status_code == 400 and b"MessageSid" in response.data


def test_sms_is_off_without_credentials(demo: Flask) -> None:
    assert demo.test_client().post("/webhooks/twilio/sms", data=form("hi")).status_code == 404


def test_the_same_message_sid_arriving_twice_at_once_is_processed_once(sms: FlaskClient, demo: Flask) -> None:
    import threading

    data = form("who is my iro", sid="SMrace")
    signature = RequestValidator(TOKEN).compute_signature("http://localhost/webhooks/twilio/sms", data)
    barrier = threading.Barrier(2)
    answers: list[list[str]] = []

    def deliver() -> None:
        client = demo.test_client()
        barrier.wait()
        response = client.post("/webhooks/twilio/sms", data=data, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 200
        answers.append(messages_in(response.data))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(a) > 0 for a in answers) == [False, True]
    assert inbound_count() == 1


def test_stop_as_twilio_reports_it_opts_out_with_an_empty_reply(sms: FlaskClient) -> None:
    from app.models import ChannelIdentity, Concern

    # Twilio's opt-out handling recognised the keyword, answered the child itself, and will block
    # anything we send: our TwiML must be empty, and the child is opted out here too.
    response = post(sms, {**form("OPTOUT", sid="SM-stop"), "OptOutType": "STOP"})
    assert response.status_code == 200 and messages_in(response.data) == []
    assert ChannelIdentity.find(db.session, "sms", "+447700900001").opted_out
    assert db.session.scalar(select(Concern.category)) == "opted_out"  # the IRO sees it
    quiet = post(sms, form("who is my iro", sid="SM-after"))
    assert messages_in(quiet.data) == [], "nothing is sent to an opted-out child"
    back = post(sms, {**form("YES", sid="SM-start"), "OptOutType": "START"})
    assert any("Welcome back" in m for m in messages_in(back.data))
    assert not ChannelIdentity.find(db.session, "sms", "+447700900001").opted_out
    again = post(sms, form("who is my iro", sid="SM-again"))
    assert any("Priya Shah" in m for m in messages_in(again.data))


def test_help_is_answered_with_the_emergency_line(sms: FlaskClient) -> None:
    response = post(sms, {**form("INFO", sid="SM-help"), "OptOutType": "HELP"})
    (reply,) = messages_in(response.data)
    assert "999" in reply and "STOP" in reply


@pytest.fixture
def broken(monkeypatch: pytest.MonkeyPatch) -> None:
    """Handling fails part-way (a bug, or a clash that kept happening): nothing of it was written."""

    def fail(message: object) -> None:
        raise RuntimeError("a bug while handling")

    monkeypatch.setattr(twilio_sms, "handle", fail)


def test_a_message_that_could_not_be_handled_is_kept_for_staff_with_a_sorry_reply(
    sms: FlaskClient, broken: None
) -> None:
    """Twilio never sends an SMS webhook again after a 500: the message is kept, not lost."""
    from app.models import Concern

    response = post(sms, form("can i see my brother this weekend", sid="SMbroken"))
    assert response.status_code == 200
    [reply] = messages_in(response.data)
    assert "something went wrong" in reply.lower() and "999" in reply
    stored = db.session.scalar(select(Message).where(Message.provider_id == "SMbroken"))
    assert stored is not None and stored.body == "can i see my brother this weekend"
    assert stored.child_id is not None
    [concern] = db.session.scalars(select(Concern)).all()
    assert (concern.category, concern.urgent, concern.message_id) == ("not_handled", False, stored.id)
    # Twilio's copy of the same message is still a duplicate.
    again = post(sms, form("can i see my brother this weekend", sid="SMbroken"))
    assert again.status_code == 200 and messages_in(again.data) == []
    assert inbound_count() == 1


def test_a_risk_in_a_message_that_could_not_be_handled_still_gets_the_safety_reply(
    sms: FlaskClient, broken: None
) -> None:
    from app.models import Concern

    response = post(sms, form("he hits me when im home", sid="SMbroken-risk"))
    [reply] = messages_in(response.data)
    assert "999" in reply and "something went wrong" not in reply.lower()
    concerns = db.session.scalars(select(Concern).order_by(Concern.id)).all()
    assert [(c.category, c.urgent) for c in concerns][-1] == ("not_handled", False)
    assert any(c.urgent for c in concerns)
