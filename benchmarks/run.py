"""Benchmark harness behind `make bench`: runs every part, prints one table, writes docs/performance.md.

Parts (each a module here with ``run(quick) -> rows``):

- ``engine``: steps per second of the pure engine on the webhook's conversation mix; triage;
- ``webhook``: signed Twilio SMS against gunicorn, with its baselines (``benchmarks/webhook.py``;
  skipped, with the reason printed, if that module or its ``run`` is missing);
- ``fanout``: review reminders for 100,000 children, the worker draining the outbox to a fake
  Twilio server against the fake's own speed, peak memory at 10,000 against 100,000;
- ``inbox``: the caseload page for an IRO with 90 children and 10,000 messages, against 5.

Each time is given with a baseline measured in the same run where the issue asks for one, since
absolute times drift on a shared machine. The harness measures and asserts nothing: a missed
target is printed as "not met", and the exit status is non-zero only if a part failed to run.

    .venv/bin/python benchmarks/run.py            # the full run (make bench); writes docs/performance.md
    .venv/bin/python benchmarks/run.py --quick    # small sizes; prints only (add --write to write)
    .venv/bin/python benchmarks/run.py --only engine,inbox
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DOC = ROOT / "docs" / "performance.md"
# Everything from this line on in docs/performance.md is written by hand and kept by the harness.
FINDINGS_MARKER = "<!-- Everything below is written by hand; benchmarks/run.py keeps it. -->"
PARTS = ("engine", "webhook", "fanout", "inbox")
COLUMNS = ("figure", "value", "baseline", "ratio", "target", "met")


def say(line: str) -> None:
    """Progress goes to stderr, so stdout holds the table alone."""
    print(line, file=sys.stderr, flush=True)


# -- the machine ------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gb() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GB"
    except OSError:
        pass
    return "?"


def _postgres_version() -> str:
    from sqlalchemy import create_engine, text

    from app.config import database_url
    from benchmarks.fanout import postgres_url

    try:
        engine = create_engine(database_url(postgres_url()))
        with engine.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar()
        engine.dispose()
        return str(version)
    except Exception as error:  # noqa: BLE001 - the machine description must not stop the run
        return f"not reachable ({type(error).__name__})"


def _git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "?"


def machine() -> dict[str, str]:
    """What the figures were taken on, and when."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "host": platform.node(),
        "CPU": f"{_cpu_model()} ({platform.machine()})",
        "cores": str(os.cpu_count()),
        "RAM": _ram_gb(),
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "PostgreSQL": _postgres_version(),
        "commit": _git_commit(),
        "load average at start": load,
    }


# -- the parts ----------------------------------------------------------------------------------


def webhook_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Harness rows from ``benchmarks.webhook.run``'s result (its own targets if its shape is new)."""
    from benchmarks import webhook as webhook_bench

    rows: list[dict[str, Any]] = []
    try:
        for name, f in result["databases"].items():
            floor, webhook, half = f["floor"], f["webhook"], f["webhook_half"]
            rows += [
                {
                    "figure": f"webhook {name}: requests per second at saturation",
                    "value": f"{webhook['requests_per_second']:,.0f}",
                    "baseline": f"floor {floor['requests_per_second']:,.0f}",
                    # To three places: 0.499 is not met, and would read 0.50.
                    "ratio": f"{f['ratio_to_floor']:.3f}",
                    "target": ">= 0.50 of the floor",
                    "met": f["ratio_to_floor"] >= 0.5,
                    "note": (
                        f"bare endpoint {f['bare']['requests_per_second']:,.0f}/s, signature check "
                        f"{f['signed']['requests_per_second']:,.0f}/s; the ratio is the median of the "
                        "rounds' ratios, not the rates over all rounds"
                    ),
                },
                {
                    "figure": f"webhook {name}: p50 / p99 ms at saturation",
                    "value": f"{webhook['p50_ms']:.1f} / {webhook['p99_ms']:.1f}",
                    "baseline": f"floor {floor['p50_ms']:.1f} / {floor['p99_ms']:.1f}",
                    "ratio": f"{webhook['p99_ms'] / max(floor['p99_ms'], 1e-9):.2f} (p99)",
                    "target": "(reported)",
                    "met": None,
                },
                {
                    "figure": f"webhook {name}: p99 ms at half the saturation rate",
                    "value": f"{half['p99_ms']:.1f}",
                    "baseline": f"floor p99 {floor['p99_ms']:.1f} at saturation",
                    "target": "< 100 ms",
                    "met": half["p99_ms"] < 100,
                    "note": "; ".join(
                        part
                        for part in (
                            f"asked {half.get('target_rps', 0):,.0f} req/s, "
                            f"got {half['requests_per_second']:,.0f}",
                            webhook_bench.slow_note(half),
                        )
                        if part
                    ),
                },
                {
                    "figure": f"web worker {name}: resident memory after the webhook run",
                    "value": f"{f['worker_rss_mb']:.0f} MB",
                    "target": "< 150 MB",
                    "met": f["worker_rss_mb"] < 150,
                },
                {
                    "figure": f"webhook {name}: every message stored once, no 5xx",
                    "value": "yes" if f["check"]["ok"] else "NO",
                    "target": "yes",
                    "met": bool(f["check"]["ok"]),
                    "note": (
                        "{sent:,} sent by {children_heard_from:,} children, {stored:,} stored, "
                        "{missing} missing, {unexpected} unexpected, {server_errors} 5xx, {not_200} not 200, "
                        "{socket_errors} socket errors or timeouts"
                    ).format(**f["check"]),
                },
            ]
        return rows
    except (KeyError, TypeError, AttributeError):
        return [
            {"figure": f"webhook: {t['target']}", "value": str(t["value"]), "met": t["met"]}
            for t in result.get("targets", [])
        ]


