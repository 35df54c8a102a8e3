"""The webhook benchmark's own parts work: its children, its signed requests and its floor endpoint.

No timings here: the benchmark measures, these only check that what it sends is what the app accepts.
"""

from __future__ import annotations

import statistics
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, func, select
from werkzeug.security import generate_password_hash

from app.extensions import db
from app.models import ChannelIdentity, Message
from benchmarks.baseline_app import BASELINE_PATHS, add_baselines, floor_count, prepare
from benchmarks.bench_data import make_children
from benchmarks.webhook import (
    CONVERSATIONS,
    PUBLIC_BASE_URL,
    TOKEN,
    Planned,
    build_plan,
    dict_from_line,
    parse_line,
    signed_line,
)
from benchmarks.webhook_cpu import measure, summary


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Staff passwords hashed at the cheapest setting (nobody signs in here), so the tests stay quick."""

    def cheap(password: str) -> str:
        return generate_password_hash(password, method="pbkdf2:sha256:1")

    monkeypatch.setattr("app.demo.generate_password_hash", cheap)
    monkeypatch.setattr("benchmarks.bench_data.generate_password_hash", cheap)


def configure_sms(app: Flask) -> None:
    app.config["TWILIO_AUTH_TOKEN"] = TOKEN
    app.config["PUBLIC_BASE_URL"] = PUBLIC_BASE_URL


def post(app: Flask, item: Planned):  # type: ignore[no-untyped-def]
    path, signature, body = parse_line(item.line)
    return app.test_client().post(
        path,
        data=body,
        headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
    )


def test_each_benchmark_child_is_found_by_its_number_and_has_an_iro(app: Flask) -> None:
    phones = make_children(db.session, 4, {"en": 0.5, "cy": 0.5}, children_per_iro=2)
    db.session.commit()
    children = [ChannelIdentity.find(db.session, "sms", phone).child for phone in phones]
    assert sorted(child.locale for child in children) == ["cy", "cy", "en", "en"]
    iros = [child.current_iro.email for child in children]
    assert iros[0] == iros[1] != iros[2] == iros[3]


def test_the_planned_requests_are_accepted_and_every_message_is_stored_in_order(app: Flask) -> None:
    configure_sms(app)
    phones = make_children(db.session, 3)
    db.session.commit()
    plan = build_plan(phones, ["en", "en", "en"], 9)
    replies = []
    for item in plan:
        response = post(app, item)
        assert response.status_code == 200
        replies.append([m.text or "" for m in ET.fromstring(response.data).findall("Message")])
    assert all(replies), "every message has an answer"
    stored = db.session.scalars(
        select(Message.provider_id).where(Message.direction == "in").order_by(Message.id)
    )
    assert list(stored) == [item.sid for item in plan]


def test_the_floor_checks_the_signature_and_commits_one_row_per_request(app: Flask) -> None:
    configure_sms(app)
    add_baselines(app)
    prepare(db.engine)
    phones = make_children(db.session, 1)
    db.session.commit()
    item = build_plan(phones, ["en"], 1)[0]
    form = dict_from_line(item.line)
    signed = Planned(item.child, item.sid, signed_line(BASELINE_PATHS["floor"], form))
    assert post(app, signed).status_code == 200
    assert floor_count(db.engine) == 1
    wrong_path = Planned(
        item.child, item.sid, signed_line(BASELINE_PATHS["bare"], form).replace("/bare", "/floor")
    )
    assert post(app, wrong_path).status_code == 403
    assert floor_count(db.engine) == 1
    assert db.session.scalar(select(func.count()).select_from(Message)) == 0


def test_each_child_sends_whole_conversations_in_order_and_never_two_messages_close_together() -> None:
    phones = [f"+4477009100{n:02d}" for n in range(12)]
    plan = build_plan(phones, ["en"] * 6 + ["cy"] * 6, 400, active=5)
    said: dict[int, list[str]] = {}
    last_seen: dict[int, int] = {}
    for position, item in enumerate(plan):
        assert position - last_seen.get(item.child, -5) >= 5, "a child's next message waits its turn"
        last_seen[item.child] = position
        said.setdefault(item.child, []).append(dict_from_line(item.line)["Body"])
    assert len(said) == 12, "every child has a turn"
    for child, texts in said.items():
        scripts = list(CONVERSATIONS["en" if child < 6 else "cy"].values())
        while texts:
            script = next((s for s in scripts if texts[: len(s)] == s), None)
            if script is None:  # the plan may stop part-way through a conversation
                assert any(s[: len(texts)] == texts for s in scripts)
                break
            texts = texts[len(script) :]


def test_the_cpu_measure_sends_every_request_to_both_endpoints_and_reports_each_round(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cpu.db"
    said: list[str] = []
    results = measure(url, children=6, rounds=2, per_round=5, say=said.append)
    assert [len(rounds) for rounds in results.values()] == [2, 2]
    assert [line.split(":")[0] for line in said] == ["round 1", "round 2"]
    engine = create_engine(url)
    with engine.connect() as connection:
        received = connection.scalar(
            select(func.count()).select_from(Message).where(Message.direction == "in")
        )
    # The warm-up (one round's worth) and both rounds: every request was handled and kept.
    assert received == 5 * 3 and floor_count(engine) == 5 * 3
    engine.dispose()
    figures = summary(results)
    assert figures["webhook"]["cpu_ms"] > 0 and figures["floor"]["cpu_ms"] > 0
    assert figures["ratio"] == round(
        statistics.median(
            f.cpu_ms / w.cpu_ms for w, f in zip(results["webhook"], results["floor"], strict=True)
        ),
        3,
    )


def test_the_paced_load_counts_each_slow_request_with_the_second_it_was_due_in(tmp_path: Path) -> None:
    """At half rate a stall shows as slow requests bunched in a second or two: the paced load
    generator counts every request over 100 ms (from when it was due) and the seconds they were due in."""
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from benchmarks.webhook import run_python_load, slow_note

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if b"slow" in body:
                time.sleep(1.0)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        bodies = ["Body=slow" if n in (4, 5, 6) else "Body=fast" for n in range(16)]
        (tmp_path / "plan.0").write_text("".join(f"/x\tsig\t{body}\n" for body in bodies))
        result = run_python_load(
            f"http://127.0.0.1:{server.server_address[1]}", tmp_path / "plan", 1, [0], seconds=0.8, rate=20
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.requests == 16
    # The three held ones, due 0.2-0.3 s into the run (on a busy machine another may pass 100 ms too).
    held = [(due, ms) for due, ms in result.slow if ms >= 1000]
    assert len(held) == 3 and all(0.15 < due < 0.45 for due, _ in held)
    summary = result.summary()
    assert summary["slow_requests"] == len(result.slow) >= 3 and result.p99_ms >= 1000
    if len(result.slow) == 3:
        assert slow_note(summary) == "3 over 100 ms, due in 1 of its seconds"
