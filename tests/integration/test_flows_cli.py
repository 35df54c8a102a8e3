"""`flask --app app flows export` and `flows import`: published versions to files and back, so a
council's changes can be kept under version control; a broken file publishes nothing."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import select

from app import content
from app.conversations import InboundMessage, handle
from app.extensions import db
from app.models import AuditEvent, ContentVersion
from app.models.flows import FLOW

OLD = "How are things going for you at the moment?"
NEW = "How are you getting on at the moment?"


def views_question(sender: str) -> str:
    handle(InboundMessage(channel="sms", sender=sender, text="menu"))
    return "\n".join(handle(InboundMessage(channel="sms", sender=sender, text="views")).replies)


def test_an_imported_file_is_published_as_a_new_version_and_exported_back_unchanged(
    demo: Flask, tmp_path: Path
) -> None:
    shipped = content.shipped_text(FLOW, "wishes")
    assert OLD in shipped
    (tmp_path / "wishes.yaml").write_text(shipped.replace(OLD, NEW), encoding="utf-8")
    (tmp_path / "main_menu.yaml").write_text(content.shipped_text(FLOW, "main_menu"), encoding="utf-8")
    runner = demo.test_cli_runner()

    result = runner.invoke(args=["flows", "import", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "flow wishes: version 1 published" in result.output
    rows = db.session.scalars(select(ContentVersion)).all()
    assert [(r.key, r.number, r.note) for r in rows] == [("wishes", 1, "Imported from wishes.yaml")]
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "publish")) is not None
    assert NEW in views_question("+447700900001")

    again = runner.invoke(args=["flows", "import", str(tmp_path)])
    assert "Everything matches" in again.output

    out = tmp_path / "exported"
    exported = runner.invoke(args=["flows", "export", str(out)])
    assert exported.exit_code == 0, exported.output
    assert sorted(p.name for p in out.glob("*.yaml")) == ["wishes.yaml"]
    assert (out / "wishes.yaml").read_text(encoding="utf-8") == (tmp_path / "wishes.yaml").read_text(
        encoding="utf-8"
    )


def test_a_broken_file_is_refused_with_its_step_and_nothing_is_published(demo: Flask, tmp_path: Path) -> None:
    shipped = content.shipped_text(FLOW, "wishes")
    (tmp_path / "wishes.yaml").write_text(shipped.replace(OLD, NEW), encoding="utf-8")
    broken = content.shipped_text(FLOW, "rights").replace("goto: ", "goto: nowhere_", 1)
    (tmp_path / "rights.yaml").write_text(broken, encoding="utf-8")

    result = demo.test_cli_runner().invoke(args=["flows", "import", str(tmp_path)])
    assert result.exit_code == 1
    assert "rights.yaml: Step '" in result.output and "which is not a step in this flow" in result.output
    assert "nothing was published" in result.output
    assert db.session.scalars(select(ContentVersion)).all() == []
    assert OLD in views_question("+447700900001")


def test_an_imported_phrase_list_is_used_at_once_but_a_less_safe_one_is_refused(
    demo: Flask, tmp_path: Path
) -> None:
    from app.models.flows import PHRASES

    shipped = content.shipped_text(PHRASES, "en")
    folder = tmp_path / "safeguarding"
    folder.mkdir()
    less_safe = shipped.replace("    - kill/killing/killed myself\n", "", 1)
    (folder / "en.yaml").write_text(less_safe, encoding="utf-8")
    refused = demo.test_cli_runner().invoke(args=["flows", "import", str(tmp_path)])
    assert refused.exit_code == 1
    assert "would miss" in refused.output and "nothing was published" in refused.output
    assert db.session.scalars(select(ContentVersion)).all() == []

    safer = shipped.replace("  unsafe:\n", "  unsafe:\n    - purple door again\n", 1)
    (folder / "en.yaml").write_text(safer, encoding="utf-8")
    result = demo.test_cli_runner().invoke(args=["flows", "import", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "safeguarding en: version 1 published" in result.output
    outcome = handle(InboundMessage(channel="sms", sender="+447700900001", text="the purple door again"))
    assert any(e["kind"] == "concern" and e["urgent"] for e in outcome.effects)


def test_files_are_checked_together_so_a_link_to_a_step_added_in_the_same_import_is_fine(
    demo: Flask, tmp_path: Path
) -> None:
    about = content.shipped_text(FLOW, "about").replace(
        "    next: who_sees\n  who_sees:",
        '    next: privacy\n  privacy:\n    kind: say\n    text: "We keep your messages safe."\n'
        "    next: who_sees\n  who_sees:",
        1,
    )
    rights = content.shipped_text(FLOW, "rights").replace(
        "goto: flow:about\n", "goto: flow:about/privacy\n", 1
    )
    (tmp_path / "about.yaml").write_text(about, encoding="utf-8")
    (tmp_path / "rights.yaml").write_text(rights, encoding="utf-8")
    result = demo.test_cli_runner().invoke(args=["flows", "import", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "2 version(s) published" in result.output

    # Now a folder that removes that step while rights still leads to it is refused as a whole.
    (tmp_path / "about.yaml").write_text(content.shipped_text(FLOW, "about"), encoding="utf-8")
    refused = demo.test_cli_runner().invoke(args=["flows", "import", str(tmp_path)])
    assert refused.exit_code == 1
    assert "leads to 'privacy', which is not a step in the flow 'about'" in refused.output
    assert len(db.session.scalars(select(ContentVersion)).all()) == 2