def run_part(name: str, quick: bool) -> list[dict[str, Any]]:
    """One part's rows; a missing webhook module is a skip with its reason, not a failure."""
    try:
        module = importlib.import_module(f"benchmarks.{name}")
    except ImportError as error:
        if name == "webhook":
            say(f"webhook: skipped, benchmarks/webhook.py cannot be imported ({error})")
            return [{"figure": "webhook: skipped", "value": f"cannot import benchmarks/webhook.py: {error}"}]
        raise
    run: Callable[..., Any] | None = getattr(module, "run", None)
    if run is None:
        say(f"{name}: skipped, benchmarks/{name}.py has no run(quick)")
        return [{"figure": f"{name}: skipped", "value": f"benchmarks/{name}.py has no run(quick)"}]
    if name == "webhook":
        return webhook_rows(run(quick, say=say))
    return run(quick)


# -- the table ----------------------------------------------------------------------------------


def cell(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    if column == "met":
        return {True: "met", False: "**not met**", None: ""}.get(value, str(value))
    return "" if value is None else str(value).replace("|", "/")


def table(rows: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """The rows as one Markdown table, and the numbered notes under it."""
    notes: list[str] = []
    lines = ["| " + " | ".join(COLUMNS) + " |", "| " + " | ".join("---" for _ in COLUMNS) + " |"]
    for row in rows:
        cells = [cell(row, column) for column in COLUMNS]
        if row.get("note"):
            notes.append(str(row["note"]))
            cells[0] += f" [{len(notes)}]"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), [f"[{n}] {note}" for n, note in enumerate(notes, 1)]


def document(about: dict[str, str], body: str, notes: list[str], quick: bool, seconds: float) -> str:
    """The generated top of docs/performance.md."""
    kind = "quick run (small sizes)" if quick else "full run"
    machine_lines = "\n".join(f"| {key} | {value} |" for key, value in about.items())
    return f"""# Performance

Written by `make bench` (`benchmarks/run.py`, {kind}, {seconds / 60:.0f} minutes). Each part is a module
in `benchmarks/`; its docstring says exactly what it measures. Absolute times drift on a shared
machine, so each time is given with a baseline taken in the same run and the ratio between them.
"met" and "not met" are the targets of issue 7; the harness asserts nothing.

| machine | |
| --- | --- |
{machine_lines}

{body}

{chr(10).join(notes)}

{FINDINGS_MARKER}
"""


def write_doc(generated: str) -> None:
    """Replace the generated part of docs/performance.md, keeping the hand-written part after the marker."""
    kept = "\n## What we found\n\n(Not written yet.)\n"
    if DOC.exists():
        old = DOC.read_text(encoding="utf-8")
        if FINDINGS_MARKER in old:
            kept = old.split(FINDINGS_MARKER, 1)[1]
    DOC.write_text(generated + "\n" + kept.lstrip("\n"), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for trying things out")
    parser.add_argument("--only", help=f"comma-separated parts to run, of {', '.join(PARTS)}")
    parser.add_argument("--write", action="store_true", help="write docs/performance.md after a quick run")
    parser.add_argument("--no-write", action="store_true", help="print only")
    options = parser.parse_args(argv)
    parts = [p.strip() for p in options.only.split(",")] if options.only else list(PARTS)
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")

    about = machine()
    say(
        f"Reviewline benchmarks on {about['CPU']}, {about['cores']} cores, "
        f"load {about['load average at start']}"
    )
    rows: list[dict[str, Any]] = []
    failed = []
    started = time.perf_counter()
    for name in parts:
        say(f"== {name}")
        part_start = time.perf_counter()
        try:
            rows += run_part(name, options.quick)
        except Exception as error:  # noqa: BLE001 - one broken part must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
            rows.append({"figure": f"{name}: FAILED", "value": f"{type(error).__name__}: {error}"[:200]})
        say(f"== {name} took {time.perf_counter() - part_start:.0f} s")
    seconds = time.perf_counter() - started

    body, notes = table(rows)
    print(body)
    if notes:
        print()
        print("\n".join(notes))
    write = not options.no_write and (options.write or (not options.quick and not options.only))
    if write:
        write_doc(document(about, body, notes, options.quick, seconds))
        say(f"written to {DOC.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
