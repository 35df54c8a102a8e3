"""Telegram: the real python-telegram-bot library against a fake Bot API server on 127.0.0.1.

Updates are posted to the webhook as Telegram would post them; replies leave through the outbox
worker and the library's ``Bot``, and are checked where Telegram would receive them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.channels.telegram import telegram_sender
from app.config import ConfigurationError
from app.delivery import deliver_due
from app.extensions import db
from app.linking import MAX_FAILED_TRIES, issue_code
from app.models import ChannelIdentity, Child, Concern, Message, OutboxMessage, StaffUser, utcnow
from tests.conftest import make_app
from tests.fakes.telegram_server import FakeBotApi

SECRET = "test-webhook-secret_1"
CHAT = 5550001
OTHER_CHAT = 5550002


@pytest.fixture
def fake(fake_bot_api: FakeBotApi) -> FakeBotApi:
    return fake_bot_api


@pytest.fixture
def tg_app(demo: Flask, fake: FakeBotApi) -> Iterator[Flask]:
    demo.config.update(
        TELEGRAM_BOT_TOKEN=fake.token,
        TELEGRAM_WEBHOOK_SECRET=SECRET,
        TELEGRAM_API_BASE_URL=fake.url,
        PROVIDER_TIMEOUT_SECONDS=0.5,
        PUBLIC_BASE_URL="https://reviewline.example.org",
    )
    yield demo
    runner = demo.extensions.pop("reviewline.telegram", None)
    if runner is not None:
        runner.close()


@pytest.fixture
def tg(tg_app: Flask) -> FlaskClient:
    return tg_app.test_client()


_update_ids = iter(range(1000, 100_000))


def update(text: str | None, chat: int = CHAT, update_id: int | None = None, **extra: Any) -> dict[str, Any]:
    language = extra.pop("language_code", "en")
    message: dict[str, Any] = {
        "message_id": 1,
        "date": 1_790_000_000,
        "chat": {"id": chat, "type": extra.pop("chat_type", "private"), "first_name": "J"},
        "from": {"id": chat, "is_bot": False, "first_name": "J", "language_code": language},
        **extra,
    }
    if text is not None:
        message["text"] = text
    return {"update_id": update_id if update_id is not None else next(_update_ids), "message": message}


def post(client: FlaskClient, payload: Any, secret: str | None = SECRET):
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return client.post("/webhooks/telegram", json=payload, headers=headers)


def jordan() -> Child:
    return ChannelIdentity.find(db.session, "sms", "+447700900001").child


def new_code(child: Child | None = None) -> str:
    child = child or jordan()
    staff = db.session.scalar(select(StaffUser).where(StaffUser.email == "priya.shah@demo.invalid"))
    code = issue_code(db.session, child, staff, utcnow())
    db.session.commit()
    return code


def deliver(app: Flask, **kwargs: Any) -> None:
    """Run the outbox worker once for Telegram, with the worker's default sends in flight at once."""
    kwargs.setdefault("concurrency", app.config["DELIVERY_CONCURRENCY"])
    deliver_due(db.session, {"telegram": telegram_sender(app)}, **kwargs)


def sent_texts(fake: FakeBotApi) -> list[str]:
    return [m["text"] for m in fake.sent()]


def link(client: FlaskClient, app: Flask, chat: int = CHAT) -> None:
    response = post(client, update(f"/start {new_code()}", chat=chat))
    assert response.status_code == 200
    deliver(app)


def test_start_with_a_code_links_the_chat_and_who_is_my_iro_reaches_the_bot_api(
    tg: FlaskClient, tg_app: Flask, fake: FakeBotApi
) -> None:
    link(tg, tg_app)
    assert "This chat is now set up for you" in sent_texts(fake)[0]
    menu = fake.sent()[-1]
    buttons = json.loads(menu["reply_markup"])["inline_keyboard"]
    assert buttons[0][0]["callback_data"] == "1" and "Who is my IRO" in buttons[0][0]["text"]
    identity = ChannelIdentity.find(db.session, "telegram", str(CHAT))
    assert identity is not None and identity.child.first_name == "Jordan"

    assert post(tg, update("who is my IRO")).status_code == 200
    assert not any("Priya Shah" in t for t in sent_texts(fake)), "replies leave through the worker"
    deliver(tg_app)
    assert any("Priya Shah" in text for text in sent_texts(fake))
    assert all(int(m["chat_id"]) == CHAT for m in fake.sent())


def test_a_wrong_or_missing_secret_is_refused_and_nothing_is_stored(tg: FlaskClient) -> None:
    assert post(tg, update("who is my IRO"), secret="not-the-secret").status_code == 403
    assert post(tg, update("who is my IRO"), secret=None).status_code == 403
    assert db.session.scalar(select(func.count()).select_from(Message)) == 0


def test_telegram_is_off_without_a_token(client: FlaskClient) -> None:
    assert post(client, update("hello")).status_code == 404


