"""INBOX: the caseload page for an IRO with 90 children and 10,000 messages, and one with 5.

On SQLite and on PostgreSQL (BENCH_DATABASE_URL): the demo data, then the demo IRO Rhys Evans
gets 89 more children (90) holding 10,000 messages between them, and Priya Shah 3 more (5) with
messages at the same density. Each child has an SMS number (some also Telegram, a few opted out),
a held review with three actions (one late), a scheduled review, concerns (some urgent) and, for
one in four, views sent in. The IRO signs in through the real form; each ``GET /inbox/`` goes
through the Flask test client, so the time is the server's alone (routing, sign-in check, the
queries, the audit row and its commit, the template). Queries are counted as
``tests/web/test_caseload.py`` counts them: every statement the engine sends during one request.

Run alone: ``.venv/bin/python -m benchmarks.inbox [--quick]``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.fanout import bench_app, migrate, postgres_url, reset_database  # noqa: E402

MESSAGES = 10_000
BIG, SMALL = 90, 5
RHYS, PRIYA = "rhys.evans@demo.invalid", "priya.shah@demo.invalid"


def add_caseload(session, iro_email: str, extra: int, messages: int) -> None:  # type: ignore[no-untyped-def]
    """``extra`` more children for an IRO, holding ``messages`` messages between them."""
    from sqlalchemy import insert, select

    from app.crypto import blind_index
    from app.models import (
        ChannelIdentity,
        Child,
        Concern,
        IroAssignment,
        Message,
        Review,
        ReviewAction,
        StaffUser,
        WishesSubmission,
        utcnow,
    )

    iro = session.scalar(select(StaffUser).where(StaffUser.email == iro_email))
    now = utcnow()
    today = now.date()
    ids = list(
        session.scalars(
            insert(Child).returning(Child.id, sort_by_parameter_order=True),
            [
                {"authority_id": iro.authority_id, "first_name": f"Bench {iro.id}-{n:03d}", "locale": "en"}
                for n in range(extra)
            ],
        )
    )
    session.execute(insert(IroAssignment), [{"child_id": c, "iro_id": iro.id} for c in ids])
    identities = []
    for n, child_id in enumerate(ids):
        phone = f"+4477{iro.id:02d}{child_id:06d}"
        identities.append(
            {
                "child_id": child_id,
                "channel": "sms",
                "address": phone,
                "address_index": blind_index(f"sms:{phone}"),
                "opted_out": n % 20 == 3,
            }
        )
        if n % 10 == 0:
            chat = f"{iro.id}{child_id:09d}"
            identities.append(
                {
                    "child_id": child_id,
                    "channel": "telegram",
                    "address": chat,
                    "address_index": blind_index(f"telegram:{chat}"),
                    "opted_out": False,
                }
            )
    session.execute(insert(ChannelIdentity), identities)
    held = list(
        session.scalars(
            insert(Review).returning(Review.id, sort_by_parameter_order=True),
            [{"child_id": c, "scheduled_for": today - timedelta(days=90), "status": "held"} for c in ids],
        )
    )
    session.execute(
        insert(ReviewAction),
        [
            {
                "review_id": review_id,
                "description": f"Action {k}",
                "owner": "your social worker",
                "due_on": today + timedelta(days=(-3 if k == 0 else 30 * k)),
                "status": "agreed",
            }
            for review_id in held
            for k in range(3)
        ],
    )
    upcoming = list(
        session.scalars(
            insert(Review).returning(Review.id, sort_by_parameter_order=True),
            [{"child_id": c, "scheduled_for": today + timedelta(days=n % 60 + 1)} for n, c in enumerate(ids)],
        )
    )
    session.execute(
        insert(WishesSubmission),
        [
            {"child_id": c, "review_id": r, "answers": {"wishes.overall": "ok"}}
            for n, (c, r) in enumerate(zip(ids, upcoming, strict=True))
            if n % 4 == 0
        ],
    )
    session.execute(
        insert(Concern),
        [
            {"child_id": c, "category": "message", "urgent": n % 10 == 0, "status": "open", "detail": "x"}
            for n, c in enumerate(ids)
            if n % 3 == 0
        ],
    )
    rows = [
        {
            "child_id": ids[k % len(ids)],
            "direction": "in" if k % 2 == 0 else "out",
            "channel": "sms",
            "provider_id": f"SMB{iro.id}-{k}",
            "body": "who is my iro" if k % 2 == 0 else "Your IRO is Rhys Evans.",
            "status": "received" if k % 2 == 0 else "sent",
            # Spread over the last 90 days, newest last.
            "created_at": now - timedelta(minutes=(messages - k) * 13),
        }
        for k in range(messages)
    ]
    for start in range(0, len(rows), 2_000):
        session.execute(insert(Message), rows[start : start + 2_000])
    session.commit()


@contextmanager
def counted_queries(engine) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """Every statement sent to the database meanwhile (as ``tests/web/test_caseload.py`` counts)."""
    from sqlalchemy import event

    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def measure(url: str, requests: int) -> dict[str, Any]:
    """Median server time and queries of the caseload page, for 90 children and for 5."""
    from cryptography.fernet import Fernet

    from app.demo import load_demo
    from app.extensions import db
    from tests.web.staff import sign_in

    reset_database(url)
    app = bench_app(url, Fernet.generate_key().decode())
    with app.app_context():
        migrate()
        load_demo(db.session)
        db.session.commit()
        add_caseload(db.session, RHYS, BIG - 1, MESSAGES)
        add_caseload(db.session, PRIYA, SMALL - 2, MESSAGES * SMALL // BIG)
        engine = db.engine
        db.session.remove()

    results: dict[str, Any] = {}
    for label, email, children in (("big", RHYS, BIG), ("small", PRIYA, SMALL)):
        client = app.test_client()
        sign_in(client, email)
        page = client.get("/inbox/")
        assert page.status_code == 200 and page.text.count('<tr data-child="') == children, (
            f"expected {children} children on the caseload"
        )
        with counted_queries(engine) as statements:
            client.get("/inbox/")
        timings = []
        for _ in range(requests):
            start = time.perf_counter()
            response = client.get("/inbox/")
            timings.append(time.perf_counter() - start)
            assert response.status_code == 200
        results[label] = {
            "children": children,
            "queries": len(statements),
            "median_ms": statistics.median(timings) * 1000,
            "p90_ms": statistics.quantiles(timings, n=10)[-1] * 1000,
            "requests": requests,
        }
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    reset_database(url)
    return results


def rows(name: str, results: dict[str, Any]) -> list[dict[str, Any]]:
    big, small = results["big"], results["small"]
    return [
        {
            "figure": f"inbox {name}: caseload page, {BIG} children and {MESSAGES:,} messages, median ms",
            "value": f"{big['median_ms']:.1f} ms",
            "baseline": f"{small['median_ms']:.1f} ms for {SMALL} children",
            "ratio": f"{big['median_ms'] / small['median_ms']:.2f}",
            "target": "(reported)",
            "met": None,
            "note": f"median of {big['requests']} requests; p90 {big['p90_ms']:.1f} ms",
        },
        {
            "figure": f"inbox {name}: caseload page, database queries for {BIG} vs {SMALL} children",
            "value": str(big["queries"]),
            "baseline": str(small["queries"]),
            "ratio": f"{big['queries'] / small['queries']:.2f}",
            "target": "the same count",
            "met": big["queries"] == small["queries"],
        },
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    """The inbox rows for the harness, SQLite then PostgreSQL."""
    requests = 15 if quick else 50
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        out += rows("SQLite", measure(f"sqlite:///{tmp}/inbox.db", requests))
    out += rows("PostgreSQL", measure(postgres_url(), requests))
    return out


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        print(row)
