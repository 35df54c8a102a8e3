"""Inbound webhook benchmark: signed Twilio SMS from many children, against baselines in the same server.

For SQLite and PostgreSQL in turn: migrate a fresh database, add the children (``bench_data``),
start gunicorn as the Procfile does (sync workers) with ``benchmarks.baseline_app:create()``, and
drive it from a separate load-generator process (``wrk`` with a Lua script that replays a request
file; a Python client if ``wrk`` is missing). Every request carries a valid X-Twilio-Signature,
computed here with the twilio library, and the children hold whole conversations in order.

Measured per database: requests per second, p50 and p99 at saturation for the bare endpoint, the
signature check, the floor (signature, form, one committed row) and the real webhook; then the
real webhook at half its saturation rate, paced (open loop: latency counts from when each request
was due, so a stall is not hidden); the resident memory of each web worker; and a check that every
message a child sent was stored exactly once, with no 5xx.

    .venv/bin/python benchmarks/webhook.py [--quick] [--children N] [--seconds S] [--only sqlite]

``run(quick)`` returns the figures as a dict for the harness (``benchmarks/run.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from math import ceil
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TOKEN = "bench-auth-token-" + "0" * 15
ACCOUNT_SID = "AC" + "b" * 32
PUBLIC_BASE_URL = "https://reviewline.example.org"
SERVICE_NUMBER = "+447700900500"
WEBHOOK_PATH = "/webhooks/twilio/sms"
ENDPOINTS = ("bare", "signed", "floor", "webhook")
# A paced request slower than this is counted, with the second it was due in: many slow requests
# within a second or two are a stall of the machine or the database (a checkpoint's sync), not a
# slow message.
SLOW_MS = 100.0
# Held for the whole of a run, so two benchmark runs on one machine never overlap.
LOCK_PATH = Path(tempfile.gettempdir()) / "reviewline-benchmark.lock"

# Conversations a child holds, in their language. Each is a list of texts sent one after another;
# a child goes from one to the next (the next often starts with MENU, as children do).
CONVERSATIONS: dict[str, dict[str, list[str]]] = {
    "en": {
        "who_is_my_iro": ["Hi", "1"],
        "ask_iro_directly": ["who is my iro"],
        "my_views": [
            "menu",
            "2",
            "2",
            "It is ok here, my carer is kind",
            "I would like to see my brother more",
            "NOT SURE",
            "I feel fine most days",
            "I play football on Saturdays",
            "I want to go to college",
            "SKIP",
            "more time with my brother",
            "my carer and my nan",
            "no one",
            "after school on a Friday",
            "my phone and seeing my brother",
            "SKIP",
            "1",
            "NO",
            "1",
        ],
        "my_views_later": [
            "menu",
            "2",
            "1",
            "It is fine where I live",
            "LATER",
            "CARRY ON",
            "NOT SURE",
            "SKIP",
        ],
        "a_worry": ["menu", "4", "4", "I want to stay at my school next year please"],
        "my_plan": ["menu", "3", "3"],
        "help": ["HELP", "menu"],
    },
    "cy": {
        "who_is_my_iro": ["Helo", "1"],
        "ask_iro_directly": ["dewislen", "1"],
        "my_views": [
            "dewislen",
            "2",
            "2",
            "Mae'n iawn yma, mae fy ngofalwr yn garedig",
            "Hoffwn i weld fy mrawd yn amlach",
            "dwn i ddim",
            "Dw i'n teimlo'n iawn",
            "Dw i'n chwarae pel-droed ar ddydd Sadwrn",
            "Dw i eisiau mynd i'r coleg",
            "sgip",
            "mwy o amser gyda fy mrawd",
            "fy ngofalwr a fy nain",
            "neb",
            "ar ol ysgol ddydd Gwener",
            "fy ffon a gweld fy mrawd",
            "sgip",
            "1",
            "na",
            "1",
        ],
        "my_views_later": [
            "dewislen",
            "2",
            "1",
            "Mae'n iawn lle dw i'n byw",
            "wedyn",
            "parhau",
            "dwn i ddim",
            "sgip",
        ],
        "a_worry": ["dewislen", "4", "4", "Dw i eisiau aros yn fy ysgol y flwyddyn nesaf"],
        "my_plan": ["dewislen", "3", "3"],
        "help": ["help", "dewislen"],
    },
}
# How often a child starts each conversation.
WEIGHTS = {
    "who_is_my_iro": 4,
    "ask_iro_directly": 2,
    "my_views": 3,
    "my_views_later": 2,
    "a_worry": 2,
    "my_plan": 2,
    "help": 1,
}

LUA = r"""
-- Replays one request file per wrk thread (PREFIX.<thread>), in order; see benchmarks/webhook.py.
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  table.insert(threads, thread)
  next_id = next_id + 1
end

