"""The fan-out benchmark's baseline is fair: the direct sends send what the worker sends.

No timings here: the benchmark measures; this only checks that the two sides of its drain ratio
send the same texts to the same numbers, so the ratio compares the worker with the provider and
nothing else. Each step runs in a process of its own, as the harness runs it.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from cryptography.fernet import Fernet

from benchmarks import fanout
from tests.fakes.twilio_server import FakeTwilio

ROOT = Path(__file__).resolve().parents[1]
CHILDREN = 20


def test_the_direct_baseline_sends_the_same_texts_to_the_same_numbers_as_the_worker(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    url, keys = f"sqlite:///{tmp_path}/fanout.db", Fernet.generate_key().decode()
    fake = FakeTwilio()
    twilio_url = fake.start()
    try:
        fanout._child("setup", url, keys, str(CHILDREN), env=env)
        schedule = fanout._child("schedule", url, keys, env=env)
        drain = fanout._child("drain", url, keys, twilio_url, env=env)
        with fake.lock:
            by_worker = Counter((m["To"], m["Body"]) for m in fake.messages)
            fake.messages.clear()
        direct = fanout._child(
            "direct", twilio_url, str(CHILDREN), "4", json.dumps(schedule["texts"]), env=env
        )
        with fake.lock:
            by_baseline = Counter((m["To"], m["Body"]) for m in fake.messages)
    finally:
        fake.stop()

    assert schedule["queued"] == drain["sent"] == direct["sent"] == CHILDREN
    assert sum(by_worker.values()) == CHILDREN and len(by_worker) == CHILDREN  # one each, no repeats
    assert by_baseline == by_worker
    # Both languages the setup gives (one child in ten writes in Welsh), and real reminder texts.
    texts = {body for _, body in by_worker}
    assert texts == set(schedule["texts"].values())
    assert len(texts) == 2 and all("STOP" in text for text in texts)
