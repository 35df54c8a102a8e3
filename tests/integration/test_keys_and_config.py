"""Key rotation, production start-up refusal, development secrets, and `flows check`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from flask import Flask
from sqlalchemy import Text, select, type_coerce

from app import create_app
from app.config import ConfigurationError, load_settings
from app.crypto import FieldCipher, configure
from app.extensions import db
from app.models import Child

ROOT = Path(__file__).resolve().parents[2]


def test_keys_rotate_reencrypts_everything_under_the_newest_key(demo: Flask) -> None:
    old_keys = demo.config["FIELD_ENCRYPTION_KEYS"]
    new_key = Fernet.generate_key().decode()
    configure(FieldCipher.from_setting(f"{new_key},{old_keys}"))
    result = demo.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "child.first_name: 3 value(s)" in result.output
    tokens = db.session.scalars(select(type_coerce(Child.first_name, Text))).all()
    only_new = Fernet(new_key.encode())
    assert sorted(only_new.decrypt(t.encode()).decode() for t in tokens) == [
        "Amir",
        "Cerys",
        "Jordan",
    ]
    with pytest.raises(InvalidToken):
        Fernet(old_keys.encode()).decrypt(tokens[0].encode())
    # Lookups by phone still work: the blind index key did not change.
    from app.models import ChannelIdentity

    assert ChannelIdentity.find(db.session, "sms", "+447700900001").child.first_name == "Jordan"


def test_production_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    settings = load_settings(str(tmp_path), environ={})
    assert settings["DEVELOPMENT"] is False
    with pytest.raises(ConfigurationError, match="SECRET_KEY and FIELD_ENCRYPTION_KEYS must be set"):
        create_app(
            {
                "DEVELOPMENT": False,
                "TESTING": False,
                "SECRET_KEY": None,
                "FIELD_ENCRYPTION_KEYS": None,
            }
        )


def test_development_generates_secrets_once_into_instance(tmp_path: Path) -> None:
    first = load_settings(str(tmp_path), environ={"REVIEWLINE_DEV": "1"})
    second = load_settings(str(tmp_path), environ={"REVIEWLINE_DEV": "1"})
    assert first["SECRET_KEY"] and first["SECRET_KEY"] == second["SECRET_KEY"]
    assert first["FIELD_ENCRYPTION_KEYS"] == second["FIELD_ENCRYPTION_KEYS"]
    assert (tmp_path / "development-secrets.json").stat().st_mode & 0o077 == 0
    assert first["DATABASE_URL"].startswith("sqlite:///") and str(tmp_path) in first["DATABASE_URL"]


def test_flows_check_passes_on_the_shipped_flows_and_prints_segments(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["flows", "check"])
    assert result.exit_code == 0, result.output
    assert "who_is_my_iro.contact" in result.output
    assert "cy" in result.output and "All flows are valid." in result.output
    assert "Reading level of English messages" in result.output
    assert "Safeguarding triage on" in result.output and "recall 100%" in result.output
    assert "false-positive rate" in result.output


def check_with_edited_about(app: Flask, tmp_path: Path, old: str, new: str) -> tuple[int, str, int]:
    """Run `flows check` on a copy of the flows with one edit to about.yaml; also the edit's line."""
    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "flows", flows)
    about = flows / "about.yaml"
    text = about.read_text()
    line = text[: text.index(old)].count("\n") + 1
    about.write_text(text.replace(old, new))
    app.config["FLOWS_DIR"] = str(flows)
    result = app.test_cli_runner().invoke(args=["flows", "check"])
    return result.exit_code, result.output, line


def test_flows_check_fails_on_a_broken_flow_naming_file_and_line(app: Flask, tmp_path: Path) -> None:
    code, output, line = check_with_edited_about(app, tmp_path, "next: who_sees", "next: who_see")
    assert code == 1
    assert f"flows/about.yaml:{line}: node 'what': leads to 'who_see'" in output


def test_flows_check_rejects_english_that_is_not_gsm7(app: Flask, tmp_path: Path) -> None:
    code, output, line = check_with_edited_about(app, tmp_path, "It helps you", "It\u2019s here to help you")
    assert code == 1
    assert f"flows/about.yaml:{line}: about.what: English text uses characters outside GSM-7" in output
