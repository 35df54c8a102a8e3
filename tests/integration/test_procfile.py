"""The Procfile's web command, run as a platform runs it: gunicorn, its config file, real workers."""

from __future__ import annotations

import json
import os
import runpy
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest
from cryptography.fernet import Fernet
from twilio.request_validator import RequestValidator

from app import WITHOUT_MIGRATIONS

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "procfile-test-token"
BASE = "https://reviewline.example.org"


def web_command() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.removeprefix("web:").strip()
    raise AssertionError("the Procfile has no web process")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def production_env(tmp_path: Path) -> dict[str, str]:
    """This environment as a platform would give it: no development switches, no variable
    gunicorn.conf.py sets in its workers, a database and keys of the test's own."""
    left_out = ("REVIEWLINE_DEV", "FLASK_DEBUG", WITHOUT_MIGRATIONS)
    return {
        **{k: v for k, v in os.environ.items() if k not in left_out},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'web.db'}",
        "SECRET_KEY": "procfile-test",
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }


@pytest.fixture
def web(tmp_path: Path):  # type: ignore[no-untyped-def]
    port = free_port()
    env = {
        **production_env(tmp_path),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PUBLIC_BASE_URL": BASE,
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_FROM": "+447700900500",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
    }
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    for step in (["db", "upgrade"], ["demo", "load"]):
        subprocess.run(flask + step, cwd=ROOT, env=env, check=True, capture_output=True)
    log = (tmp_path / "gunicorn.log").open("wb")
    # exec: the shell becomes gunicorn, so stopping the process stops gunicorn and its workers.
    process = subprocess.Popen(
        ["sh", "-c", f"exec {web_command()}"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                if get(url + "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer /healthz in 30 s"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_the_procfile_web_command_serves_the_health_check_and_a_signed_sms(web: str) -> None:
    assert get(web + "/healthz") == (200, '{"status":"ok"}\n')
    form = {"From": "+447700900001", "To": "+447700900500", "Body": "who is my iro", "MessageSid": "SMproc1"}
    path = "/webhooks/twilio/sms"
    signature = RequestValidator(TOKEN).compute_signature(BASE + path, form)
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
    status, body = get(web + path, urlencode(form).encode(), headers)
    assert status == 200 and "Priya Shah" in body
    forged = {**headers, "X-Twilio-Signature": "bm90LXRoZS1zaWduYXR1cmU="}
    assert get(web + path, urlencode({**form, "MessageSid": "SMproc2"}).encode(), forged)[0] == 403


def test_a_web_worker_keeps_what_it_built_at_start_up_out_of_the_collectors_sweeps() -> None:
    import gc

    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert gc.get_freeze_count() == 0
    try:
        config["post_worker_init"](None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


# Run in a fresh interpreter: this test process has imported Flask-Migrate already (conftest).
WORKER_BUILDS_THE_APP = """
import json, runpy, sys
config = runpy.run_path("gunicorn.conf.py")
if sys.argv[1] == "worker":
    config["post_fork"](None, None)  # what gunicorn calls in each worker before it builds the app
from app import create_app
app = create_app()
print(json.dumps({"alembic": "alembic" in sys.modules, "db command": "db" in app.cli.commands}))
"""


@pytest.mark.parametrize("process", ["worker", "command"])
def test_a_web_worker_is_built_without_the_migration_commands_and_every_other_process_keeps_them(
    process: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WORKER_BUILDS_THE_APP, process],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    )
    built = json.loads(done.stdout.strip().splitlines()[-1])
    if process == "worker":
        # Alembic (about 8 MB of a worker's memory) is never imported where `flask db` cannot run.
        assert built == {"alembic": False, "db command": False}
        # With preload_app the master would build the app before forking, so before post_fork.
        assert "preload_app" not in runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    else:
        assert built == {"alembic": True, "db command": True}
