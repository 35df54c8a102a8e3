"""A fake Telegram Bot API server on 127.0.0.1: the real python-telegram-bot ``Bot`` talks to it.

It answers ``/bot<token>/<method>`` like the Bot API (``{"ok": true, "result": ...}``), records
every call, and can fail: ``fail_next`` answers 500, ``hang_next`` waits ``hang_seconds`` before
answering (longer than the client's timeout), ``blocked`` answers 403 for chats that blocked the bot.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from tests.fakes import whole_body

BOT_USER = {"id": 777000, "is_bot": True, "first_name": "Reviewline", "username": "ReviewlineDemoBot"}


@dataclass
class FakeBotApi:
    token: str = "123456:TEST-token"
    url: str = ""  # set by start()
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail_next: int = 0
    hang_next: int = 0
    hang_seconds: float = 2.0
    blocked: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sent(self) -> list[dict[str, Any]]:
        """Every accepted sendMessage, in order."""
        return [params for method, params in self.calls if method == "sendMessage"]

    def start(self) -> str:
        fake = self
        ids: dict[int, itertools.count[int]] = {}  # as Telegram does: numbered within each chat

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def answer(self, status: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = whole_body(self)
                if body is None:
                    return
                raw = body.decode()
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    params = json.loads(raw or "{}")
                else:
                    params = {k: v[0] for k, v in parse_qs(raw).items()}
                prefix = f"/bot{fake.token}/"
                if not self.path.startswith(prefix):
                    self.answer(404, {"ok": False, "error_code": 404, "description": "Not Found"})
                    return
                method = self.path[len(prefix) :]
                with fake.lock:
                    failing, hanging = fake.fail_next > 0, fake.fail_next <= 0 and fake.hang_next > 0
                    fake.fail_next -= failing
                    fake.hang_next -= hanging
                if hanging:
                    time.sleep(fake.hang_seconds)
                    self.answer(504, {"ok": False, "error_code": 504, "description": "Gateway Timeout"})
                    return
                if failing:
                    self.answer(500, {"ok": False, "error_code": 500, "description": "Internal Server Error"})
                    return
                if method == "sendMessage" and str(params.get("chat_id")) in fake.blocked:
                    self.answer(
                        403,
                        {
                            "ok": False,
                            "error_code": 403,
                            "description": "Forbidden: bot was blocked by the user",
                        },
                    )
                    return
                with fake.lock:
                    fake.calls.append((method, params))
                if method == "getMe":
                    result: Any = BOT_USER
                elif method == "sendMessage":
                    chat_id = int(params["chat_id"])
                    result = {
                        "message_id": next(ids.setdefault(chat_id, itertools.count(1))),
                        "date": int(time.time()),
                        "chat": {"id": chat_id, "type": "private"},
                        "from": BOT_USER,
                        "text": params.get("text", ""),
                    }
                else:  # setWebhook, answerCallbackQuery, deleteWebhook ...
                    result = True
                self.answer(200, {"ok": True, "result": result})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
