"""FAN-OUT: review reminders for N children, then the worker draining the outbox to a fake Twilio.

For each database (SQLite in a temporary file, and PostgreSQL at BENCH_DATABASE_URL) and each
size, every step runs in a fresh Python process, so ``ru_maxrss`` (the peak resident memory of
that process) belongs to that step alone:

1. ``setup``: migrate an empty database and insert N children, each with an SMS number and a
   scheduled review 8 to 14 days away, so the 14-day invitation is due for every one of them;
2. ``schedule``: ``app.reminders.schedule_reminders`` once (queues N messages and outbox rows);
3. ``drain``: ``app.delivery.deliver_due`` in the worker's loop (``flask worker``: a batch, then
   ``db.session.remove()``) with the real ``twilio_sender`` until nothing is due;
4. ``direct`` (the baseline): the same number of ``client.messages.create`` calls and nothing
   else, as many at a time as the worker sends (``DELIVERY_CONCURRENCY``), each thread with a
   twilio client built as ``twilio_sender`` builds it, sending the same texts to the same numbers
   (the reminders the schedule step queued, one child in ten in Welsh): the fake provider's own
   full speed for that many senders. (Until 2026-12 the baseline sent one 49-character text; the
   reminders are 120-140 characters, and a longer form costs the client about 2% more a send.)
5. ``rounds`` (the ratio that is judged): ``PAIRED_ROUNDS`` times, a drain of ``PAIRED_SIZE``
   fresh rows and the same number of direct sends straight after or straight before it (the
   order alternating); the median round's ratio is the drain's figure, each round is printed.

The fake Twilio server (``tests/fakes/twilio_server.py``) runs in a process of its own on
127.0.0.1, so its threads and its list of accepted messages are neither in the measured
processes' memory nor competing with them for the GIL.

Run alone: ``.venv/bin/python -m benchmarks.fanout [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SCHEDULE_TARGET_SECONDS = 60.0  # for 100,000 children
SCHEDULE_TARGET_COUNT = 100_000
DRAIN_TARGET_RATIO = 0.9  # "at the fake provider's full speed": within 10% of the direct sends
MEMORY_TARGET_RATIO = 1.5
CHUNK = 5_000
# The drain's ratio is read from rounds that pair a drain with direct sends of the same rows, run
# one after the other (the order alternating), and the median round decides. One drain against
# the direct sends either side of it moved by up to 0.2 between runs of the same code here (the
# sends' CPU a message drifts by up to 10 % from one process to the next); the full-size drain is
# still run, timed and shown with its own ratio. An even number of rounds, so as many begin with
# the drain as with the direct sends (with 3, two of the three began with the drain).
PAIRED_ROUNDS = 4
PAIRED_SIZE = 20_000


def postgres_url() -> str:
    """The benchmarks' PostgreSQL database (``benchmarks.bench_data.postgres_url``)."""
    from benchmarks.bench_data import postgres_url as shared

    return shared()


def max_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB.

    Linux's ``VmHWM`` (the high-water mark of this program's memory), not ``getrusage``'s
    ``ru_maxrss``: a process started by fork and exec reports at least its parent's resident size
    at the fork in ``ru_maxrss`` (the kernel carries it across exec), so under a harness of 280 MB
    every step read 279 MB whatever it did. ``ru_maxrss`` is the fallback off Linux.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Resident memory of this process now, in MB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_database(url: str) -> None:
    """An empty database: a fresh public schema on PostgreSQL, a removed file on SQLite."""
    from sqlalchemy import create_engine, text

    from app.config import database_url

    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    engine = create_engine(database_url(url))
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def bench_app(url: str, keys: str, **overrides: Any):  # type: ignore[no-untyped-def]
    """The real app on ``url`` with fixed encryption keys (so every process reads the same rows)."""
    from app import create_app

    return create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "FIELD_ENCRYPTION_KEYS": keys,
            **overrides,
        }
    )


def migrate() -> None:
    """``flask db upgrade`` in the current app context, without Alembic's log lines."""
    import contextlib
    import io

    from flask_migrate import upgrade

    # Alembic's logging handler is made during upgrade, on whatever sys.stderr is then.
    with contextlib.redirect_stderr(io.StringIO()):
        upgrade()


def schedule_time() -> datetime:
    """Noon UTC today: outside quiet hours in Europe/London whenever the harness is run."""
    return datetime.combine(datetime.now(UTC).date(), datetime.min.time()).replace(hour=12)


# -- the steps, each run in its own process -------------------------------------------------


