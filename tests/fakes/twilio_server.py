"""A fake Twilio REST server on 127.0.0.1: a real HTTP server the official client talks to."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from tests.fakes import whole_body

UNSUBSCRIBED = {
    "code": 21610,
    "message": "Attempt to send to unsubscribed recipient",
    "more_info": "https://www.twilio.com/docs/errors/21610",
    "status": 400,
}


@dataclass
class FakeTwilio:
    """Records every accepted message in ``messages``; failures can be switched on.

    - ``fail_next``: the next N requests answer 500 (nothing recorded);
    - ``hang_next``: the next N requests get no answer for ``hang_seconds`` (longer than the
      client's timeout), then the connection is closed; nothing recorded;
    - ``unsubscribed``: "To" numbers answered 400 with Twilio's code 21610 (the number texted STOP);
    - ``delay_seconds``: every request waits this long before it is handled (a slow provider);
    - ``on_accept``: called with each accepted message before the answer is sent.
    """

    url: str = ""  # set by start()

    messages: list[dict[str, str]] = field(default_factory=list)
    fail_next: int = 0
    hang_next: int = 0
    hang_seconds: float = 5.0
    unsubscribed: set[str] = field(default_factory=set)
    delay_seconds: float = 0.0
    # Called with each accepted message before the answer goes back (to kill a worker there).
    on_accept: Callable[[dict[str, str]], None] | None = None
    requests: int = 0
    active: int = 0  # requests being handled now
    peak_active: int = 0  # the most handled at once
    # "To" numbers that ever had two requests in flight at the same moment.
    overlaps: list[str] = field(default_factory=list)
    to_in_flight: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Set on stop, so hanging and delayed requests end with the server.
    stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> str:
        fake = self
        sids = itertools.count(1)

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                raw = whole_body(self)
                if raw is None:
                    return
                form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                to = form.get("To", "")
                with fake.lock:
                    fake.active += 1
                    fake.peak_active = max(fake.peak_active, fake.active)
                    fake.to_in_flight[to] = fake.to_in_flight.get(to, 0) + 1
                    if fake.to_in_flight[to] > 1:
                        fake.overlaps.append(to)
                try:
                    self.answer(form)
                finally:
                    with fake.lock:
                        fake.active -= 1
                        fake.to_in_flight[to] -= 1

            def answer(self, form: dict[str, str]) -> None:
                if fake.delay_seconds:
                    fake.stopping.wait(fake.delay_seconds)
                with fake.lock:
                    fake.requests += 1
                    failing = fake.fail_next > 0
                    if failing:
                        fake.fail_next -= 1
                    hanging = not failing and fake.hang_next > 0
                    if hanging:
                        fake.hang_next -= 1
                if hanging:
                    # Never answer within the client's timeout; the client gives up first.
                    fake.stopping.wait(fake.hang_seconds)
                    self.close_connection = True
                    return
                if failing or not self.path.endswith("/Messages.json"):
                    body = json.dumps({"code": 20500, "message": "Internal error", "status": 500}).encode()
                    self.send_response(500)
                elif form.get("To") in fake.unsubscribed:
                    body = json.dumps(UNSUBSCRIBED).encode()
                    self.send_response(400)
                else:
                    sid = f"SM{next(sids):032d}"
                    with fake.lock:
                        fake.messages.append({**form, "sid": sid})
                    if fake.on_accept is not None:
                        fake.on_accept(fake.messages[-1])
                    body = json.dumps(
                        {
                            "sid": sid,
                            "status": "queued",
                            "to": form.get("To"),
                            "from": form.get("From"),
                            "body": form.get("Body"),
                            "num_segments": "1",
                            "account_sid": "AC123",
                            "messaging_service_sid": form.get("MessagingServiceSid"),
                        }
                    ).encode()
                    self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                try:
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    # The client went away (timed out, or its process was killed): the message
                    # stays accepted, exactly as at the real provider.
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self.url

    def settings(self) -> dict[str, str]:
        """App settings that point the real twilio client at this server."""
        return {
            "TWILIO_ACCOUNT_SID": "AC123",
            "TWILIO_AUTH_TOKEN": "token",
            "TWILIO_FROM": "+447700900500",
            "TWILIO_API_BASE_URL": self.url,
        }

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Wait until at least ``count`` messages were accepted; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return True
            time.sleep(0.01)
        return False

    def idle(self, timeout: float = 10.0) -> bool:
        """Wait until no request is being handled; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.active == 0:
                    return True
            time.sleep(0.01)
        return False

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