function init(args)
  -- args: file prefix, "wrap" or "once", then the starting position of each thread
  wrap = args[2] == "wrap"
  position = tonumber(args[3 + id]) or 0
  start = position
  sent, exhausted, statuses = 0, 0, {}
  requests = {}
  local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
  for line in io.lines(args[1] .. "." .. id) do
    local path, signature, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
    headers["X-Twilio-Signature"] = signature
    requests[#requests + 1] = wrk.format("POST", path, headers, body)
  end
  fallback = wrk.format("GET", "/healthz", {}, nil)
  -- wrk calls request() once on its first thread to check the script; that one is never sent.
  checked = id ~= 0
end

function request()
  if not checked then
    checked = true
    return requests[position + 1] or fallback
  end
  if position >= #requests then
    if not wrap then
      exhausted = exhausted + 1
      return fallback
    end
    position = 0
  end
  position = position + 1
  sent = sent + 1
  return requests[position]
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local parts = {}
  for _, thread in ipairs(threads) do
    local codes = {}
    for code, n in pairs(thread:get("statuses")) do
      codes[#codes + 1] = string.format('"%s":%d', code, n)
    end
    parts[#parts + 1] = string.format(
      '{"id":%d,"start":%d,"position":%d,"sent":%d,"exhausted":%d,"statuses":{%s}}',
      thread:get("id"), thread:get("start"), thread:get("position"), thread:get("sent"),
      thread:get("exhausted"), table.concat(codes, ","))
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d},"latency_us":{"mean":%.1f,"p50":%.1f,"p90":%.1f,"p99":%.1f,"max":%.1f},"threads":[%s]}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(parts, ",")))
end
"""


@dataclass(frozen=True)
class Settings:
    """How big and how long: the full run, or a quick one for trying things out."""

    children: int = 10_000
    seconds: float = 30.0
    warmup_seconds: float = 3.0
    connections: int = 16
    threads: int = 2
    # Children holding a conversation at the same time (each sends its next message in turn).
    active: int = 1_000
    # The saturated runs are split into rounds of bare, signed, floor, webhook, so the webhook is
    # compared with a floor measured moments before it, whatever else the machine is doing.
    rounds: int = 3
    # "wrk" if it is installed, else the Python client; "python" to use the Python client anyway.
    client: str = "auto"
    locale_mix: tuple[tuple[str, float], ...] = (("en", 0.9), ("cy", 0.1))

    @classmethod
    def for_run(cls, quick: bool, **overrides: Any) -> Settings:
        base = cls(children=200, seconds=5.0, warmup_seconds=1.0) if quick else cls()
        return cls(**{**base.__dict__, **{k: v for k, v in overrides.items() if v is not None}})


# -- requests ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """One signed request: which child sent it, its MessageSid, and the line for the request file."""

    child: int
    sid: str
    line: str


def twilio_form(sender: str, text: str, sid: str) -> dict[str, str]:
    """The form Twilio posts for an inbound SMS (the fields it really sends, in its order)."""
    return {
        "ToCountry": "GB",
        "ToState": "",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": text,
        "FromCountry": "GB",
        "To": SERVICE_NUMBER,
        "ToZip": "",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }


def signed_line(path: str, form: dict[str, str], token: str = TOKEN, base_url: str = PUBLIC_BASE_URL) -> str:
    """A request-file line: path, tab, X-Twilio-Signature for the public URL, tab, the urlencoded body."""
    from twilio.request_validator import RequestValidator

    signature = RequestValidator(token).compute_signature(base_url + path, form)
    return f"{path}\t{signature}\t{urlencode(form)}"


def parse_line(line: str) -> tuple[str, str, str]:
    """Path, signature and body of a request-file line."""
    path, signature, body = line.rstrip("\n").split("\t", 2)
    return path, signature, body


def child_conversations(locale: str, rng: random.Random) -> Iterator[list[str]]:
    """The conversations one child holds, one after another, chosen by ``WEIGHTS``."""
    scripts = CONVERSATIONS.get(locale, CONVERSATIONS["en"])
    names, weights = list(WEIGHTS), list(WEIGHTS.values())
    while True:
        yield scripts[rng.choices(names, weights)[0]]


def build_plan(
    phones: list[str],
    locales: list[str],
    total: int,
    path: str = WEBHOOK_PATH,
    seed: int = 7,
    active: int = 1_000,
) -> list[Planned]:
    """``total`` signed requests from ``active`` children at a time, each holding a whole conversation.

    The requests go round the active children, one message each; a child who has finished a
    conversation makes room for the next child, until every child has had a turn, and then round
    again. One child's consecutive messages are ``active`` requests apart, so they are never in
    flight together and each conversation reaches the server in order.
    """
    run_id = secrets.token_hex(4)
    count = len(phones)
    active = max(1, min(active, count))
    conversations = [
        child_conversations(locale, random.Random(f"{seed}:{i}")) for i, locale in enumerate(locales)
    ]
    slots = [[child, list(next(conversations[child]))] for child in range(active)]
    busy = set(range(active))
    waiting = active % count  # the next child to start a conversation
    plan: list[Planned] = []
    while len(plan) < total:
        for slot in slots:
            if len(plan) >= total:
                break
            child, messages = slot
            sid = f"SM{run_id}{len(plan):024x}"
            form = twilio_form(phones[child], messages.pop(0), sid)
            plan.append(Planned(child, sid, signed_line(path, form)))
            if not messages:
                busy.discard(child)
                while waiting in busy:
                    waiting = (waiting + 1) % count
                slot[0], slot[1] = waiting, list(next(conversations[waiting]))
                busy.add(waiting)
                waiting = (waiting + 1) % count
    return plan


def write_partitions(plan: list[Planned], prefix: Path, parts: int) -> list[list[Planned]]:
    """Split the plan by child into ``parts`` files (``prefix.0``, ...), keeping each child's order."""
    partitions: list[list[Planned]] = [[] for _ in range(parts)]
    for item in plan:
        partitions[item.child % parts].append(item)
    for number, items in enumerate(partitions):
        Path(f"{prefix}.{number}").write_text("".join(item.line + "\n" for item in items))
    return partitions


