"""Fake provider servers the tests start on 127.0.0.1, spoken to by the real client libraries."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler


def whole_body(handler: BaseHTTPRequestHandler) -> bytes | None:
    """The request's body, or None if the client died while sending it (a killed worker): a real
    server never sees such a request whole, so it accepts nothing and closes the connection."""
    length = int(handler.headers.get("Content-Length", 0))
    body = handler.rfile.read(length)
    if len(body) < length:
        handler.close_connection = True
        return None
    return body
