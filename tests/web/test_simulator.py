"""The simulator API as CONTRACT.md describes it, through the production conversation service."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from ..conftest import make_app


def say(client: FlaskClient, child: str, text: str) -> dict:
    response = client.post("/simulator/api/messages", json={"child": child, "text": text})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_asking_who_is_my_iro_names_priya_shah(client: FlaskClient) -> None:
    body = say(client, "+447700900001", "who is my IRO")
    text = "\n".join(body["replies"])
    assert "Priya Shah" in text
    assert "Independent Reviewing Officer" in text
    assert "07700 900101" in text
    assert "Your next review meeting is on" in text
    assert body["effects"] == []


def test_the_same_child_is_found_from_a_national_format_number(client: FlaskClient) -> None:
    body = say(client, "07700 900001", "who is my iro?")
    assert "Priya Shah" in "\n".join(body["replies"])


def test_a_welsh_speaking_child_gets_welsh(client: FlaskClient) -> None:
    body = say(client, "+447700900002", "helo")
    text = "\n".join(body["replies"])
    assert "Cerys" in text
    assert "Hi Cerys" not in text
    assert "Ateba gyda rhif" in text or "rhif" in text
    body = say(client, "+447700900002", "1")
    text = "\n".join(body["replies"])
    assert "Rhys Evans" in text
    assert "Swyddog Adolygu Annibynnol" in text
    assert any(
        month in text
        for month in (
            "Ionawr",
            "Chwefror",
            "Mawrth",
            "Ebrill",
            "Mai",
            "Mehefin",
            "Gorffennaf",
            "Awst",
            "Medi",
            "Hydref",
            "Tachwedd",
            "Rhagfyr",
        )
    )


def test_an_unknown_number_learns_nothing_about_anyone(client: FlaskClient) -> None:
    for text in ("who is my IRO", "hi", "when is my review", "Jordan", "1"):
        body = say(client, "+447700900999", text)
        reply = "\n".join(body["replies"]).lower()
        for secret in (
            "priya",
            "shah",
            "rhys",
            "jordan",
            "cerys",
            "review",
            "care",
            "iro",
            "reviewing",
            "social worker",
            "demo council",
        ):
            assert secret not in reply, f"{text!r} revealed {secret!r}: {reply}"
        assert "999" in reply


def test_a_child_without_a_review_date_is_told_honestly(client: FlaskClient) -> None:
    body = say(client, "+447700900003", "who is my iro")
    assert any(r.startswith("Your next review date is not set yet.") for r in body["replies"])


def test_changing_language_is_an_effect_and_sticks(client: FlaskClient) -> None:
    body = say(client, "+447700900001", "LANGUAGE")
    assert "1 English\n2 Cymraeg" in body["replies"][0]
    body = say(client, "+447700900001", "2")
    assert body["effects"] == [{"kind": "locale_changed", "locale": "cy"}]
    assert "Gymraeg" in body["replies"][-1]
    body = say(client, "+447700900001", "menu")
    assert "Jordan" in body["replies"][0] and "Hi Jordan" not in body["replies"][0]


def test_stop_opts_out_then_nothing_is_sent_until_start(client: FlaskClient) -> None:
    body = say(client, "+447700900001", "STOP")
    assert body["effects"] == [{"kind": "opted_out"}]
    assert "START" in body["replies"][0]
    assert say(client, "+447700900001", "who is my iro")["replies"] == []
    body = say(client, "+447700900001", "START")
    assert body["effects"] == [{"kind": "opted_in"}]
    assert "Priya Shah" in "\n".join(say(client, "+447700900001", "who is my iro")["replies"])


def test_a_message_about_being_hurt_gets_the_safety_reply_and_an_urgent_concern(
    client: FlaskClient,
) -> None:
    body = say(client, "+447700900001", "someone at the home hurt me")
    assert body["effects"][0]["kind"] == "concern" and body["effects"][0]["urgent"] is True
    assert len(body["replies"]) == 1
    assert "999" in body["replies"][0] and "01632 960999" in body["replies"][0]


def test_a_repeated_message_id_is_processed_once(client: FlaskClient) -> None:
    payload = {"child": "+447700900001", "text": "who is my iro", "id": "sim-1"}
    first = client.post("/simulator/api/messages", json=payload).get_json()
    again = client.post("/simulator/api/messages", json=payload).get_json()
    assert first["replies"] and not first["duplicate"]
    assert again == {"replies": [], "effects": [], "duplicate": True}


def test_bad_requests_get_a_clear_error(client: FlaskClient) -> None:
    cases = [
        (None, "JSON object"),
        ({"text": "hi"}, '"child"'),
        ({"child": "+447700900001"}, '"text"'),
        ({"child": "+447700900001", "text": 5}, '"text"'),
        ({"child": "+447700900001", "text": "x" * 10_001}, "too long"),
    ]
    for payload, expected in cases:
        response = (
            client.post("/simulator/api/messages", json=payload)
            if payload is not None
            else client.post("/simulator/api/messages", data="not json", content_type="application/json")
        )
        assert response.status_code == 400
        assert expected in response.get_json()["error"]


def test_odd_unicode_is_kept_and_answered(client: FlaskClient) -> None:
    body = say(client, "+447700900001", "wh\u200bo is my \u0406RO \ud800 \u202e")
    assert body["replies"]


def test_the_simulator_page_lists_children_and_loads(client: FlaskClient) -> None:
    page = client.get("/simulator")
    assert page.status_code == 200 and b'aria-live="polite"' in page.data
    children = client.get("/simulator/api/children").get_json()["children"]
    assert [c["phone"] for c in children] == [
        "+447700900001",
        "+447700900002",
        "+447700900003",
        "+447700900999",
    ]


def test_the_simulator_is_not_found_in_production(database_url: str, tmp_path: Path) -> None:
    production: Flask = make_app(database_url, tmp_path, SIMULATOR_ENABLED=False)
    client = production.test_client()
    assert client.get("/simulator").status_code == 404
    assert (
        client.post("/simulator/api/messages", json={"child": "+447700900001", "text": "hi"}).status_code
        == 404
    )


def test_health_check_answers_when_the_database_does(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
