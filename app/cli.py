"""Flask CLI commands: ``flows check``, ``demo load``, ``keys rotate``."""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.engine import FlowDefinitionError, Library, Problem, load_library
from app.engine.triage import evaluate
from app.flow_report import Report

flows_cli = AppGroup("flows", help="Check the conversation flows and their translations.")
demo_cli = AppGroup("demo", help="Demo data for development and the simulator.")
keys_cli = AppGroup("keys", help="Field encryption keys.")


@flows_cli.command("check")
def flows_check() -> None:
    """Validate every flow and catalog; print SMS segments and coverage; exit 1 on errors."""
    from app import PROJECT_ROOT
    from app.flow_report import MAX_READING_GRADE, check
    from app.i18n import Catalogs

    flows_dir = Path(current_app.config.get("FLOWS_DIR") or PROJECT_ROOT / "flows")
    try:
        library = load_library(flows_dir, root=flows_dir.parent)
    except FlowDefinitionError as error:
        for problem in error.problems:
            click.echo(f"error: {problem}", err=True)
        click.echo(f"{len(error.problems)} error(s); the flows cannot be used.", err=True)
        sys.exit(1)
    catalogs: Catalogs = current_app.extensions["reviewline.content"].shipped.catalogs
    report = check(library, catalogs)

    click.echo(
        f"{len(library.flows)} flows, {len(library.all_messages())} messages, "
        f"locales: {', '.join(catalogs.locales)}"
    )
    click.echo("\nSMS segments per message (sample values filled in):")
    by_message: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for row in report.rows:
        mark = "" if row.translated else "*"
        by_message[(row.source, row.context)][row.locale] = f"{row.segments} {row.encoding}{mark}"
    header = f"  {'message':<40}" + "".join(f"{loc:>12}" for loc in catalogs.locales)
    click.echo(header)
    for (_, context), cells in by_message.items():
        click.echo(f"  {context:<40}" + "".join(f"{cells.get(loc, '-'):>12}" for loc in catalogs.locales))
    click.echo("  (* not translated: the child would get English)")
    click.echo(
        f"\nReading level of English messages (Flesch-Kincaid grade; {MAX_READING_GRADE:.0f} is about age 9):"
    )
    for row in sorted(report.reading, key=lambda r: -r.grade):
        note = f"  note: {row.note}" if row.note else ""
        click.echo(f"  {row.context:<40} {row.grade:>5.1f}{note}")
    click.echo("\nTranslation coverage:")
    for cov in report.coverage:
        click.echo(
            f"  {cov.locale:<6} {cov.translated}/{cov.total} ready ({cov.percent:.0f}%), "
            f"{cov.fuzzy} need review, {cov.missing} missing"
        )
    _print_triage_evaluation(library, PROJECT_ROOT / "tests" / "data" / "safeguarding_utterances.csv", report)
    if report.problems:
        click.echo("")
        for problem in report.problems:
            click.echo(f"error: {problem}", err=True)
        click.echo(f"{len(report.problems)} error(s).", err=True)
        sys.exit(1)
    click.echo("\nAll flows are valid.")


def _print_triage_evaluation(library: Library, samples: Path, report: Report) -> None:
    """Recall and false alarms of safeguarding triage on the labelled messages, if present."""
    if library.safeguarding is None or not samples.exists():
        click.echo(f"\nSafeguarding triage: no labelled messages at {samples}; not evaluated.")
        return
    with samples.open(encoding="utf-8", newline="") as handle:
        result = evaluate(library.safeguarding, list(csv.DictReader(handle)))
    safe = result.total - result.risk
    click.echo(
        f"\nSafeguarding triage on {result.total} labelled messages: recall {result.recall:.0%} "
        f"({result.caught}/{result.risk} risks caught), false-positive rate "
        f"{result.false_positive_rate:.1%} ({len(result.false_positives)}/{safe} safe messages flagged)"
    )
    for text in result.missed:
        report.problems.append(Problem(str(samples.name), 1, f"triage missed a risk: {text!r}"))