# -- load generators -----------------------------------------------------------------------------------


@dataclass
class LoadResult:
    """What one load run measured, whichever tool ran it."""

    requests: int  # responses received
    seconds: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    statuses: Counter[str]
    errors: dict[str, int]
    sent_by_part: list[int]  # requests issued from each partition file, from its start position
    end_by_part: list[int]  # position reached in each partition file
    exhausted: int = 0
    tool: str = "wrk"
    target_rps: float | None = None
    other_load_cores: float = 0.0
    # Paced runs: (when it was due, seconds from the start of the first load generator; ms) of each
    # request over SLOW_MS.
    slow: list[tuple[float, float]] = field(default_factory=list)

    def slow_seconds(self) -> int:
        """In how many distinct seconds of the run the slow requests were due."""
        return len({int(due) for due, _ in self.slow})

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        server_errors = sum(n for code, n in self.statuses.items() if code.startswith("5"))
        return {
            "requests_per_second": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "mean_ms": round(self.mean_ms, 2),
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
            "statuses": dict(self.statuses),
            "server_errors": server_errors,
            "socket_errors": {k: v for k, v in self.errors.items() if v},
            "tool": self.tool,
            "other_load_cores": round(self.other_load_cores, 2),
            **({"target_rps": round(self.target_rps, 1)} if self.target_rps else {}),
            **({"plan_exhausted": self.exhausted} if self.exhausted else {}),
            **(
                {
                    "slow_ms": SLOW_MS,
                    "slow_requests": len(self.slow),
                    "seconds_with_slow": self.slow_seconds(),
                }
                if self.target_rps
                else {}
            ),
        }


def combined(results: list[LoadResult]) -> dict[str, Any]:
    """Several rounds of one endpoint as one figure: the overall rate, the median p50 and p99."""
    summaries = [result.summary() for result in results]
    requests, seconds = sum(r.requests for r in results), sum(r.seconds for r in results)
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for result in results:
        statuses.update(result.statuses)
        errors.update({k: v for k, v in result.errors.items() if v})
    return {
        "requests_per_second": round(requests / seconds if seconds else 0.0, 1),
        "p50_ms": round(statistics.median(r.p50_ms for r in results), 2),
        "p99_ms": round(statistics.median(r.p99_ms for r in results), 2),
        "mean_ms": round(statistics.fmean(r.mean_ms for r in results), 2),
        "requests": requests,
        "seconds": round(seconds, 2),
        "statuses": dict(statuses),
        "server_errors": sum(n for code, n in statuses.items() if code.startswith("5")),
        "socket_errors": dict(errors),
        "tool": results[0].tool,
        "other_load_cores": round(statistics.fmean(r.other_load_cores for r in results), 2),
        "rounds": [
            {k: s[k] for k in ("requests_per_second", "p50_ms", "p99_ms", "other_load_cores")}
            for s in summaries
        ],
        **(
            {"plan_exhausted": sum(r.exhausted for r in results)} if any(r.exhausted for r in results) else {}
        ),
    }


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    base: str, lua: Path, prefix: Path, settings: Settings, seconds: float, starts: list[int], wrap: bool
) -> LoadResult:
    """Saturate the server with wrk (closed loop: each connection sends its next request at once)."""
    command = [
        "wrk",
        f"-t{settings.threads}",
        f"-c{settings.connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(lua),
        base,
        "--",
        str(prefix),
        "wrap" if wrap else "once",
        *map(str, starts),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no figures:\n{done.stdout}\n{done.stderr}")
    data = json.loads(line[len("WRKJSON ") :])
    threads = sorted(data["threads"], key=lambda t: t["id"])
    statuses: Counter[str] = Counter()
    for thread in threads:
        statuses.update(thread["statuses"])
    latency = data["latency_us"]
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=latency["p50"] / 1000,
        p99_ms=latency["p99"] / 1000,
        mean_ms=latency["mean"] / 1000,
        statuses=statuses,
        errors=data["errors"],
        sent_by_part=[t["sent"] for t in threads],
        end_by_part=[t["position"] for t in threads],
        exhausted=sum(t["exhausted"] for t in threads),
    )


