"""Telegram: the webhook (secret header, one processing per update_id) and sending through the Bot API.

Inbound: ``POST /webhooks/telegram`` checks ``X-Telegram-Bot-Api-Secret-Token`` against
``TELEGRAM_WEBHOOK_SECRET`` (Telegram cannot be switched on without it), parses the update with
python-telegram-bot, and hands the words to the conversation service. Replies are written to the
outbox in the same transaction and sent by the worker, so a slow Bot API never holds up a webhook.
Conversation state lives in the database, never in the library's in-memory handlers, so every web
process agrees.

Outbound: python-telegram-bot is asynchronous. Each process gets one event loop in a daemon thread
and one ``Bot`` bound to it; calls are handed over with ``run_coroutine_threadsafe``. (A new loop
per call, with ``asyncio.run``, fails with "Event loop is closed" once a ``Bot`` is reused.)
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Coroutine
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import Forbidden, TelegramError
from telegram.request import HTTPXRequest

from app.config import ConfigurationError
from app.conversations import InboundMessage, handle

log = logging.getLogger(__name__)
bp = Blueprint("telegram", __name__, url_prefix="/webhooks")
rejections: Counter[str] = Counter()

CHANNEL = "telegram"
# Telegram's rule for secret_token: 1-256 characters, A-Z, a-z, 0-9, _ and -.
SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
# Slash commands Telegram apps offer, as the words the conversation understands.
SLASH_COMMANDS = {"help": "help", "menu": "menu", "stop": "stop", "language": "language", "back": "back"}
BUTTON_LABEL_CHARS = 60
T = TypeVar("T")


def enabled(config: Any) -> bool:
    return bool(config.get("TELEGRAM_BOT_TOKEN"))


def check_settings(config: Any) -> None:
    """Refuse to start with a bot token but no valid webhook secret: never take unsigned updates."""
    if not enabled(config):
        return
    secret = config.get("TELEGRAM_WEBHOOK_SECRET") or ""
    if not SECRET_PATTERN.match(secret):
        raise ConfigurationError(
            "Refusing to start: TELEGRAM_BOT_TOKEN is set but TELEGRAM_WEBHOOK_SECRET is "
            + ("missing" if not secret else "not 1-256 characters of A-Z, a-z, 0-9, _ and -")
            + ". Without it anyone could post updates as a child. Make one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


# -- inbound --------------------------------------------------------------------------------------


def _attachment(message: Message) -> str | None:
    """What a message carried besides words, in a word staff understand."""
    for kind in ("photo", "sticker", "voice", "video", "video_note", "audio", "document", "animation"):
        if getattr(message, kind, None):
            return kind.replace("_", " ")
    if message.location or message.contact:
        return "location" if message.location else "contact"
    return None


def _words(text: str) -> str:
    """Telegram slash commands as plain words ("/help@SomeBot" is "help"); /start is kept for linking."""
    found = re.match(r"^\s*/(\w+)(?:@\w+)?\s*$", text)
    if found and found.group(1).lower() in SLASH_COMMANDS:
        return SLASH_COMMANDS[found.group(1).lower()]
    return text


def parse(update: Update) -> tuple[InboundMessage | None, str | None]:
    """The inbound message in an update (None for updates that carry none) and a callback id."""
    callback = update.callback_query
    if callback is not None:
        chat = callback.message.chat if callback.message else None
        if chat is None or chat.type != "private":
            return None, callback.id
        inbound = InboundMessage(
            channel=CHANNEL,
            sender=str(chat.id),
            text=callback.data or "",
            provider_id=f"update-{update.update_id}",
            locale_hint=callback.from_user.language_code,
        )
        return inbound, callback.id
    message = update.message or update.edited_message
    if message is None or message.chat.type != "private":
        # Groups and channels are not a child's private chat: nothing in them is linked to anyone.
        return None, None
    text = message.text or message.caption or ""
    return (
        InboundMessage(
            channel=CHANNEL,
            sender=str(message.chat.id),
            text=_words(text),
            provider_id=f"update-{update.update_id}",
            attachment=_attachment(message),
            locale_hint=message.from_user.language_code if message.from_user else None,
        ),
        None,
    )


def verify() -> None:
    """404 unless Telegram is on; 403 unless the secret header matches (compared in constant time)."""
    config = current_app.config
    if not enabled(config):
        abort(404)
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    if not hmac.compare_digest(given.encode(), config["TELEGRAM_WEBHOOK_SECRET"].encode()):
        reason = "missing" if not given else "wrong"
        rejections[reason] += 1
        log.warning(
            "rejected a Telegram update with a %s secret token (%d so far); check TELEGRAM_WEBHOOK_SECRET "
            "and run `flask --app app telegram set-webhook` again",
            reason,
            sum(rejections.values()),
        )
        abort(403)


@bp.post("/telegram")
def inbound() -> Response | tuple[str, int]:
    """A Telegram update: handled once per update_id; replies go through the outbox."""
    verify()
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("update_id"), int):
        abort(400, "a Telegram Update JSON object with an integer update_id is required")
    try:
        update = Update.de_json(payload, None)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        abort(400, f"not a Telegram update: {type(error).__name__}")
    message, callback_id = parse(update)
    if message is not None:
        handle(message, inline=False)
    else:
        log.info("Telegram update %s carries no private message; nothing to do", update.update_id)
    if callback_id:
        # Answering in the webhook's response stops the button's spinner without another request.
        return jsonify(method="answerCallbackQuery", callback_query_id=callback_id)
    return "", 200


# -- outbound -------------------------------------------------------------------------------------


class BotRunner:
    """One ``Bot`` on one long-lived event loop in a daemon thread, for synchronous callers."""

    def __init__(self, token: str, base_url: str, timeout: float = 10.0):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="telegram-bot", daemon=True)
        self.thread.start()
        request = HTTPXRequest(
            connection_pool_size=8, read_timeout=timeout, write_timeout=timeout, connect_timeout=timeout
        )
        self.bot = Bot(token, base_url=f"{base_url.rstrip('/')}/bot", request=request)
        self.timeout = timeout
        self.pid = os.getpid()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a Bot coroutine on the runner's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=self.timeout * 3)

    def close(self) -> None:
        """Close the Bot's connections and the loop (tests; a worker process just exits)."""
        try:
            # Bot.shutdown() only closes what Bot.initialize() opened; sending never needs
            # initialize() (it would cost a getMe call), so close the HTTP client directly.
            self.call(self.bot.request.shutdown())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)
            if not self.thread.is_alive():
                self.loop.close()


