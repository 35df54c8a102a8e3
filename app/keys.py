"""Key rotation: re-encrypt every encrypted column under the newest key."""

from __future__ import annotations

from sqlalchemy import Text, literal, select, type_coerce, update
from sqlalchemy.orm import Session

from app.crypto import Encrypted, cipher
from app.models import AuditEvent, Base

BATCH = 500


def encrypted_columns() -> list[tuple[str, str, str]]:
    """(table, primary key column, column) for every Encrypted column in the model."""
    found = []
    for table in Base.metadata.sorted_tables:
        pk = list(table.primary_key.columns)[0].name
        for column in table.columns:
            if isinstance(column.type, Encrypted):
                found.append((table.name, pk, column.name))
    return found


def rotate_all(session: Session) -> dict[str, int]:
    """Rotate every stored token; tokens are read raw so nothing is decrypted into Python objects."""
    counts: dict[str, int] = {}
    fernet = cipher()
    for table_name, pk_name, column_name in encrypted_columns():
        table = Base.metadata.tables[table_name]
        pk, column = table.c[pk_name], table.c[column_name]
        count, last = 0, None
        while True:
            query = select(pk, type_coerce(column, Text)).where(column.is_not(None)).order_by(pk).limit(BATCH)
            if last is not None:
                query = query.where(pk > last)
            rows = session.execute(query).all()
            if not rows:
                break
            for key, token in rows:
                # Bound as plain Text so the column type does not encrypt the token again.
                session.execute(
                    update(table).where(pk == key).values({column_name: literal(fernet.rotate(token), Text)})
                )
                count += 1
            last = rows[-1][0]
        counts[f"{table_name}.{column_name}"] = count
    session.add(AuditEvent(action="keys_rotated", detail=f"{sum(counts.values())} values"))
    return counts
