"""Benchmark harness behind `make bench`: prints figures, asserts nothing.

This first version measures the pure engine and the in-process conversation service; the
performance issue adds the webhook load test, fan-out, inbox and memory figures.
"""

from __future__ import annotations

import platform
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from app.engine import Context, Inbound, advance, load_library  # noqa: E402
from app.engine.runtime import new_state  # noqa: E402
from app.engine.triage import assess  # noqa: E402
from app.flow_report import sample_variables  # noqa: E402

MIX = [
    ["hi", "1"],
    ["who is my iro"],
    ["hello", "2"],
    ["hi", "7", "HELP", "BACK", "menu", "3", "1"],
    ["LANGUAGE", "2", "LANGUAGE", "1"],
]


def engine_steps_per_second(seconds: float = 2.0) -> tuple[float, int]:
    library = load_library(ROOT / "flows")
    context = Context(now=datetime(2026, 11, 23), variables=sample_variables("en"))
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for conversation in MIX:
            state = new_state()
            for line in conversation:
                state = advance(library, state, Inbound(text=line), context).state
                steps += 1
    return steps / (time.perf_counter() - start), steps


def triage_milliseconds_per_message(count: int = 2_000) -> float:
    from app.engine.triage import load_phrasebook

    book = load_phrasebook(ROOT / "flows" / "safeguarding")
    messages = [
        "can i see my brother more we live in different houses, dont tell my carer yet",
        "who is my IRO",
        "i dont feel safe at home",
        "2",
        "my nan died last week",
    ]
    start = time.perf_counter()
    for i in range(count):
        assess(messages[i % len(messages)], previous="who is my IRO", book=book)
    return (time.perf_counter() - start) * 1000 / count


def service_messages_per_second(count: int = 400) -> float:
    from flask_migrate import upgrade

    from app import create_app
    from app.conversations import InboundMessage, handle
    from app.demo import load_demo
    from app.extensions import db

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            {
                "TESTING": True,
                "DATABASE_URL": f"sqlite:///{tmp}/bench.db",
                "SECRET_KEY": "bench",
                "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            }
        )
        with app.app_context():
            upgrade()
            load_demo(db.session)
            db.session.commit()
            lines = [line for conversation in MIX for line in conversation]
            start = time.perf_counter()
            for i in range(count):
                handle(
                    InboundMessage(
                        channel="sms", sender="+447700900001", text=lines[i % len(lines)], provider_id=f"B{i}"
                    )
                )
            elapsed = time.perf_counter() - start
            db.session.remove()
            db.engine.dispose()
    return count / elapsed


def main() -> None:
    machine = f"{platform.node()} ({platform.machine()}, Python {platform.python_version()})"
    print(f"Reviewline benchmarks on {machine}")
    rate, _ = engine_steps_per_second()
    verdict = "met" if rate >= 20_000 else "NOT met"
    print(f"{'engine: steps per second (one process)':<62} {rate:>10,.0f}   target >= 20,000: {verdict}")
    triage_ms = triage_milliseconds_per_message()
    print(f"{'safeguarding triage: milliseconds per message (with previous)':<62} {triage_ms:>10.3f}")
    service = service_messages_per_second()
    print(f"{'conversation service: messages per second (SQLite, in-process)':<62} {service:>10,.0f}")


if __name__ == "__main__":
    main()