def step_setup(url: str, keys: str, count: int) -> dict[str, Any]:
    """Migrate and insert ``count`` children whose 14-day review invitation is due."""
    from sqlalchemy import insert

    from app.crypto import blind_index
    from app.extensions import db
    from app.models import Authority, ChannelIdentity, Child, IroAssignment, Review, StaffUser

    reset_database(url)
    app = bench_app(url, keys)
    today = schedule_time().date()
    start = time.perf_counter()
    with app.app_context():
        migrate()
        session = db.session
        authority = Authority(name="Bench Council", reminder_days=[14, 7])
        session.add(authority)
        session.flush()
        iro = StaffUser(
            authority_id=authority.id,
            email="iro@bench.invalid",
            display_name="Bench IRO",
            role="iro",
            password_hash="!",
        )
        session.add(iro)
        session.flush()
        for first in range(0, count, CHUNK):
            numbers = range(first, min(first + CHUNK, count))
            ids = list(
                session.scalars(
                    insert(Child).returning(Child.id, sort_by_parameter_order=True),
                    [
                        {
                            "authority_id": authority.id,
                            "first_name": f"Child {n}",
                            # One in ten children writes in Welsh: two reminder texts, as in life.
                            "locale": "cy" if n % 10 == 0 else "en",
                            "time_zone": "Europe/London",
                        }
                        for n in numbers
                    ],
                )
            )
            phones = [f"+447{700000000 + n}" for n in numbers]
            session.execute(
                insert(ChannelIdentity),
                [
                    {
                        "child_id": child_id,
                        "channel": "sms",
                        "address": phone,
                        "address_index": blind_index(f"sms:{phone}"),
                        "opted_out": False,
                    }
                    for child_id, phone in zip(ids, phones, strict=True)
                ],
            )
            session.execute(
                insert(IroAssignment), [{"child_id": child_id, "iro_id": iro.id} for child_id in ids]
            )
            session.execute(
                insert(Review),
                [
                    {
                        "child_id": child_id,
                        "scheduled_for": today + timedelta(days=8 + n % 7),
                        "kind": "regular",
                        "status": "scheduled",
                    }
                    for child_id, n in zip(ids, numbers, strict=True)
                ],
            )
            session.commit()
        db.session.remove()
        db.engine.dispose()
    return {"children": count, "seconds": time.perf_counter() - start}


def step_schedule(url: str, keys: str) -> dict[str, Any]:
    """``schedule_reminders`` once, as the worker runs it."""
    from app.extensions import db
    from app.reminders import INVITE, reminder_text, schedule_reminders

    app = bench_app(url, keys)
    with app.app_context():
        before = current_rss_mb()
        start = time.perf_counter()
        summary = schedule_reminders(db.session, schedule_time())
        seconds = time.perf_counter() - start
        db.session.remove()
        db.engine.dispose()
        texts = {locale: reminder_text(INVITE, locale) for locale in ("en", "cy")}
    return {
        "texts": texts,  # what the direct sends send too
        "queued": summary.queued,
        "not_sent": summary.opted_out + summary.no_channel,
        "seconds": seconds,
        "cpu_seconds": time.process_time(),
        "rss_before_mb": before,
        "peak_mb": max_rss_mb(),
    }


def step_drain(url: str, keys: str, twilio_url: str) -> dict[str, Any]:
    """The worker's delivery loop until the outbox is empty."""
    from sqlalchemy import func, select

    from app.delivery import deliver_due, twilio_sender
    from app.extensions import db
    from app.models import OutboxMessage, utcnow

    settings = {
        "TWILIO_ACCOUNT_SID": "AC123",
        "TWILIO_AUTH_TOKEN": "token",
        "TWILIO_FROM": "+447700900500",
        "TWILIO_API_BASE_URL": twilio_url,
    }
    app = bench_app(url, keys, **settings)
    with app.app_context():
        senders = {"sms": twilio_sender(app)}
        before = current_rss_mb()
        sent = retrying = dead = 0
        start = time.perf_counter()
        while True:
            result = deliver_due(
                db.session,
                senders,
                now=max(utcnow(), schedule_time()),
                concurrency=app.config["DELIVERY_CONCURRENCY"],
            )
            db.session.remove()
            sent, retrying, dead = sent + result.sent, retrying + result.retrying, dead + result.dead
            if not (result.sent or result.retrying or result.dead):
                break
        seconds = time.perf_counter() - start
        pending = db.session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending")
        )
        db.session.remove()
        db.engine.dispose()
    return {
        "concurrency": app.config["DELIVERY_CONCURRENCY"],
        "sent": sent,
        "retrying": retrying,
        "dead": dead,
        "pending": pending,
        "seconds": seconds,
        "cpu_seconds": time.process_time(),
        "rss_before_mb": before,
        "peak_mb": max_rss_mb(),
    }