def run_python_load(
    base: str,
    prefix: Path,
    parts: int,
    starts: list[int],
    *,
    seconds: float,
    connections: int | None = None,
    rate: float | None = None,
    wrap: bool = False,
) -> LoadResult:
    """One load-generator process per partition file: closed loop (``connections``) or paced (``rate``)."""
    processes = []
    for part in range(parts):
        job = {
            "base": base,
            "file": f"{prefix}.{part}",
            "start": starts[part],
            "seconds": seconds,
            "connections": max(1, (connections or 0) // parts) if connections else None,
            "rate": rate / parts if rate else None,
            "wrap": wrap,
        }
        processes.append(
            subprocess.Popen(
                [sys.executable, __file__, "loadgen", json.dumps(job)], stdout=subprocess.PIPE, text=True
            )
        )
    outputs = []
    for process in processes:
        out, _ = process.communicate()
        if process.returncode:
            raise RuntimeError(f"the load generator failed ({process.returncode})")
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    latencies = sorted(x for out in outputs for x in out["latencies_ms"])
    statuses: Counter[str] = Counter()
    for out in outputs:
        statuses.update(out["statuses"])
    errors = Counter[str]()
    for out in outputs:
        errors.update(out["errors"])
    return LoadResult(
        requests=len(latencies),
        seconds=max(out["seconds"] for out in outputs),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        mean_ms=statistics.fmean(latencies) if latencies else 0.0,
        statuses=statuses,
        errors=dict(errors),
        sent_by_part=[out["sent"] for out in outputs],
        end_by_part=[out["position"] for out in outputs],
        tool="python",
        target_rps=rate,
        # On one clock: the machine's monotonic clock, from the first load generator's start.
        slow=sorted(
            (due - min(out["begin"] for out in outputs), ms) for out in outputs for due, ms in out["slow"]
        ),
    )


def percentile(ordered: list[float], p: float) -> float:
    """The p-th percentile of sorted values (nearest rank)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, ceil(p / 100 * len(ordered)) - 1))]


async def _one_request(host: str, port: int, raw: bytes) -> str:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(raw)
        await writer.drain()
        head = await reader.readline()
        # Sync gunicorn workers close the connection after each response: read to the end.
        await reader.read()
    finally:
        writer.close()
    return head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/") else "no-answer"


async def _loadgen(job: dict[str, Any]) -> dict[str, Any]:
    """A load generator over one request file: paced (open loop) if ``rate`` is set, else closed loop."""
    target = urlsplit(job["base"])
    host, port = target.hostname or "127.0.0.1", target.port or 80
    lines = Path(job["file"]).read_text().splitlines()
    raws = []
    for line in lines:
        path, signature, body = parse_line(line)
        raws.append(
            (
                f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"X-Twilio-Signature: {signature}\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\n\r\n{body}"
            ).encode()
        )
    position, sent = job["start"], 0
    latencies: list[float] = []
    slow: list[tuple[float, float]] = []
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    loop = asyncio.get_running_loop()

    def next_request() -> bytes | None:
        nonlocal position, sent
        if position >= len(raws):
            if not job["wrap"]:
                return None
            position = 0
        position += 1
        sent += 1
        return raws[position - 1]

    async def timed(raw: bytes, due: float) -> None:
        try:
            status = await _one_request(host, port, raw)
        except OSError as error:
            errors[type(error).__name__] += 1
            return
        statuses[status] += 1
        # From when the request was due, not when it went: a stalled server is not hidden.
        latency = (loop.time() - due) * 1000
        latencies.append(latency)
        if latency > SLOW_MS:
            slow.append((due, latency))  # the loop's clock: the machine's monotonic clock

    begin = loop.time()
    end = begin + job["seconds"]
    if job["rate"]:
        interval = 1 / job["rate"]
        tasks = []
        count = int(job["seconds"] * job["rate"])
        for n in range(count):
            due = begin + n * interval
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            raw = next_request()
            if raw is None:
                break
            tasks.append(asyncio.create_task(timed(raw, due)))
        await asyncio.gather(*tasks)
    else:

        async def connection() -> None:
            while loop.time() < end:
                raw = next_request()
                if raw is None:
                    return
                await timed(raw, loop.time())

        await asyncio.gather(*(connection() for _ in range(job["connections"])))
    return {
        "latencies_ms": latencies,
        "slow": slow,
        "begin": begin,
        "statuses": statuses,
        "errors": errors,
        "sent": sent,
        "position": position,
        "seconds": loop.time() - begin,
    }


# -- the server -------------------------------------------------------------------------------------


def web_workers() -> int:
    """gunicorn's workers as the Procfile sets them: WEB_CONCURRENCY, 2 if it is not set."""
    return int(os.environ.get("WEB_CONCURRENCY") or 2)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """gunicorn as the Procfile runs it (sync workers), serving the app with its baselines."""

    environment: dict[str, str]
    log_path: Path
    workers: int = field(default_factory=web_workers)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            str(Path(sys.executable).with_name("gunicorn")),
            "-c",
            "gunicorn.conf.py",
            "--workers",
            str(self.workers),
            "--bind",
            f"127.0.0.1:{self.port}",
            "benchmarks.baseline_app:create()",
        ]
        env = {k: v for k, v in os.environ.items() if k not in ("REVIEWLINE_DEV", "FLASK_DEBUG")}
        env.update(self.environment)
        self.log = self.log_path.open("ab")
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        healthy = 0
        while healthy < 4:  # a few answers, so both workers have most likely started
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2) as answer:
                    healthy += answer.status == 200
            except OSError:
                time.sleep(0.2)

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [int(child) for child in children]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def process_ticks(pid: int, children: bool = False) -> int:
    """CPU ticks a process has used (and, if asked, its children that have been waited for)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    own = int(fields[11]) + int(fields[12])
    return own + (int(fields[13]) + int(fields[14]) if children else 0)


def _busy_ticks() -> int:
    """CPU ticks spent on anything but idling, on all cores together, since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values) - values[3] - values[4]  # minus idle and iowait


