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


def _staff():  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from app.models import StaffUser

    return db.session.scalar(select(StaffUser).where(StaffUser.email == "sam.patel@demo.invalid"))


def test_a_save_from_an_older_read_cannot_rewrite_a_version_just_published(demo: Flask) -> None:
    import pytest
    from sqlalchemy.orm import Session

    from app.models import ContentVersion

    text = content.shipped_text(FLOW, "wishes")
    row = content.save_draft(db.session, FLOW, "wishes", text, _staff())
    db.session.commit()
    assert content.draft(db.session, FLOW, "wishes") is row  # this session has read the draft
    with Session(db.engine) as other:  # meanwhile, another request publishes it
        theirs = other.get(ContentVersion, row.id)
        content.publish(other, FLOW, "wishes", text.replace(OLD, NEW), None, row=theirs)
        other.commit()
    # This request read the draft before the publish committed, and saves over it now.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(content, "draft", lambda *_: row)
        with pytest.raises(content.Clash):
            content.save_draft(db.session, FLOW, "wishes", "broken: [", _staff())
    db.session.expire_all()
    published = db.session.get(ContentVersion, row.id)
    assert (published.status, published.number) == ("published", 1)
    assert NEW in published.content


def test_two_publishes_at_the_same_moment_publish_one_and_report_a_clash(demo: Flask) -> None:
    import pytest
    from sqlalchemy import event, func, select
    from sqlalchemy.orm import Session

    from app.models import ContentVersion

    text = content.shipped_text(FLOW, "wishes")

    def someone_else_publishes_first(session: Session, *_: object) -> None:
        # After this publish chose its number, before it writes: another request takes the number.
        if any(isinstance(row, ContentVersion) for row in session.new):
            with Session(db.engine) as other:
                content.publish(other, FLOW, "wishes", text.replace(OLD, NEW), None)
                other.commit()

    event.listen(db.session(), "before_flush", someone_else_publishes_first)
    try:
        with pytest.raises(content.Clash):
            content.publish(db.session, FLOW, "wishes", text, None)
    finally:
        event.remove(db.session(), "before_flush", someone_else_publishes_first)
    rows = db.session.scalars(select(ContentVersion)).all()
    assert [(r.number, NEW in r.content) for r in rows] == [(1, True)]
    assert db.session.scalar(select(func.count()).select_from(ContentVersion)) == 1


def test_a_child_on_a_version_another_process_just_published_is_served_that_version(demo: Flask) -> None:
    import time

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from app.conversations import InboundMessage, handle
    from app.models import ConversationState

    store = content.store()
    store.refresh_seconds = 3600
    store.current(db.session)
    handle(InboundMessage(channel="sms", sender="+447700900001", text="views"))
    text = content.shipped_text(FLOW, "wishes").replace(
        "How are things where you live?", "And how is home these days?"
    )
    with Session(db.engine) as other:  # another process publishes...
        digest = content.publish(other, FLOW, "wishes", text, None).digest
        other.commit()
    store._checked = time.monotonic()  # ...and this one has not looked since
    assert ("wishes", digest) not in store.current(db.session)[0].versions
    # The child's next message reached the other process first, which moved them onto its version.
    state = db.session.scalar(select(ConversationState))
    state.data = {**state.data, "version": digest}
    db.session.commit()

    replies = handle(InboundMessage(channel="sms", sender="+447700900001", text="1")).replies
    assert "And how is home these days?" in "\n".join(replies)
