"""CPU a webhook message costs against the floor's, in one process: where a saturated server's time goes.

A saturated webhook server on a two-core machine is short of CPU, not waiting, so its ratio to the
floor follows the CPU each request costs (the app's and its PostgreSQL backend's). This measures
that directly, with less noise than a saturated run: the benchmark's own signed requests go
through Flask's test client in one process, in interleaved rounds of the real webhook and of the
floor, and each round reads the process's CPU time and (on PostgreSQL) the CPU time of every
``postgres`` process from ``/proc``. Nothing else should be using the database meanwhile.

    python -m benchmarks.webhook_cpu                      # SQLite, in a temporary folder
    python -m benchmarks.webhook_cpu --url postgresql+psycopg://postgres@127.0.0.1:5432/rl_bench

Prints, per round and as medians, milliseconds of CPU per message (the process, the database,
both) and the ratio floor/webhook. The database at ``--url`` is emptied first (PostgreSQL: its
public schema is dropped).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from app import create_app
from benchmarks import webhook as wb
from benchmarks.baseline_app import BASELINE_PATHS, add_baselines

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def database_ticks() -> int:
    """CPU ticks of every PostgreSQL process on the machine (its backends and its background work)."""
    ticks = 0
    for name in Path("/proc").glob("[0-9]*/comm"):
        try:
            if name.read_text().startswith("postgres"):
                ticks += wb.process_ticks(int(name.parent.name))
        except OSError:
            continue  # the process ended
    return ticks


@dataclass
class Round:
    """Milliseconds per message of one round."""

    app_ms: float
    database_ms: float

    @property
    def cpu_ms(self) -> float:
        return self.app_ms + self.database_ms


def run_round(client: Any, lines: list[str]) -> Round:
    """Post each signed request; every one must be answered 200."""
    cpu, ticks = time.process_time(), database_ticks()
    for line in lines:
        path, signature, body = wb.parse_line(line)
        answer = client.post(
            path,
            data=body,
            headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
        )
        if answer.status_code != 200:
            raise RuntimeError(f"{path} answered {answer.status_code}: {answer.get_data(as_text=True)[:300]}")
    count = max(len(lines), 1)
    return Round(
        app_ms=(time.process_time() - cpu) / count * 1000,
        database_ms=(database_ticks() - ticks) / CLOCK_TICKS / count * 1000,
    )


def measure(url: str, children: int, rounds: int, per_round: int, say: Any = print) -> dict[str, list[Round]]:
    """Interleaved rounds of the webhook and the floor, after a warm-up of each."""
    keys = Fernet.generate_key().decode()
    settings = wb.Settings.for_run(True, children=children)
    phones, locales, _ = wb.prepare_data(url, keys, settings)
    warm = min(per_round, 100)
    total = warm + rounds * per_round
    plans = {
        "webhook": [p.line for p in wb.build_plan(phones, locales, total)],
        "floor": [p.line for p in wb.build_plan(phones, locales, total, path=BASELINE_PATHS["floor"])],
    }
    app = add_baselines(
        create_app(
            {
                "DATABASE_URL": url,
                "SECRET_KEY": "webhook-cpu",
                "FIELD_ENCRYPTION_KEYS": keys,
                "PUBLIC_BASE_URL": wb.PUBLIC_BASE_URL,
                "TWILIO_ACCOUNT_SID": wb.ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN": wb.TOKEN,
                "TWILIO_FROM": wb.SERVICE_NUMBER,
            }
        )
    )
    client = app.test_client()
    for lines in plans.values():
        run_round(client, lines[:warm])
    results: dict[str, list[Round]] = {"webhook": [], "floor": []}
    for n in range(rounds):
        part = slice(warm + n * per_round, warm + (n + 1) * per_round)
        for name in results:
            results[name].append(run_round(client, plans[name][part]))
        webhook, floor = results["webhook"][-1], results["floor"][-1]
        say(
            f"round {n + 1}: webhook {webhook.app_ms:.2f} + {webhook.database_ms:.2f} ms, floor "
            f"{floor.app_ms:.2f} + {floor.database_ms:.2f} ms, ratio {floor.cpu_ms / webhook.cpu_ms:.3f}"
        )
    return results


def summary(results: dict[str, list[Round]]) -> dict[str, Any]:
    """Medians per message, and the median of the rounds' floor/webhook ratios."""
    figures: dict[str, Any] = {
        name: {
            "app_ms": round(statistics.median(r.app_ms for r in rounds), 3),
            "database_ms": round(statistics.median(r.database_ms for r in rounds), 3),
            "cpu_ms": round(statistics.median(r.cpu_ms for r in rounds), 3),
        }
        for name, rounds in results.items()
    }
    ratios = [f.cpu_ms / w.cpu_ms for w, f in zip(results["webhook"], results["floor"], strict=True)]
    figures["ratio"] = round(statistics.median(ratios), 3)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", help="database URL (emptied first); SQLite in a temporary folder if not given"
    )
    parser.add_argument("--children", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-round", type=int, default=500)
    args = parser.parse_args(argv)
    os.environ.pop("REVIEWLINE_DEV", None)
    with tempfile.TemporaryDirectory() as folder:
        url = args.url or f"sqlite:///{folder}/webhook-cpu.db"
        figures = summary(measure(url, args.children, args.rounds, args.per_round))
    for name in ("webhook", "floor"):
        f = figures[name]
        print(
            f"{name}: {f['app_ms']:.2f} ms app + {f['database_ms']:.2f} ms database"
            f" = {f['cpu_ms']:.2f} ms a message"
        )
    print(f"floor/webhook CPU a message: {figures['ratio']:.3f} (median of the rounds)")


if __name__ == "__main__":
    main()