@dataclass
class OtherLoad:
    """How much CPU other work on the machine took during a run (the machine may be shared).

    Ours: this process and the load generators it waited for, the gunicorn workers, and the
    PostgreSQL backends serving the benchmark database. The rest of the busy time is someone else's.
    """

    server: Server
    database: str | None

    def _ours(self) -> int:
        ticks = process_ticks(os.getpid(), children=True)
        if self.server.process is not None:
            ticks += process_ticks(self.server.process.pid)
            ticks += sum(process_ticks(pid) for pid in self.server.worker_pids())
        if self.database:
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        command = (
                            (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                        )
                    except OSError:
                        continue
                    if command.startswith("postgres: ") and f" {self.database} " in command:
                        ticks += process_ticks(int(entry.name))
        return ticks

    def start(self) -> tuple[int, int, float]:
        return _busy_ticks(), self._ours(), time.monotonic()

    def cores(self, started: tuple[int, int, float]) -> float:
        """Cores' worth of CPU used by other work since ``started``."""
        busy, ours, at = started
        other = (_busy_ticks() - busy) - (self._ours() - ours)
        return max(0.0, other / os.sysconf("SC_CLK_TCK") / max(time.monotonic() - at, 1e-9))


def resident_mb(pid: int) -> dict[str, float]:
    """Resident memory now (VmRSS) and at its peak (VmHWM) of a process, in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = round(int(rest.split()[0]) / 1024, 1)
    return values


# -- one database --------------------------------------------------------------------------------------


def reset_database(url: str) -> None:
    """An empty database: the SQLite file is new; PostgreSQL's public schema is dropped and made again."""
    if not url.startswith("postgresql"):
        return
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def prepare_data(url: str, keys: str, settings: Settings) -> tuple[list[str], list[str], float]:
    """Migrate, add the children and the floor's table; the children's numbers, locales and seconds taken."""
    from flask_migrate import upgrade
    from sqlalchemy import select

    from app import create_app
    from app.extensions import db
    from app.models import ChannelIdentity, Child
    from benchmarks.baseline_app import prepare
    from benchmarks.bench_data import make_children

    reset_database(url)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "FIELD_ENCRYPTION_KEYS": keys})
    started = time.perf_counter()
    with app.app_context():
        upgrade()
        phones = make_children(db.session, settings.children, dict(settings.locale_mix))
        db.session.commit()
        prepare(db.engine)
        first = ChannelIdentity.find(db.session, "sms", phones[0])
        assert first is not None
        locale_of = dict(
            db.session.execute(
                select(ChannelIdentity.child_id, Child.locale)
                .join(Child, Child.id == ChannelIdentity.child_id)
                .where(ChannelIdentity.child_id >= first.child_id)
            ).all()
        )
        ids = list(
            db.session.scalars(
                select(ChannelIdentity.child_id)
                .where(ChannelIdentity.child_id >= first.child_id)
                .order_by(ChannelIdentity.child_id)
            )
        )
        locales = [locale_of[child_id] for child_id in ids]
        db.session.remove()
        db.engine.dispose()
    return phones, locales, time.perf_counter() - started


def _query(url: str, sql: str) -> list[Any]:
    """Rows of one plain SQL query (no app needed: what is read here is not encrypted)."""
    from sqlalchemy import create_engine, text

    from app.config import database_url

    engine = create_engine(database_url(url))
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql)).all())
    finally:
        engine.dispose()


def stored_sids(url: str, keys: str) -> list[str]:
    """The MessageSid of every inbound SMS stored."""
    rows = _query(url, "SELECT provider_id FROM message WHERE direction = 'in' AND channel = 'sms'")
    return [row[0] for row in rows]


def stored_outcome(url: str, keys: str) -> dict[str, Any]:
    """What the conversations produced: replies, concerns by kind, views sent to the IRO."""
    return {
        "replies": _query(url, "SELECT count(*) FROM message WHERE direction = 'out'")[0][0],
        "concerns": dict(_query(url, "SELECT category, count(*) FROM concern GROUP BY category ORDER BY 1")),
        "views_sent": _query(url, "SELECT count(*) FROM wishes_submission")[0][0],
    }


def checkpoint_sync_ms(url: str) -> float | None:
    """PostgreSQL: milliseconds its checkpoints have spent syncing files to disk so far (a
    checkpoint's sync can hold up commits); None on SQLite or where the figure cannot be read.
    PostgreSQL adds a checkpoint's sync time when the checkpoint ends, so a sync still going on
    when a run ends is not counted in that run."""
    if not url.startswith("postgresql"):
        return None
    for sql in (
        "SELECT checkpoint_sync_time FROM pg_stat_bgwriter",  # PostgreSQL 16 and before
        "SELECT sync_time FROM pg_stat_checkpointer",  # 17 on
    ):
        try:
            return float(_query(url, sql)[0][0])
        except Exception:  # noqa: BLE001 - the other version's view
            continue
    return None


def slow_note(summary: dict[str, Any]) -> str:
    """A paced run's slow requests and, on PostgreSQL, how long checkpoints synced meanwhile, from
    its summary; empty for a run that did not count them."""
    if "slow_requests" not in summary:
        return ""
    note = (
        f"{summary['slow_requests']:,} over {summary['slow_ms']:.0f} ms, "
        f"due in {summary['seconds_with_slow']} of its seconds"
    )
    if "checkpoint_sync_ms" in summary:
        note += f"; PostgreSQL's checkpoints synced for {summary['checkpoint_sync_ms']:,} ms meanwhile"
    return note


