"""The content store: what each process serves after a publish, and that its check never reads in
the caller's transaction."""

from __future__ import annotations

from flask import Flask

from app import content
from app.content import ContentStore
from app.extensions import db
from app.models.flows import FLOW

OLD = "How are things going for you at the moment?"
NEW = "How are you getting on at the moment?"


def test_another_process_serves_a_publish_once_its_refresh_time_has_passed(demo: Flask) -> None:
    shipped = demo.extensions["reviewline.content"].shipped
    slow, quick = ContentStore(shipped, refresh_seconds=3600), ContentStore(shipped, refresh_seconds=0)
    before = slow.current(db.session)[0].flows["wishes"]
    quick.current(db.session)

    text = content.shipped_text(FLOW, "wishes").replace(OLD, NEW)
    content.publish(db.session, FLOW, "wishes", text, None)
    # Not committed yet: no process serves it.
    assert quick.current(db.session)[0].flows["wishes"].version == before.version
    db.session.commit()

    assert slow.current(db.session)[0].flows["wishes"] is before  # within its refresh time
    library = quick.current(db.session)[0]
    assert NEW in library.flows["wishes"].nodes["overall"].text
    # The version children started on stays loaded.
    assert library.get("wishes", before.version) is not None
    assert library.get("wishes", before.version).nodes["overall"].text == OLD


def test_checking_for_changes_leaves_the_callers_transaction_alone(demo: Flask) -> None:
    store = ContentStore(demo.extensions["reviewline.content"].shipped, refresh_seconds=0)
    db.session.commit()
    store.current(db.session)
    assert not db.session().in_transaction()