@demo_cli.command("load")
def demo_load() -> None:
    """Load the demo authority, staff and children; running it twice changes nothing."""
    from app.demo import DEMO_PASSWORD, load_demo
    from app.extensions import db

    created = load_demo(db.session)
    db.session.commit()
    click.echo("Demo data " + ("loaded." if created else "already present; nothing changed."))
    click.echo(f"Demo staff logins (password for all: {DEMO_PASSWORD}):")
    from app.demo import STAFF

    for staff in STAFF:
        click.echo(f"  {staff['email']:<40} {staff['role']}")


@keys_cli.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored field under the newest key in FIELD_ENCRYPTION_KEYS."""
    from app.extensions import db
    from app.keys import rotate_all

    counts = rotate_all(db.session)
    db.session.commit()
    for name, count in counts.items():
        click.echo(f"  {name}: {count} value(s) re-encrypted")
    click.echo("Done. Once every process uses the new key first, older keys can be removed.")


@click.command("worker")
@click.option("--once", is_flag=True, help="Deliver what is due once, then stop.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds to wait when nothing is due.")
def worker(once: bool, interval: float) -> None:
    """Deliver the outbox (with retries and dead letters) until stopped."""
    import signal
    import time

    from app.channels.telegram import telegram_sender
    from app.delivery import deliver_due, twilio_sender
    from app.extensions import db
    from app.reminders import schedule_reminders

    channels = {"sms": twilio_sender(current_app), "telegram": telegram_sender(current_app)}
    senders = {name: s for name, s in channels.items() if s}
    click.echo(f"Worker delivering for: {', '.join(senders) or 'no channel configured'}")
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    reminders_at: float | None = None
    while not stopping:
        if reminders_at is None or time.monotonic() - reminders_at >= 60:
            # Review reminders at most once a minute; a failure there never stops delivery.
            reminders_at = time.monotonic()
            try:
                summary = schedule_reminders(db.session)
            except Exception:  # noqa: BLE001 - logged; retried on the next minute
                db.session.rollback()
                current_app.logger.exception("review reminders failed; trying again in a minute")
            else:
                if summary.queued:
                    click.echo(summary.line())
        result = deliver_due(db.session, senders)
        if result.sent or result.retrying or result.dead:
            click.echo(f"sent {result.sent}, retrying {result.retrying}, dead {result.dead}")
        db.session.remove()
        if once:
            break
        if not (result.sent or result.retrying):
            time.sleep(interval)


telegram_cli = AppGroup("telegram", help="The Telegram bot: webhook and link codes.")


def _telegram_app() -> Flask:
    from app.channels.telegram import enabled

    if not enabled(current_app.config):
        raise click.ClickException("Telegram is off: set TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET.")
    return current_app._get_current_object()  # type: ignore[attr-defined]


@telegram_cli.command("set-webhook")
def telegram_set_webhook() -> None:
    """Tell Telegram to post updates to PUBLIC_BASE_URL/webhooks/telegram with the secret token."""
    from app.channels.telegram import set_webhook
    from app.config import ConfigurationError

    try:
        url = set_webhook(_telegram_app())
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Webhook set: Telegram will post updates to {url} with the secret token.")


@telegram_cli.command("link-code")
@click.argument("child_id", type=int)
@click.option("--staff", "staff_email", required=True, help="Email of the staff member issuing the code.")
def telegram_link_code(child_id: int, staff_email: str) -> None:
    """Issue a one-time code (valid 7 days) that links a child's Telegram chat: /start CODE."""
    from sqlalchemy import select

    from app.channels.telegram import bot_username
    from app.extensions import db
    from app.linking import deep_link, issue_code
    from app.models import Child, StaffUser, utcnow

    app = _telegram_app()
    staff = db.session.scalar(select(StaffUser).where(StaffUser.email == staff_email, StaffUser.active))
    child = db.session.get(Child, child_id)
    if staff is None or child is None or child.authority_id != staff.authority_id:
        raise click.ClickException("No such child in that staff member's authority.")
    code = issue_code(db.session, child, staff, utcnow())
    db.session.commit()
    click.echo(f"Code: {code} (works once, for 7 days)")
    click.echo(f"Link: {deep_link(bot_username(app), code)}")


def register_cli(app: Flask) -> None:
    app.cli.add_command(flows_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(worker)
    app.cli.add_command(telegram_cli)