def wait_until_quiet(url: str, expected: int, timeout: float = 30.0) -> None:
    """Wait for requests the load generator abandoned at its deadline to be finished by the server."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _query(url, "SELECT count(*) FROM message WHERE direction = 'in'")[0][0] >= expected:
            return
        time.sleep(0.2)


def figures_line(result: LoadResult) -> str:
    return f"{result.rps:>8,.0f} req/s  p50 {result.p50_ms:6.1f} ms  p99 {result.p99_ms:6.1f} ms"


def start_profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy recording one worker for ``seconds`` (raw collapsed stacks), if py-spy is installed."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return None
    command = [spy, "record", "-p", str(pid), "-d", str(max(1, round(seconds))), "-f", "raw", "-o", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def profile_summary(raw: Path, top: int = 25) -> list[tuple[float, str]]:
    """The functions of app/ (and a few libraries) that took the most of a worker's time, inclusive."""
    import re

    total, inclusive = 0, Counter[str]()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        for frame in {re.sub(r":\d+\)$", ")", f) for f in stack.split(";")}:
            inclusive[frame] += int(count)
    interesting = re.compile(r"\(app/|holidays/utils|fernet\.py|request_validator|do_commit|do_execute")
    shares = [(n / total, frame) for frame, n in inclusive.most_common() if interesting.search(frame)]
    return shares[:top]


def bench_database(
    name: str, url: str, settings: Settings, work: Path, say: Any = print, profile: Path | None = None
) -> dict[str, Any]:
    """Every figure for one database."""
    from cryptography.fernet import Fernet

    from benchmarks.baseline_app import BASELINE_PATHS

    keys = Fernet.generate_key().decode()
    say(f"[{name}] migrating and adding {settings.children:,} children ...")
    phones, locales, setup_seconds = prepare_data(url, keys, settings)
    say(f"[{name}] data ready in {setup_seconds:.1f} s")
    parts = settings.threads
    lua = work / "replay.lua"
    lua.write_text(LUA)
    use_wrk = settings.client != "python" and wrk_available()

    def measured(load: Any) -> LoadResult:
        """Run a load, noting how much CPU other work on the machine took meanwhile."""
        started = other.start()
        result: LoadResult = load()
        result.other_load_cores = other.cores(started)
        return result

    def saturate(prefix: Path, seconds: float, starts: list[int], wrap: bool) -> LoadResult:
        if use_wrk:
            return measured(lambda: run_wrk(server.base, lua, prefix, settings, seconds, starts, wrap))
        return measured(
            lambda: run_python_load(
                server.base,
                prefix,
                parts,
                starts,
                seconds=seconds,
                connections=settings.connections,
                wrap=wrap,
            )
        )

    # The baselines replay the first messages of the same conversations, signed for their own paths.
    sample = build_plan(phones, locales, min(len(phones) * 4, 40_000))
    baseline_prefixes = {}
    for endpoint, path in BASELINE_PATHS.items():
        prefix = work / f"{name}-{endpoint}"
        lines = [Planned(p.child, p.sid, signed_line(path, dict_from_line(p.line))) for p in sample]
        write_partitions(lines, prefix, parts)
        baseline_prefixes[endpoint] = prefix

    server = Server(
        environment={
            "DATABASE_URL": url,
            "SECRET_KEY": secrets.token_urlsafe(32),
            "FIELD_ENCRYPTION_KEYS": keys,
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_FROM": SERVICE_NUMBER,
        },
        log_path=work / f"{name}-gunicorn.log",
    )
    other = OtherLoad(server, urlsplit(url).path.lstrip("/") if url.startswith("postgresql") else None)
    figures: dict[str, Any] = {"children": settings.children, "setup_seconds": round(setup_seconds, 1)}
    issued: list[Planned] = []
    rounds: dict[str, list[LoadResult]] = {endpoint: [] for endpoint in ENDPOINTS}
    each = settings.seconds / settings.rounds
    server.start()
    try:
        for prefix in baseline_prefixes.values():
            saturate(prefix, settings.warmup_seconds, [0] * parts, wrap=True)

        def baselines() -> None:
            for endpoint, prefix in baseline_prefixes.items():
                rounds[endpoint].append(saturate(prefix, each, [0] * parts, wrap=True))
                say(f"[{name}] {endpoint:<8} {figures_line(rounds[endpoint][-1])}")

        baselines()
        # Enough conversation for the warm-up, the saturated runs and the paced run, at up to twice
        # the floor's rate (the webhook does all the floor does and more).
        ceiling = max(rounds["floor"][0].rps, 50.0) * 2
        total = ceil(ceiling * (settings.warmup_seconds + 1.5 * settings.seconds + 3))
        say(f"[{name}] signing {total:,} conversation messages ...")
        prefix = work / f"{name}-webhook"
        partitions = write_partitions(
            build_plan(phones, locales, total, active=settings.active), prefix, parts
        )
        starts = [0] * parts

        def consumed(result: LoadResult) -> LoadResult:
            """Note which requests a run sent, so the next run carries each conversation on."""
            for part, (sent, end) in enumerate(zip(result.sent_by_part, result.end_by_part, strict=True)):
                issued.extend(partitions[part][end - sent : end])
                starts[part] = end
            return result

        consumed(saturate(prefix, settings.warmup_seconds, starts, wrap=False))
        spy = start_profile(server.worker_pids()[0], each, profile) if profile else None
        for number in range(settings.rounds):
            if number:
                baselines()
            rounds["webhook"].append(consumed(saturate(prefix, each, starts, wrap=False)))
            say(f"[{name}] webhook  {figures_line(rounds['webhook'][-1])}")
            if spy is not None and profile is not None and spy.wait() == 0 and profile.exists():
                figures["profile"] = [(round(share, 3), frame) for share, frame in profile_summary(profile)]
                say(f"[{name}] profile of one worker during a saturated webhook run (inclusive):")
                for share, frame in figures["profile"]:
                    say(f"    {share:6.1%}  {frame}")
            spy = None
        for endpoint, results in rounds.items():
            figures[endpoint] = combined(results)
        # Each round's ratio compares runs a few seconds apart, so other load on the machine
        # drifts less between them than across the whole run: the headline is their median.
        ratios = [w.rps / max(f.rps, 1e-9) for w, f in zip(rounds["webhook"], rounds["floor"], strict=True)]
        figures["ratio_to_floor_by_round"] = [round(r, 3) for r in ratios]
        figures["ratio_to_floor"] = round(statistics.median(ratios), 3)

        synced_before = checkpoint_sync_ms(url)
        paced = measured(
            lambda: run_python_load(
                server.base,
                prefix,
                parts,
                starts,
                seconds=settings.seconds,
                rate=figures["webhook"]["requests_per_second"] / 2,
            )
        )
        consumed(paced)
        synced_after = checkpoint_sync_ms(url)
        synced = None if synced_before is None or synced_after is None else synced_after - synced_before
        figures["webhook_half"] = {
            **paced.summary(),
            **({"checkpoint_sync_ms": round(synced)} if synced is not None else {}),
        }
        say(
            f"[{name}] webhook at half its rate ({paced.target_rps:,.0f} req/s asked) {figures_line(paced)}"
            f" ({slow_note(figures['webhook_half'])})"
        )
        wait_until_quiet(url, len(issued))
        memory = {pid: resident_mb(pid) for pid in server.worker_pids()}
        figures["worker_memory_mb"] = list(memory.values())
        figures["worker_rss_mb"] = max(m["VmRSS"] for m in memory.values())
    finally:
        server.stop()

    figures["check"] = delivery_check(url, keys, issued, figures)
    figures["conversations"] = stored_outcome(url, keys)
    return figures


