"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask

from app.extensions import db
from app.models import Base


def test_migrations_match_the_models(app: Flask) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"the models and migrations differ: {diff}"


def test_the_message_index_migration_goes_down_and_up_again(app: Flask) -> None:
    """0009 can be undone and redone on both databases; at head a child's messages (no sender
    index) are left out of the sender index, and messages have no index on time alone."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import inspect

    def message_indexes() -> dict[str, tuple[list[str], str | None]]:
        db.session.remove()
        db.engine.dispose()
        found = {}
        for index in inspect(db.engine).get_indexes("message"):
            options = index.get("dialect_options", {})
            where = options.get("postgresql_where", options.get("sqlite_where"))
            found[index["name"]] = (index["column_names"], str(where) if where is not None else None)
        return found

    with app.app_context():
        downgrade(revision="0008")
        before = message_indexes()
        upgrade()
        after = message_indexes()
    assert before["ix_message_created_at"] == (["created_at"], None)
    assert before["ix_message_sender_index"] == (["sender_index"], None)
    assert "ix_message_created_at" not in after
    columns, where = after["ix_message_sender_index"]
    assert columns == ["sender_index"]
    assert where is not None and "sender_index IS NOT NULL" in where
    assert after["ix_message_child_id_direction_created_at"] == (
        ["child_id", "direction", "created_at"],
        None,
    )