@pytest.mark.parametrize("secret", [None, "", "has spaces", "x" * 257])
def test_the_service_refuses_to_enable_telegram_without_a_valid_secret(
    tmp_path: Path, secret: str | None
) -> None:
    with pytest.raises(ConfigurationError, match="TELEGRAM_WEBHOOK_SECRET"):
        make_app(
            f"sqlite:///{tmp_path / 'x.db'}",
            tmp_path,
            TELEGRAM_BOT_TOKEN="1:abc",
            TELEGRAM_WEBHOOK_SECRET=secret,
        )


def test_a_repeated_update_id_is_processed_once(tg: FlaskClient, tg_app: Flask, fake: FakeBotApi) -> None:
    link(tg, tg_app)
    payload = update("who is my IRO")
    assert post(tg, payload).status_code == 200
    deliver(tg_app)
    answered = len(fake.sent())
    assert post(tg, payload).status_code == 200
    deliver(tg_app)
    assert len(fake.sent()) == answered, "the repeat was not answered again"
    inbound = db.session.scalar(
        select(func.count()).where(
            Message.direction == "in", Message.provider_id == f"update-{payload['update_id']}"
        )
    )
    assert inbound == 1


def test_a_wrong_used_or_expired_code_reveals_nothing_and_guessing_is_rate_limited(
    tg: FlaskClient, tg_app: Flask, fake: FakeBotApi
) -> None:
    used = new_code()
    post(tg, update(f"/start {used}", chat=OTHER_CHAT))
    from app.models import LinkCode

    expired = new_code()
    for row in db.session.scalars(select(LinkCode).where(LinkCode.used_at.is_(None))):
        row.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    replies = []
    for attempt in ("/start WRONGCODE22", f"/start {used}", f"/start {expired}"):
        post(tg, update(attempt))
        deliver(tg_app)
        replies.append([m for m in fake.sent() if int(m["chat_id"]) == CHAT][-1]["text"])
    assert len(set(replies)) == 1 and "did not work" in replies[0]
    assert "Jordan" not in replies[0] and "Priya" not in replies[0]
    assert ChannelIdentity.find(db.session, "telegram", str(CHAT)) is None

    for _ in range(MAX_FAILED_TRIES - 3):
        post(tg, update("/start STILLWRONG2"))
    good = new_code()
    post(tg, update(f"/start {good}"))
    deliver(tg_app)
    assert "too many tries" in fake.sent()[-1]["text"]
    assert ChannelIdentity.find(db.session, "telegram", str(CHAT)) is None, "even a good code waits"
    # The good code was not used up by the refused try: another chat can still use it.
    post(tg, update(f"/start {good}", chat=5550003))
    assert ChannelIdentity.find(db.session, "telegram", "5550003") is not None


def test_an_unlinked_chat_learns_nothing_about_any_child(
    tg: FlaskClient, tg_app: Flask, fake: FakeBotApi
) -> None:
    post(tg, update("who is my IRO"))
    post(tg, update("helo", chat=OTHER_CHAT, language_code="cy"))
    deliver(tg_app)
    # Two chats: their replies may go out in either order.
    to = {str(m["chat_id"]): m["text"] for m in fake.sent()}
    english, welsh = to[str(CHAT)], to[str(OTHER_CHAT)]
    assert len(fake.sent()) == 2
    assert "/start" in english and "999" in english
    assert "Priya" not in english and "Jordan" not in english
    assert "/start" in welsh and "ffonia 999" in welsh.lower()


def test_a_button_press_answers_the_menu_and_stops_the_spinner(
    tg: FlaskClient, tg_app: Flask, fake: FakeBotApi
) -> None:
    link(tg, tg_app)
    press = {
        "update_id": next(_update_ids),
        "callback_query": {
            "id": "cbq-1",
            "from": {"id": CHAT, "is_bot": False, "first_name": "J", "language_code": "en"},
            "chat_instance": "x",
            "data": "1",
            "message": {
                "message_id": 7,
                "date": 1_790_000_000,
                "chat": {"id": CHAT, "type": "private"},
                "text": "menu",
            },
        },
    }
    response = post(tg, press)
    assert response.get_json() == {"method": "answerCallbackQuery", "callback_query_id": "cbq-1"}
    deliver(tg_app)
    assert "Priya Shah" in sent_texts(fake)[-1] or any("Priya Shah" in t for t in sent_texts(fake)[-3:])


def test_a_photo_is_kept_and_the_child_is_asked_for_words(
    tg: FlaskClient, tg_app: Flask, fake: FakeBotApi
) -> None:
    link(tg, tg_app)
    photo = [{"file_id": "f1", "file_unique_id": "u1", "width": 10, "height": 10}]
    post(tg, update(None, photo=photo))
    deliver(tg_app)
    assert "only read words" in sent_texts(fake)[-1]
    stored = db.session.scalars(select(Message).where(Message.direction == "in")).all()
    assert stored[-1].body == "[photo]" and stored[-1].child_id is not None