def delivery_check(url: str, keys: str, issued: list[Planned], figures: dict[str, Any]) -> dict[str, Any]:
    """Every message sent to the webhook was stored exactly once, and every answer was a 200."""
    stored = stored_sids(url, keys)
    sent = [item.sid for item in issued]
    missing, unexpected = set(sent) - set(stored), set(stored) - set(sent)
    runs = (figures["webhook"], figures["webhook_half"])
    server_errors = sum(run["server_errors"] for run in runs)
    not_ok = sum(n for run in runs for code, n in run["statuses"].items() if code != "200")
    socket_errors = sum(sum(run["socket_errors"].values()) for run in runs)
    return {
        "sent": len(sent),
        "children_heard_from": len({item.child for item in issued}),
        "stored": len(stored),
        "missing": len(missing),
        "unexpected": len(unexpected),
        "duplicates_stored": len(stored) - len(set(stored)),
        "server_errors": server_errors,
        "not_200": not_ok,
        "socket_errors": socket_errors,
        "ok": not missing
        and not unexpected
        and not server_errors
        and not not_ok
        and len(stored) == len(sent),
    }


def dict_from_line(line: str) -> dict[str, str]:
    """The form of a request-file line, in its order."""
    from urllib.parse import parse_qsl

    return dict(parse_qsl(parse_line(line)[2], keep_blank_values=True))


# -- the whole run -----------------------------------------------------------------------------------


def machine() -> str:
    cpus = os.cpu_count()
    return f"{platform.node()} ({platform.machine()}, {cpus} CPUs, Python {platform.python_version()})"