def step_direct(twilio_url: str, count: int, concurrency: int, texts_json: str) -> dict[str, Any]:
    """The baseline: ``count`` sends straight to the fake provider, no database, ``concurrency``
    at a time (the worker's setting), each thread with a client built as ``twilio_sender`` builds it.
    ``texts_json``: the reminder texts by language, as the schedule step queued them; child ``n``
    gets the one setup gave it (Welsh for one in ten) at the number setup gave it."""
    from concurrent.futures import ThreadPoolExecutor

    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    from app.delivery import DEFAULT_PROVIDER_TIMEOUT

    texts = json.loads(texts_json)

    def send_share(share: range) -> None:
        client = Client("AC123", "token", http_client=TwilioHttpClient(timeout=DEFAULT_PROVIDER_TIMEOUT))
        client.api.base_url = twilio_url
        for n in share:
            body = texts["cy"] if n % 10 == 0 else texts["en"]
            client.messages.create(to=f"+447{700000000 + n}", body=body, from_="+447700900500")

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(send_share, [range(k, count, concurrency) for k in range(concurrency)]))
    return {
        "sent": count,
        "concurrency": concurrency,
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time(),
        "peak_mb": max_rss_mb(),
    }


def step_fake() -> None:
    """Serve the fake Twilio API until stdin closes; "count" prints accepted messages, "reset" clears."""
    from tests.fakes.twilio_server import FakeTwilio

    fake = FakeTwilio()
    print(fake.start(), flush=True)
    for line in sys.stdin:
        command = line.strip()
        with fake.lock:
            if command == "count":
                print(len(fake.messages), flush=True)
            elif command == "reset":
                fake.messages.clear()
                print(0, flush=True)
    fake.stop()


# -- the parent: starts the steps and turns them into rows ------------------------------------


def _child(*args: str, env: dict[str, str]) -> dict[str, Any]:
    """Run one step in a fresh process; its last line of output is its result as JSON."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.fanout", "--step", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"fan-out step {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def fake_twilio(env: dict[str, str]) -> Iterator[tuple[str, Any]]:
    """The fake Twilio server in its own process; yields its URL and a function asking it a command."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.fanout", "--step", "fake"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin and process.stdout
    url = process.stdout.readline().strip()

    def ask(command: str) -> int:
        process.stdin.write(command + "\n")
        process.stdin.flush()
        return int(process.stdout.readline())

    try:
        yield url, ask
    finally:
        process.stdin.close()
        process.wait(timeout=30)