def test_urgent_words_get_the_safety_reply_and_an_urgent_flag(
    tg: FlaskClient, tg_app: Flask, fake: FakeBotApi
) -> None:
    link(tg, tg_app)
    post(tg, update("i am not safe at home"))
    deliver(tg_app)
    assert "999" in sent_texts(fake)[-1]
    assert db.session.scalar(select(func.count()).where(Concern.urgent.is_(True))) == 1


def test_malformed_updates_are_clear_errors_and_groups_are_ignored(tg: FlaskClient) -> None:
    assert post(tg, {"no": "update"}).status_code == 400
    assert post(tg, {"update_id": 5, "message": {"chat": "nonsense"}}).status_code == 400
    assert (
        tg.post(
            "/webhooks/telegram", data="not json", headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
        ).status_code
        == 400
    )
    assert post(tg, update("/start ABC", chat=-100123, chat_type="group")).status_code == 200
    assert db.session.scalar(select(func.count()).select_from(Message)) == 0


def test_a_child_who_blocked_the_bot_is_opted_out_until_they_start_again(
    tg: FlaskClient, tg_app: Flask, fake: FakeBotApi
) -> None:
    link(tg, tg_app)
    fake.blocked.add(str(CHAT))
    post(tg, update("who is my IRO"))
    deliver(tg_app)
    identity = ChannelIdentity.find(db.session, "telegram", str(CHAT))
    assert identity.opted_out
    fake.blocked.clear()
    deliver(tg_app, now=utcnow() + timedelta(minutes=5))
    assert not any("Priya Shah" in t for t in sent_texts(fake)), "held while opted out"
    post(tg, update("/start"))
    db.session.refresh(identity)
    assert not identity.opted_out
    deliver(tg_app, now=utcnow() + timedelta(minutes=10))
    assert any("Welcome back" in t for t in sent_texts(fake))


def test_an_outage_at_the_bot_api_delays_but_loses_nothing_and_sends_nothing_twice(
    tg: FlaskClient, tg_app: Flask, fake: FakeBotApi
) -> None:
    link(tg, tg_app)
    before = len(fake.sent())
    post(tg, update("who is my IRO"))
    queued = db.session.scalar(select(func.count()).where(OutboxMessage.status == "pending"))
    fake.fail_next, fake.hang_next, fake.hang_seconds = 2, 2, 1.5
    now = utcnow()
    for minute in range(0, 60, 2):
        deliver(tg_app, now=now + timedelta(minutes=minute))
    texts = sent_texts(fake)[before:]
    assert len(texts) == queued and len(set(texts)) == len(texts)
    assert any("Priya Shah" in t for t in texts)


def test_set_webhook_registers_the_public_url_with_the_secret(tg_app: Flask, fake: FakeBotApi) -> None:
    result = tg_app.test_cli_runner().invoke(args=["telegram", "set-webhook"])
    assert result.exit_code == 0, result.output
    ((method, params),) = [c for c in fake.calls if c[0] == "setWebhook"]
    assert params["url"] == "https://reviewline.example.org/webhooks/telegram"
    assert params["secret_token"] == SECRET


def test_staff_issue_a_link_code_with_a_deep_link(tg: FlaskClient, tg_app: Flask, fake: FakeBotApi) -> None:
    child = jordan()
    result = tg_app.test_cli_runner().invoke(
        args=["telegram", "link-code", str(child.id), "--staff", "priya.shah@demo.invalid"]
    )
    assert result.exit_code == 0, result.output
    link_line = next(line for line in result.output.splitlines() if line.startswith("Link: "))
    assert link_line.startswith("Link: https://t.me/ReviewlineDemoBot?start=")
    code = link_line.rsplit("=", 1)[1]
    post(tg, update(f"/start {code}"))
    assert ChannelIdentity.find(db.session, "telegram", str(CHAT)).child_id == child.id


def test_stop_on_telegram_is_confirmed_and_nothing_queued_before_it_goes_out_later(
    tg: FlaskClient, tg_app: Flask, fake: FakeBotApi
) -> None:
    link(tg, tg_app)
    fake.fail_next = 1_000  # the Bot API is down: the answer to "who is my IRO" waits in the outbox
    post(tg, update("who is my IRO"))
    deliver(tg_app)
    fake.fail_next = 0
    post(tg, update("/stop"))
    deliver(tg_app, now=utcnow() + timedelta(minutes=5))
    assert "You will not get any more messages" in sent_texts(fake)[-1], "the STOP reply itself is sent"
    post(tg, update("/start"))
    deliver(tg_app, now=utcnow() + timedelta(minutes=30))
    texts = sent_texts(fake)
    assert "Welcome back" in texts[-1]
    assert not any("Priya Shah" in t for t in texts), "what was queued before STOP never arrives"
    cancelled = db.session.scalars(select(OutboxMessage).where(OutboxMessage.status == "cancelled")).all()
    assert cancelled and all(row.message.status == "cancelled" for row in cancelled)