def targets(databases: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target of issue 7 that this benchmark measures, met or not."""
    ratios = {name: figures["ratio_to_floor"] for name, figures in databases.items()}
    p99s = {name: figures["webhook_half"]["p99_ms"] for name, figures in databases.items()}
    rss = max(figures["worker_rss_mb"] for figures in databases.values())
    checks = {name: figures["check"]["ok"] for name, figures in databases.items()}
    return [
        {
            "target": "webhook >= 50% of the floor on both databases",
            "value": ", ".join(f"{name} {ratio:.0%}" for name, ratio in ratios.items()),
            "met": all(ratio >= 0.5 for ratio in ratios.values()),
        },
        {
            "target": "webhook p99 < 100 ms at half of its saturation rate",
            "value": ", ".join(f"{name} {p99:.1f} ms" for name, p99 in p99s.items()),
            "met": all(p99 < 100 for p99 in p99s.values()),
        },
        {"target": "one web worker < 150 MB resident", "value": f"{rss:.0f} MB", "met": rss < 150},
        {
            "target": "every message stored once, no 5xx",
            "value": ", ".join(f"{name} {'yes' if ok else 'NO'}" for name, ok in checks.items()),
            "met": all(checks.values()),
        },
    ]


def table(result: dict[str, Any]) -> str:
    """The figures as a Markdown table, then the targets."""
    settings = result["settings"]
    unit = "threads" if result["load_generator"].startswith("wrk") else "processes"
    rows = [
        f"Inbound webhook on {result['machine']}, {result['when']}: {settings['children']:,} children, "
        f"{settings['seconds']:g} s a run, gunicorn with {result.get('web_workers', 2)} sync workers; "
        "saturation by "
        f"{result['load_generator']} ({settings['threads']} {unit}, {settings['connections']} connections), "
        "half rate paced by "
        "a Python client (latency from when each request was due). Other load: cores' worth of CPU "
        "that other work on the machine used during the run.",
        "",
        "| database | endpoint | requests/s | p50 ms | p99 ms | ratio to floor | other load |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, figures in result["databases"].items():
        floor = figures["floor"]["requests_per_second"]
        for endpoint in (*ENDPOINTS, "webhook_half"):
            f = figures[endpoint]
            label = {
                "bare": "bare (fixed TwiML)",
                "signed": "signature check",
                "floor": "floor (signature, form, one commit)",
                "webhook": "webhook (real)",
                "webhook_half": f"webhook at half rate (asked {f.get('target_rps', 0):,.0f}/s)",
            }[endpoint]
            ratio = f"{f['requests_per_second'] / floor:.0%}" if floor and endpoint != "webhook_half" else "-"
            if endpoint == "webhook":
                ratio = f"{figures['ratio_to_floor']:.0%}"
            rows.append(
                f"| {name} | {label} | {f['requests_per_second']:,.0f} | {f['p50_ms']:.1f} | "
                f"{f['p99_ms']:.1f} | {ratio} | {f['other_load_cores']:.2f} |"
            )
    rows.append("")
    rows.append(
        "Ratio to floor: the median of each round's ratio ("
        + "; ".join(
            f"{name} " + ", ".join(f"{r:.0%}" for r in figures["ratio_to_floor_by_round"])
            for name, figures in result["databases"].items()
        )
        + "); requests/s over all rounds; p50 and p99: the median of the rounds'."
    )
    rows.append("")
    rows.append("| target | measured | |")
    rows.append("| --- | --- | --- |")
    for target in result["targets"]:
        rows.append(f"| {target['target']} | {target['value']} | {'met' if target['met'] else 'NOT met'} |")
    return "\n".join(rows)


def run(
    quick: bool = False,
    only: str | None = None,
    say: Any = print,
    profile_dir: Path | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Run the webhook benchmark on SQLite and PostgreSQL; return every figure (and print a table).

    ``overrides``: any ``Settings`` field (children, seconds, connections, threads ...).
    ``profile_dir``: record one worker with py-spy during each saturated webhook run (raw stacks).
    """
    settings = Settings.for_run(quick, **overrides)
    with machine_to_ourselves(say):
        return _run(settings, only, say, profile_dir)


@contextmanager
def machine_to_ourselves(say: Any = print) -> Iterator[None]:
    """Hold a machine-wide lock for the whole run: two benchmark runs at once spoil each other's
    figures (and would share the PostgreSQL database). A second run waits for the first."""
    with LOCK_PATH.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another benchmark run to finish (it holds {LOCK_PATH}) ...")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run(settings: Settings, only: str | None, say: Any, profile_dir: Path | None) -> dict[str, Any]:
    from benchmarks.bench_data import postgres_url

    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)
    databases: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="reviewline-bench-") as tmp:
        work = Path(tmp)
        for name in ("sqlite", "postgresql"):
            if only and name != only:
                continue
            url = f"sqlite:///{work / 'bench.db'}" if name == "sqlite" else postgres_url()
            profile = profile_dir / f"webhook-{name}.txt" if profile_dir else None
            databases[name] = bench_database(name, url, settings, work, say, profile)
    if settings.client == "python":
        tool = "a Python client"
    else:
        tool = "wrk " + wrk_version() if wrk_available() else "a Python client (wrk is not installed)"
    result: dict[str, Any] = {
        "machine": machine(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "settings": {**settings.__dict__, "locale_mix": dict(settings.locale_mix)},
        "load_generator": tool,
        "web_workers": web_workers(),
        "half_rate_generator": "python, paced (open loop)",
        "databases": databases,
    }
    result["targets"] = targets(databases)
    say(table(result))
    return result


def wrk_version() -> str:
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    words = (done.stdout + done.stderr).split()
    return words[1] if len(words) > 1 else "?"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["loadgen"]:
        print(json.dumps(asyncio.run(_loadgen(json.loads(argv[1])))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 children, 5-second runs")
    parser.add_argument("--children", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--connections", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument(
        "--python-client", action="store_true", help="saturate with the Python client, not wrk"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--profile", type=Path, help="a folder for py-spy profiles of one worker")
    options = parser.parse_args(argv)
    result = run(
        options.quick,
        only=options.only,
        profile_dir=options.profile,
        children=options.children,
        seconds=options.seconds,
        connections=options.connections,
        threads=options.threads,
        client="python" if options.python_client else None,
    )
    if options.json:
        options.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
