"""Settings from the environment (see CONTRACT.md), with generated development defaults."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

TRUTHY = {"1", "true", "yes", "on"}


class ConfigurationError(RuntimeError):
    """The service cannot start safely with these settings."""


def is_development(environ: dict[str, str] | None = None) -> bool:
    """Development or demo mode: ``make run`` (REVIEWLINE_DEV=1) or FLASK_DEBUG set."""
    env = os.environ if environ is None else environ
    return env.get("REVIEWLINE_DEV", "").lower() in TRUTHY or env.get("FLASK_DEBUG", "").lower() in TRUTHY


def database_url(raw: str) -> str:
    """Accept the URLs hosting platforms hand out and use the psycopg 3 driver for PostgreSQL."""
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix) :]
    return raw


def _development_secrets(instance: Path) -> dict[str, str]:
    """Secrets generated once into instance/ so a development database stays readable."""
    path = instance / "development-secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    instance.mkdir(parents=True, exist_ok=True)
    values = {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "BLIND_INDEX_KEY": secrets.token_urlsafe(48),
    }
    path.write_text(json.dumps(values, indent=2))
    path.chmod(0o600)
    return values


def load_settings(instance_path: str, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config from the environment; refuse to run production without secrets."""
    env = dict(os.environ if environ is None else environ)
    instance = Path(instance_path)
    development = is_development(env)
    settings: dict[str, Any] = {
        "DEVELOPMENT": development,
        "SIMULATOR_ENABLED": development,
        "DATABASE_URL": env.get("DATABASE_URL") or f"sqlite:///{instance / 'reviewline.db'}",
        "SECRET_KEY": env.get("SECRET_KEY"),
        "FIELD_ENCRYPTION_KEYS": env.get("FIELD_ENCRYPTION_KEYS"),
        "BLIND_INDEX_KEY": env.get("BLIND_INDEX_KEY"),
        "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL"),
        "TWILIO_ACCOUNT_SID": env.get("TWILIO_ACCOUNT_SID"),
        "TWILIO_AUTH_TOKEN": env.get("TWILIO_AUTH_TOKEN"),
        "TWILIO_FROM": env.get("TWILIO_FROM"),
        "TWILIO_API_BASE_URL": env.get("TWILIO_API_BASE_URL", "https://api.twilio.com"),
        "PROVIDER_TIMEOUT_SECONDS": float(env.get("PROVIDER_TIMEOUT_SECONDS") or 10),
        "DELIVERY_CONCURRENCY": max(1, int(env.get("DELIVERY_CONCURRENCY") or 4)),
        "TELEGRAM_BOT_TOKEN": env.get("TELEGRAM_BOT_TOKEN"),
        "TELEGRAM_WEBHOOK_SECRET": env.get("TELEGRAM_WEBHOOK_SECRET"),
        "TELEGRAM_API_BASE_URL": env.get("TELEGRAM_API_BASE_URL", "https://api.telegram.org"),
        "FLOWS_DIR": env.get("FLOWS_DIR"),
        "LOCALES_DIR": env.get("LOCALES_DIR"),
        # How long another process may serve the old flows after one publishes (seconds).
        "CONTENT_REFRESH_SECONDS": float(env.get("CONTENT_REFRESH_SECONDS") or 5),
    }
    if development:
        generated = _development_secrets(instance)
        for key, value in generated.items():
            settings[key] = settings[key] or value
    return settings


def check_production(settings: dict[str, Any]) -> None:
    """Stop start-up with a clear message when production lacks a required secret."""
    if settings.get("DEVELOPMENT") or settings.get("TESTING"):
        return
    missing = [k for k in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS") if not settings.get(k)]
    if missing:
        raise ConfigurationError(
            "Refusing to start: " + " and ".join(missing) + " must be set in production. "
            "Children's data is encrypted with FIELD_ENCRYPTION_KEYS (comma-separated Fernet keys, "
            "newest first; make one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'). For development, use `make run`."
        )
