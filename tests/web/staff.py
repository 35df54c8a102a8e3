"""Signing staff in through the real sign-in form (CSRF token and all), for web tests."""

from __future__ import annotations

import re

import pyotp
from flask.testing import FlaskClient

PASSWORD = "demo-password-1"
PRIYA = "priya.shah@demo.invalid"  # IRO of Jordan (+447700900001) and Amir (+447700900003)
RHYS = "rhys.evans@demo.invalid"  # IRO of Cerys (+447700900002)
GRACE = "grace.okafor@demo.invalid"  # IRO manager (two-factor required)
SAM = "sam.patel@demo.invalid"  # participation worker (no child data)
ALEX = "alex.morgan@demo.invalid"  # admin (two-factor required)


def csrf_token(client: FlaskClient, path: str) -> str:
    """The CSRF token from the form on a page."""
    page = client.get(path)
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page.text
    )
    assert found, f"no CSRF token on {path} ({page.status_code})"
    return found.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    """Sign in with the form; managers and admins also set up or use two-factor sign-in."""
    response = client.post(
        "/login", data={"csrf_token": csrf_token(client, "/login"), "email": email, "password": password}
    )
    if response.status_code == 302 and response.location.endswith("/login/two-factor"):
        page = client.get("/login/two-factor")
        secret = re.search(r"Key: <code>([A-Z2-7]+)</code>", page.text).group(1)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
        response = client.post(
            "/login/two-factor", data={"csrf_token": token, "code": pyotp.TOTP(secret).now()}
        )
        client.totp_secret = secret  # type: ignore[attr-defined]
    return response


def post_form(client: FlaskClient, page: str, action: str, **data: str):  # type: ignore[no-untyped-def]
    """Submit a form found on ``page`` to ``action`` with its CSRF token."""
    return client.post(action, data={"csrf_token": csrf_token(client, page), **data})
