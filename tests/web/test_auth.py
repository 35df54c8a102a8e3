"""Staff sign-in: passwords, throttling, CSRF, two-factor codes, roles."""

from __future__ import annotations

import re

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, StaffUser
from tests.web.staff import GRACE, PASSWORD, PRIYA, SAM, csrf_token, post_form, sign_in


def test_the_inbox_needs_a_signed_in_member_of_staff(client: FlaskClient) -> None:
    response = client.get("/inbox/")
    assert response.status_code == 302 and "/login" in response.location


def test_an_iro_signs_in_and_sees_their_caseload(client: FlaskClient) -> None:
    response = sign_in(client, PRIYA)
    assert response.status_code == 302 and response.location.endswith("/inbox/")
    page = client.get("/inbox/")
    assert page.status_code == 200 and "Jordan" in page.text and "Cerys" not in page.text
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "signed in")) is not None


def test_a_wrong_password_says_so_without_saying_which_part_was_wrong(client: FlaskClient) -> None:
    wrong = sign_in(client, PRIYA, password="not-it")
    unknown = sign_in(client, "nobody@demo.invalid")
    assert wrong.status_code == unknown.status_code == 401
    assert "do not match an account" in wrong.text and "do not match an account" in unknown.text
    assert client.get("/inbox/").status_code == 302


def test_sign_in_is_throttled_after_repeated_failures_even_with_the_right_password(
    client: FlaskClient,
) -> None:
    for _ in range(5):
        assert sign_in(client, PRIYA, password="guess").status_code == 401
    blocked = sign_in(client, PRIYA)
    assert blocked.status_code == 429 and "Too many attempts" in blocked.text
    assert client.get("/inbox/").status_code == 302


def test_a_form_without_its_csrf_token_is_refused(client: FlaskClient) -> None:
    response = client.post("/login", data={"email": PRIYA, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/inbox/").status_code == 302


def test_a_manager_must_set_up_two_factor_before_getting_in_and_then_needs_a_code(
    demo: Flask, client: FlaskClient
) -> None:
    first = client.post(
        "/login", data={"csrf_token": csrf_token(client, "/login"), "email": GRACE, "password": PASSWORD}
    )
    assert first.location.endswith("/login/two-factor")
    assert client.get("/inbox/").status_code == 302, "not in until two-factor is set up"
    page = client.get("/login/two-factor")
    assert "<svg" in page.text, "a QR code for the authenticator app"
    secret = re.search(r"Key: <code>([A-Z2-7]+)</code>", page.text).group(1)
    bad = post_form(client, "/login/two-factor", "/login/two-factor", code="000000")
    assert bad.status_code == 400 and client.get("/inbox/").status_code == 302
    good = post_form(client, "/login/two-factor", "/login/two-factor", code=pyotp.TOTP(secret).now())
    assert good.status_code == 302 and client.get("/inbox/").status_code == 200
    grace = db.session.scalar(select(StaffUser).where(StaffUser.email == GRACE))
    assert grace.totp_enabled

    other = demo.test_client()
    step_one = other.post(
        "/login", data={"csrf_token": csrf_token(other, "/login"), "email": GRACE, "password": PASSWORD}
    )
    assert step_one.location.endswith("/login/code")
    assert other.get("/inbox/").status_code == 302, "a password alone is not enough"
    db.session.refresh(grace)
    totp = pyotp.TOTP(secret)
    used = totp.generate_otp(grace.totp_last_step)
    replayed = post_form(other, "/login/code", "/login/code", code=used)
    assert replayed.status_code == 401, "a code already used cannot be used again"
    fresh = post_form(other, "/login/code", "/login/code", code=totp.generate_otp(grace.totp_last_step + 1))
    assert fresh.status_code == 302 and other.get("/inbox/").status_code == 200


def test_an_iro_may_turn_on_two_factor(client: FlaskClient) -> None:
    sign_in(client, PRIYA)
    page = client.get("/login/two-factor")
    secret = re.search(r"Key: <code>([A-Z2-7]+)</code>", page.text).group(1)
    post_form(client, "/login/two-factor", "/login/two-factor", code=pyotp.TOTP(secret).now())
    assert "Two-factor sign-in</dt><dd>On" in client.get("/account").text


def test_a_participation_worker_signs_in_but_cannot_open_the_inbox(client: FlaskClient) -> None:
    response = sign_in(client, SAM)
    assert response.location.endswith("/flows")
    assert client.get("/inbox/").status_code == 403
    assert client.get("/inbox/urgent").status_code == 403
    assert client.get("/inbox/audit").status_code == 403


def test_signing_out_ends_the_session(client: FlaskClient) -> None:
    sign_in(client, PRIYA)
    post_form(client, "/inbox/", "/logout")
    assert client.get("/inbox/").status_code == 302


def test_session_cookies_are_http_only_and_same_site(client: FlaskClient) -> None:
    sign_in(client, PRIYA)
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
