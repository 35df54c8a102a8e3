"""A fake Twilio REST server on 127.0.0.1: a real HTTP server the official client talks to."""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class FakeTwilio:
    """Records every accepted message; ``fail_next`` makes the next N requests answer 500."""

    messages: list[dict[str, str]] = field(default_factory=list)
    fail_next: int = 0
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> str:
        fake = self
        sids = itertools.count(1)

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                with fake.lock:
                    fake.requests += 1
                    failing = fake.fail_next > 0
                    if failing:
                        fake.fail_next -= 1
                if failing or not self.path.endswith("/Messages.json"):
                    body = json.dumps({"code": 20500, "message": "Internal error", "status": 500}).encode()
                    self.send_response(500)
                else:
                    sid = f"SM{next(sids):032d}"
                    with fake.lock:
                        fake.messages.append({**form, "sid": sid})
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
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
