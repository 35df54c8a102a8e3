"""Benchmark data: many demo children, each with a linked SMS number, added in bulk.

The numbers are possible UK mobiles (the app's ``normalise_phone`` accepts them) taken from
ranges no-one is given: 07700 9xxxxx (which holds Ofcom's drama range) and 07700 2xxxxx, both
unallocated according to ``phonenumbers``, so a benchmark database never holds a real person's
number. Field encryption is the real one: rows go in through the ORM's bulk insert, so every
``Encrypted`` column is encrypted exactly as the service would store it.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from datetime import date, timedelta
from math import ceil

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from app.crypto import blind_index
from app.demo import DEMO_PASSWORD, load_demo
from app.models import (
    Authority,
    ChannelIdentity,
    Child,
    IroAssignment,
    Review,
    ReviewAction,
    StaffUser,
)

# 07700 910000-999999 first (900000-909999 is left to the demo data and hand-made tests), then
# 07700 200000-299999.
FIRST_RANGE = (910_000, 90_000)
SECOND_RANGE = (200_000, 100_000)
MAX_CHILDREN = FIRST_RANGE[1] + SECOND_RANGE[1]

NAMES = ["Jordan", "Cerys", "Amir", "Maya", "Tyler", "Ffion", "Leo", "Aisha", "Kian", "Nia", "Ruby", "Dylan"]
ACTIONS = [
    ("Start swimming lessons on Saturdays", "your carer", -60, "done"),
    ("Arrange more time with your brother", "your social worker", 30, "agreed"),
    ("Get you a laptop for school work", "your social worker", -14, "agreed"),
    ("Check if you can stay at the same school", "the school and your social worker", 10, "awaiting_manager"),
]
BATCH = 2_000


BENCH_DATABASE = "reviewline_bench"


def postgres_url() -> str:
    """The PostgreSQL database the benchmarks may wipe: ``BENCH_DATABASE_URL``, else a database
    named reviewline_bench on the local server, created if it is missing. Never point it at a
    database whose contents matter: every part starts by dropping its schema."""
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        return url
    server = "postgresql+psycopg://postgres@127.0.0.1:5432"
    engine = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            exists = connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": BENCH_DATABASE}
            )
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{BENCH_DATABASE}"'))
    finally:
        engine.dispose()
    return f"{server}/{BENCH_DATABASE}"


def phone_number(index: int) -> str:
    """The benchmark child number for ``index`` (0-based), in E.164."""
    if not 0 <= index < MAX_CHILDREN:
        raise ValueError(f"benchmark numbers run from 0 to {MAX_CHILDREN - 1}")
    start, size = FIRST_RANGE if index < FIRST_RANGE[1] else SECOND_RANGE
    offset = index if index < FIRST_RANGE[1] else index - FIRST_RANGE[1]
    assert offset < size
    return f"+447700{start + offset:06d}"


def _bench_iros(session: Session, authority: Authority, needed: int) -> list[int]:
    """Ids of ``needed`` benchmark IROs (bench.iro.N@demo.invalid), adding any that are missing."""
    emails = [f"bench.iro.{n}@demo.invalid" for n in range(1, needed + 1)]
    existing = dict(
        session.execute(select(StaffUser.email, StaffUser.id).where(StaffUser.email.in_(emails))).all()
    )
    missing = [email for email in emails if email not in existing]
    if missing:
        # One hash for all of them: hashing is deliberately slow, and these accounts are for load only.
        password_hash = generate_password_hash(DEMO_PASSWORD)
        session.execute(
            insert(StaffUser),
            [
                {
                    "authority_id": authority.id,
                    "email": email,
                    "display_name": f"Bench Officer {email.split('.')[2].split('@')[0]}",
                    "role": "iro",
                    "password_hash": password_hash,
                    "contact_phone": "+447700900102",
                }
                for email in missing
            ],
        )
        existing = dict(
            session.execute(select(StaffUser.email, StaffUser.id).where(StaffUser.email.in_(emails))).all()
        )
    return [existing[email] for email in emails]


def make_children(
    session: Session,
    count: int,
    locale_mix: Mapping[str, float] | None = None,
    *,
    start: int = 0,
    children_per_iro: int = 90,
    with_reviews: bool = True,
    today: date | None = None,
    seed: int = 7,
) -> list[str]:
    """Add ``count`` children to the demo authority, each with a linked SMS number; return the numbers.

    Signature (kept stable for other benchmarks):
    ``make_children(session, count, locale_mix=None, *, start=0, children_per_iro=90,
    with_reviews=True, today=None, seed=7) -> list[str]``

    - ``locale_mix``: share of children per locale, e.g. ``{"en": 0.9, "cy": 0.1}`` (default all
      English); locales are dealt out in proportion, deterministically.
    - ``start``: index of the first number (``phone_number(start)``), so a second call can add more
      children without clashing; the numbers returned are ``phone_number(start + i)`` in order.
    - ``children_per_iro``: consecutive children share a benchmark IRO (``bench.iro.N@demo.invalid``,
      password ``DEMO_PASSWORD``), so the first IRO has exactly this many children when
      ``count >= children_per_iro``.
    - ``with_reviews``: each child also gets a next review (1-60 days ahead) and a held review with
      the demo's four actions (done, agreed, late, waiting for a manager).

    The demo data (authority, staff, three demo children) is loaded first if missing. Flushes, never
    commits. About 10,000 children take a few seconds (the encryption is the real one).
    """
    if count <= 0:
        return []
    if start + count > MAX_CHILDREN:
        raise ValueError(f"at most {MAX_CHILDREN} benchmark children")
    today = today or date.today()
    load_demo(session, today)
    session.flush()
    authority = session.scalar(select(Authority).order_by(Authority.id).limit(1))
    assert authority is not None
    phones = [phone_number(start + i) for i in range(count)]
    taken = session.scalar(
        select(func.count())
        .select_from(ChannelIdentity)
        .where(
            ChannelIdentity.channel == "sms",
            ChannelIdentity.address_index.in_(
                [blind_index(f"sms:{phones[0]}"), blind_index(f"sms:{phones[-1]}")]
            ),
        )
    )
    if taken:
        raise ValueError(f"benchmark numbers from index {start} are already linked; pass another start")

    mix = dict(locale_mix or {"en": 1.0})
    total = sum(mix.values())
    # Deal locales out in proportion (largest remainder), then shuffle with a fixed seed.
    shares = {locale: count * weight / total for locale, weight in mix.items()}
    dealt = {locale: int(share) for locale, share in shares.items()}
    for locale in sorted(shares, key=lambda k: shares[k] - dealt[k], reverse=True)[
        : count - sum(dealt.values())
    ]:
        dealt[locale] += 1
    locales = [locale for locale, n in dealt.items() for _ in range(n)]
    rng = random.Random(seed + start)
    rng.shuffle(locales)

    iros = _bench_iros(session, authority, ceil(count / children_per_iro))
    for first in range(0, count, BATCH):
        rows = range(first, min(first + BATCH, count))
        child_ids = list(
            session.scalars(
                insert(Child).returning(Child.id, sort_by_parameter_order=True),
                [
                    {
                        "authority_id": authority.id,
                        "first_name": NAMES[(start + i) % len(NAMES)],
                        "locale": locales[i],
                        "age": 10 + (start + i) % 8,
                        "looked_after_since": today - timedelta(days=30 + (start + i) % 900),
                    }
                    for i in rows
                ],
            )
        )
        session.execute(
            insert(ChannelIdentity),
            [
                {
                    "child_id": child_id,
                    "channel": "sms",
                    "address": phones[i],
                    "address_index": blind_index(f"sms:{phones[i]}"),
                }
                for i, child_id in zip(rows, child_ids, strict=True)
            ],
        )
        session.execute(
            insert(IroAssignment),
            [
                {"child_id": child_id, "iro_id": iros[i // children_per_iro]}
                for i, child_id in zip(rows, child_ids, strict=True)
            ],
        )
        if not with_reviews:
            continue
        session.execute(
            insert(Review),
            [
                {
                    "child_id": child_id,
                    "scheduled_for": today + timedelta(days=1 + (start + i) % 60),
                    "kind": "regular",
                    "status": "scheduled",
                }
                for i, child_id in zip(rows, child_ids, strict=True)
            ],
        )
        held_ids = list(
            session.scalars(
                insert(Review).returning(Review.id, sort_by_parameter_order=True),
                [
                    {
                        "child_id": child_id,
                        "scheduled_for": today - timedelta(days=150),
                        "kind": "regular",
                        "status": "held",
                    }
                    for child_id in child_ids
                ],
            )
        )
        session.execute(
            insert(ReviewAction),
            [
                {
                    "review_id": review_id,
                    "description": description,
                    "owner": owner,
                    "due_on": today + timedelta(days=due_in),
                    "status": status,
                    "completed_on": today + timedelta(days=due_in) if status == "done" else None,
                }
                for review_id in held_ids
                for description, owner, due_in, status in ACTIONS
            ],
        )
    session.flush()
    return phones
