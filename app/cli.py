"""Flask CLI commands: ``flows check``, ``demo load``, ``keys rotate``."""

from __future__ import annotations

import contextlib
import csv
import sys
from collections import defaultdict
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.engine import FlowDefinitionError, Library, Problem, load_library, parse_flow
from app.engine.triage import evaluate
from app.flow_report import Report

flows_cli = AppGroup("flows", help="Check the conversation flows; move published versions to and from files.")
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


def _flows_dir() -> Path:
    from app import PROJECT_ROOT

    return Path(current_app.config.get("FLOWS_DIR") or PROJECT_ROOT / "flows")


@flows_cli.command("export")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
def flows_export(directory: Path | None) -> None:
    """Write the published versions in the database to YAML files (default: the flows folder),
    so a council's changes can be kept under version control."""
    from app import content
    from app.extensions import db
    from app.models.flows import FLOW, PHRASES

    directory = directory or _flows_dir()
    written = 0
    library, _ = content.current(db.session)
    keys = [(FLOW, flow_id) for flow_id in sorted(library.flows)]
    keys += [(PHRASES, locale) for locale in sorted(content.store().shipped.phrase_texts)]
    for kind, key in keys:
        row = content.latest(db.session, kind, key)
        if row is None:
            continue  # the shipped file is in use: nothing newer to write
        path = directory / (f"{key}.yaml" if kind == FLOW else f"safeguarding/{key}.yaml")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(row.content, encoding="utf-8")
        click.echo(f"  {path}: {kind} {key} version {row.number}")
        written += 1
    click.echo(
        f"{written} file(s) written." if written else "Nothing published in the database: no files written."
    )


@flows_cli.command("import")
@click.argument("directory", required=False, type=click.Path(file_okay=False, exists=True, path_type=Path))
def flows_import(directory: Path | None) -> None:
    """Publish every flow or phrase file in a folder that differs from the version in use, as a new
    version (audited); if any has an error, publish nothing and exit 1."""
    from app import content
    from app.editor.drafts import check_draft
    from app.engine.definition import check_library
    from app.extensions import db
    from app.i18n import SOURCE_LOCALE
    from app.models.flows import FLOW, PHRASES
    from app.translations import carry_over

    directory = directory or _flows_dir()
    library, catalogs = content.current(db.session)
    changes: list[tuple[str, str, str, Path]] = []
    errors: list[str] = []
    for path in sorted(directory.glob("*.yaml")):
        if path.stem not in library.flows:
            continue  # messages.yaml, or a flow this service does not have
        text = path.read_text(encoding="utf-8")
        if text != content.current_text(db.session, FLOW, path.stem):
            changes.append((FLOW, path.stem, text, path))
    # The files are checked together: each against the others as they would be after the import.
    parsed = {}
    for _, key, text, _ in changes:
        with contextlib.suppress(FlowDefinitionError):  # check_draft below names the problems
            parsed[key] = parse_flow(text, str(key))
    trial = Library(
        flows={**library.flows, **parsed},
        messages=library.messages,
        entry=library.entry,
        safeguarding=library.safeguarding,
    )
    for _, key, text, path in changes:
        errors += [f"{path}: {e}" for e in check_draft(trial, catalogs, key, text).errors]
    before = {(p.node, p.message) for p in check_library(library)}
    errors += [
        f"{p.file}: step '{p.node}': {p.message}"
        for p in check_library(trial)
        if (p.node, p.message) not in before
    ]
    phrases = {
        locale: content.current_text(db.session, PHRASES, locale) or ""
        for locale in content.store().shipped.phrase_texts
    }
    for path in sorted((directory / "safeguarding").glob("*.yaml")):
        if path.stem in phrases and path.read_text(encoding="utf-8") != phrases[path.stem]:
            phrases[path.stem] = path.read_text(encoding="utf-8")
            changes.append((PHRASES, path.stem, phrases[path.stem], path))
    if any(kind == PHRASES for kind, *_ in changes):
        from app.editor.phrases import refusal

        try:
            content.phrase_book(phrases, content.store().shipped.phrase_sources)
        except FlowDefinitionError as error:
            errors += [f"{p.file}:{p.line}: {p.message}" for p in error.problems]
        for kind, key, text, path in changes:
            # As in the browser: a list that would miss a risk the one in use catches is refused.
            refused = refusal(key, text, path.name) if kind == PHRASES and not errors else None
            if refused:
                errors += [f"{path}: {refused.headline}", *(f"{path}:   {item}" for item in refused.items)]
    if errors:
        for line in errors:
            click.echo(f"error: {line}", err=True)
        click.echo(f"{len(errors)} error(s); nothing was published.", err=True)
        sys.exit(1)
    locales = [loc for loc in catalogs.locales if loc != SOURCE_LOCALE]
    for kind, key, text, path in changes:
        row = content.publish(db.session, kind, key, text, None, note=f"Imported from {path.name}")
        click.echo(f"  {kind} {key}: version {row.number} published from {path}")
        if kind == FLOW:
            # As when publishing in the browser: Welsh for changed English waits for review.
            new = parse_flow(text, content.version_source(key, row.number))
            carried = carry_over(db.session, locales, library.flows.get(key), new, None)
            if carried:
                click.echo(f"    {carried} translation(s) need review because the English changed")
    db.session.commit()
    click.echo(
        f"{len(changes)} version(s) published." if changes else "Everything matches the versions in use."
    )


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
        result = deliver_due(db.session, senders, concurrency=current_app.config["DELIVERY_CONCURRENCY"])
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