def runner(app: Flask) -> BotRunner:
    """This process's runner (made after a fork, never shared across processes)."""
    existing: BotRunner | None = app.extensions.get("reviewline.telegram")
    if existing is None or existing.pid != os.getpid():
        existing = BotRunner(
            app.config["TELEGRAM_BOT_TOKEN"],
            app.config.get("TELEGRAM_API_BASE_URL") or "https://api.telegram.org",
            float(app.config.get("PROVIDER_TIMEOUT_SECONDS") or 10),
        )
        app.extensions["reviewline.telegram"] = existing
    return existing


def keyboard(buttons: list[list[str]] | None) -> InlineKeyboardMarkup | None:
    """Choices as buttons, one per row; pressing one sends its number, as typing it would."""
    if not buttons:
        return None
    rows = []
    for number, label in buttons:
        text = f"{number}. {label}"
        if len(text) > BUTTON_LABEL_CHARS:
            text = text[: BUTTON_LABEL_CHARS - 3].rstrip() + "..."
        rows.append([InlineKeyboardButton(text, callback_data=number)])
    return InlineKeyboardMarkup(rows)


def telegram_sender(app: Flask):  # type: ignore[no-untyped-def]
    """A sender for the outbox worker, or None if Telegram is not configured."""
    if not enabled(app.config):
        return None
    from app.delivery import DeliveryError, RecipientOptedOut

    bot_runner = runner(app)

    def send(row: Any, identity: Any) -> str:
        try:
            sent = bot_runner.call(
                bot_runner.bot.send_message(
                    chat_id=int(identity.address),
                    text=row.message.body,
                    reply_markup=keyboard(row.buttons),
                )
            )
        except Forbidden as error:
            # The child blocked the bot: like STOP, nothing more is tried until they send /start.
            raise RecipientOptedOut(f"the chat blocked the bot: {error}"[:480]) from error
        except (TelegramError, TimeoutError) as error:
            raise DeliveryError(f"{type(error).__name__}: {error}"[:480]) from error
        # Telegram numbers messages within each chat, so its number alone would repeat between
        # children (and clash in the message table's unique provider id); ours makes it unique
        # without storing the chat id in clear.
        return f"out-{row.message_id}-{sent.message_id}"

    return send


def set_webhook(app: Flask) -> str:
    """Register ``PUBLIC_BASE_URL/webhooks/telegram`` with the secret token; returns the URL."""
    base = app.config.get("PUBLIC_BASE_URL")
    if not base:
        raise ConfigurationError("PUBLIC_BASE_URL must be set: it is the address Telegram will post to.")
    url = base.rstrip("/") + "/webhooks/telegram"
    bot_runner = runner(app)
    bot_runner.call(
        bot_runner.bot.set_webhook(
            url=url, secret_token=app.config["TELEGRAM_WEBHOOK_SECRET"], allowed_updates=ALLOWED_UPDATES
        )
    )
    return url


def bot_username(app: Flask) -> str:
    """The bot's @username (for t.me links), asked of the Bot API once per process."""
    cached = app.extensions.get("reviewline.telegram_username")
    if cached:
        return cached
    bot_runner = runner(app)
    me = bot_runner.call(bot_runner.bot.get_me())
    app.extensions["reviewline.telegram_username"] = me.username
    return me.username