def measure(  # type: ignore[no-untyped-def]
    quick: bool = False,
    log=print,
    databases: tuple[str, ...] = ("SQLite", "PostgreSQL"),
    sizes: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Every fan-out measurement on each database (both by default); returns the raw results."""
    from cryptography.fernet import Fernet

    small, large = sizes or ((1_000, 5_000) if quick else (10_000, 100_000))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    keys = Fernet.generate_key().decode()
    results: dict[str, Any] = {"sizes": [small, large], "databases": {}}
    with tempfile.TemporaryDirectory() as tmp, fake_twilio(env) as (twilio_url, ask):
        urls = {"SQLite": f"sqlite:///{tmp}/fanout.db", "PostgreSQL": postgres_url()}
        for name, url in ((name, urls[name]) for name in databases):
            per_size: dict[int, Any] = {}
            directs: list[dict[str, Any]] = []
            for size in (small, large):
                log(f"  fan-out {name} {size:,}: setting up")
                setup = _child("setup", url, keys, str(size), env=env)
                log(f"  fan-out {name} {size:,}: scheduling (setup took {setup['seconds']:.1f} s)")
                schedule = _child("schedule", url, keys, env=env)
                texts = schedule["texts"]
                log(f"  fan-out {name} {size:,}: draining ({schedule['seconds']:.1f} s to schedule)")
                ask("reset")
                if size == large:
                    # The baseline just before the large drain, and again just after (below): the
                    # machine's speed drifts within a run.
                    directs.append(
                        _direct(twilio_url, large, per_size[small]["drain"]["concurrency"], texts, env, ask)
                    )
                drain = _drain(url, keys, twilio_url, env, ask)
                log(f"  fan-out {name} {size:,}: drained in {drain['seconds']:.1f} s")
                per_size[size] = {"setup": setup, "schedule": schedule, "drain": drain}
            ask("reset")
            directs.append(
                _direct(twilio_url, large, per_size[small]["drain"]["concurrency"], texts, env, ask)
            )
            log(
                f"  fan-out {name}: {large:,} direct sends in "
                + " and ".join(f"{d['seconds']:.1f} s" for d in directs)
                + " (before and after the drain)"
            )
            direct = {
                "sent": large,
                "concurrency": directs[0]["concurrency"],
                # The two runs' mean rate, as the time the mean rate would take.
                "seconds": 2 * large / sum(large / d["seconds"] for d in directs),
                "runs": directs,
            }
            rounds = _paired_rounds(
                name, url, keys, twilio_url, min(PAIRED_SIZE, large), direct["concurrency"], env, ask, log
            )
            results["databases"][name] = {"sizes": per_size, "direct": direct, "rounds": rounds}
            reset_database(url)
    return results


def _paired_rounds(  # type: ignore[no-untyped-def]
    name: str,
    url: str,
    keys: str,
    twilio_url: str,
    size: int,
    concurrency: int,
    env: dict[str, str],
    ask: Any,
    log,
) -> list[dict[str, Any]]:
    """``PAIRED_ROUNDS`` rounds, each a drain of ``size`` fresh rows and as many direct sends, one
    straight after the other (the direct sends first in every other round), ``concurrency`` at a
    time as the worker sends."""
    rounds = []
    for number in range(PAIRED_ROUNDS):
        _child("setup", url, keys, str(size), env=env)
        schedule = _child("schedule", url, keys, env=env)
        ask("reset")
        steps = ("direct", "drain") if number % 2 else ("drain", "direct")
        run = {
            "drain": partial(_drain, url, keys, twilio_url, env, ask),
            "direct": partial(_direct, twilio_url, size, concurrency, schedule["texts"], env, ask),
        }
        done = {step: run[step]() for step in steps}
        drain, direct = done["drain"], done["direct"]
        ratio = direct["seconds"] / drain["seconds"]
        rounds.append(
            {
                "size": size,
                "first": steps[0],
                "drain": drain,
                "direct": direct,
                "ratio": ratio,
                "complete": _complete(drain, size),
            }
        )
        log(f"  fan-out {name}: round {number + 1} of {size:,} rows ({steps[0]} first): ratio {ratio:.3f}")
    return rounds


def _drain(url: str, keys: str, twilio_url: str, env: dict[str, str], ask: Any) -> dict[str, Any]:
    """The worker's drain of everything queued, with the number of messages the fake accepted
    (then cleared)."""
    drain = _child("drain", url, keys, twilio_url, env=env)
    drain["accepted_by_fake"] = ask("count")
    ask("reset")
    return drain


def _complete(drain: dict[str, Any], size: int) -> bool:
    """Every row sent once: ``size`` sent and accepted by the fake, none left pending."""
    return drain["sent"] == size and drain["accepted_by_fake"] == size and not drain["pending"]


def _direct(
    twilio_url: str, count: int, concurrency: int, texts: dict[str, str], env: dict[str, str], ask: Any
) -> dict[str, Any]:
    """The baseline: ``count`` direct sends of the reminder ``texts``, ``concurrency`` at a time
    (as the worker sends)."""
    direct = _child("direct", twilio_url, str(count), str(concurrency), json.dumps(texts), env=env)
    direct["accepted_by_fake"] = ask("count")
    ask("reset")
    return direct


def rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Harness rows from ``measure``'s results."""
    small, large = results["sizes"]
    out: list[dict[str, Any]] = []
    for name, data in results["databases"].items():
        big, little, direct = data["sizes"][large], data["sizes"][small], data["direct"]
        schedule = big["schedule"]
        limit = SCHEDULE_TARGET_SECONDS * large / SCHEDULE_TARGET_COUNT
        growth = schedule["seconds"] / little["schedule"]["seconds"]
        out.append(
            {
                "figure": f"fan-out {name}: schedule reminders for {large:,} children, seconds",
                "value": f"{schedule['seconds']:.1f} s",
                "baseline": f"{little['schedule']['seconds']:.2f} s for {small:,}",
                "ratio": f"{growth:.1f} ({large // small}x rows)",
                "target": f"< {limit:.0f} s",
                "met": schedule["seconds"] < limit and schedule["queued"] == large,
                "note": f"{schedule['queued']:,} queued",
            }
        )
        out.append(
            {
                "figure": f"fan-out {name}: schedule, rows per second",
                "value": f"{schedule['queued'] / schedule['seconds']:,.0f}",
                "target": f">= {SCHEDULE_TARGET_COUNT / SCHEDULE_TARGET_SECONDS:,.0f}",
                "met": schedule["queued"] / schedule["seconds"]
                >= SCHEDULE_TARGET_COUNT / SCHEDULE_TARGET_SECONDS,
            }
        )
        drain = big["drain"]
        drain_rate = drain["sent"] / drain["seconds"]
        direct_rate = direct["sent"] / direct["seconds"]
        runs = [format(d["sent"] / d["seconds"], ",.0f") for d in direct.get("runs", [direct])]
        complete = _complete(drain, large)
        out.append(
            {
                "figure": f"fan-out {name}: worker drains {large:,} outbox rows to fake Twilio, rows/s",
                "value": f"{drain_rate:,.0f} ({drain['seconds']:.1f} s)",
                "baseline": f"{direct_rate:,.0f} direct sends/s, {direct.get('concurrency', 1)} at a time "
                f"({' and '.join(runs)} before and after)",
                "ratio": f"{drain_rate / direct_rate:.2f}",
                "target": "every row sent once (the ratio is judged in the rounds below)"
                if data.get("rounds")
                else f"ratio >= {DRAIN_TARGET_RATIO}",
                "met": complete
                if data.get("rounds")
                else complete and drain_rate / direct_rate >= DRAIN_TARGET_RATIO,
                "note": f"{drain['accepted_by_fake']:,} accepted by the fake, {drain['pending']} pending",
            }
        )
        if data.get("rounds"):
            out.append(_rounds_row(name, data["rounds"]))
        for step, label in (("schedule", "schedule"), ("drain", "drain")):
            peak_large, peak_small = big[step]["peak_mb"], little[step]["peak_mb"]
            out.append(
                {
                    "figure": f"fan-out {name}: peak memory of the {label} process, {large:,} vs {small:,}",
                    "value": f"{peak_large:.0f} MB",
                    "baseline": f"{peak_small:.0f} MB",
                    "ratio": f"{peak_large / peak_small:.2f}",
                    "target": f"ratio <= {MEMORY_TARGET_RATIO}",
                    "met": peak_large / peak_small <= MEMORY_TARGET_RATIO,
                    "note": (
                        f"grew {peak_large - big[step]['rss_before_mb']:.0f} MB vs "
                        f"{peak_small - little[step]['rss_before_mb']:.0f} MB during the step"
                    ),
                }
            )
    return out


def _rounds_row(name: str, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The judged drain figure: the median of the paired rounds' ratios."""
    ratios = [r["ratio"] for r in rounds]
    median = statistics.median(ratios)
    size = rounds[0]["size"]
    rates = [(r["size"] / r["drain"]["seconds"], r["size"] / r["direct"]["seconds"]) for r in rounds]
    each = ", ".join(
        f"{r['ratio']:.2f} ({drain:,.0f} vs {direct:,.0f}/s, {r['first']} first)"
        for r, (drain, direct) in zip(rounds, rates, strict=True)
    )
    return {
        "figure": f"fan-out {name}: drain against direct sends, "
        f"median of {len(rounds)} paired rounds of {size:,} rows",
        # Three places: at two, a median of 0.898 read "0.90" beside "not met".
        "value": f"{median:.3f}",
        "baseline": "the direct sends of each round",
        "ratio": f"{median:.3f}",
        "target": f"ratio >= {DRAIN_TARGET_RATIO}",
        "met": all(r["complete"] for r in rounds) and median >= DRAIN_TARGET_RATIO,
        "note": f"rounds: {each}",
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    """The fan-out rows for the harness."""
    return rows(measure(quick, log=lambda line: print(line, file=sys.stderr, flush=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--database", choices=["SQLite", "PostgreSQL"], action="append", help="only this one (repeatable)"
    )
    parser.add_argument(
        "--sizes", type=int, nargs=2, metavar=("SMALL", "LARGE"), help="instead of the defaults"
    )
    # REMAINDER: a step's arguments may start with "-" (a Fernet key can).
    parser.add_argument("--step", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.step:
        step, *rest = args.step
        if step == "fake":
            step_fake()
            return
        functions = {
            "setup": step_setup,
            "schedule": step_schedule,
            "drain": step_drain,
            "direct": step_direct,
        }
        typed = [int(value) if value.isdigit() else value for value in rest]
        print(json.dumps(functions[step](*typed)), flush=True)
        return
    results = measure(
        args.quick, databases=tuple(args.database or ("SQLite", "PostgreSQL")), sizes=args.sizes
    )
    print(json.dumps(results, indent=1, default=str))
    for row in rows(results):
        print(row)


if __name__ == "__main__":
    main()
