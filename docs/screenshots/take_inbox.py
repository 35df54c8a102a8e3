"""Take the inbox screenshots for the README: caseload, a thread, and the review workspace.

Run from the project root: ``.venv/bin/python docs/screenshots/take_inbox.py``. It serves the app
with the demo data on a throwaway SQLite database, has the demo child Jordan text the service
(an urgent message, a question, views for the review), and signs in as the IRO Priya Shah in
Debian's Chromium (``apt-get install -y chromium``), as the browser tests do.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import expect, sync_playwright  # noqa: E402
from sqlalchemy import select  # noqa: E402

from app.conversations import InboundMessage, handle  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import ChannelIdentity, Review  # noqa: E402
from tests.browser.conftest import CHROMIUM, SKIP_REASON, chromium_launch_args, start_live_app  # noqa: E402

JORDAN = "+447700900001"
# Jordan's views for the review, answered the way a child might (one answer private).
VIEWS = [
    "my views",
    "2",  # overall: OK
    "I want to see my little brother more often",
    "skip",
    "skip",
    "not sure",
    "skip",
    "skip",
    "I want to go to college to do mechanics",
    "football on saturdays",
    "moving school again",
    "my social worker and my foster carer",
    "skip",
    "after school please",
    "skip",
    "I get scared when the older boys shout at night",
]


def seed(app) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Messages from Jordan; returns Jordan's id and the next review's id."""
    with app.app_context():
        for text in ("who is my IRO", "when is my review", "the older boy at the house hit me last night"):
            handle(InboundMessage(channel="sms", sender=JORDAN, text=text))
        for text in VIEWS:
            handle(InboundMessage(channel="sms", sender=JORDAN, text=text))
        child_id = ChannelIdentity.find(db.session, "sms", JORDAN).child_id
        review_id = db.session.scalar(
            select(Review.id)
            .where(Review.child_id == child_id, Review.status == "scheduled")
            .order_by(Review.id)
        )
        for text in ("1", "yes", "yes"):  # finish the form wherever it stopped, then confirm
            handle(InboundMessage(channel="sms", sender=JORDAN, text=text))
        handle(
            InboundMessage(
                channel="sms", sender=JORDAN, text="can you tell my social worker i need new trainers"
            )
        )
        db.session.remove()
        return child_id, review_id


def main() -> int:
    if not CHROMIUM.exists():
        print(SKIP_REASON.replace("browser tests", "the screenshots"), file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="reviewline-screenshot-") as tmp:
        url, app, stop = start_live_app(Path(tmp))
        try:
            child_id, review_id = seed(app)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(**chromium_launch_args())
                try:
                    page = browser.new_page(viewport={"width": 1280, "height": 900})
                    page.goto(f"{url}/login")
                    page.get_by_label("Email").fill("priya.shah@demo.invalid")
                    page.get_by_label("Password").fill("demo-password-1")
                    page.get_by_role("button", name="Sign in").click()
                    expect(page.get_by_role("heading", name="Caseload")).to_be_visible()
                    page.screenshot(path=str(HERE / "caseload.png"), full_page=True)
                    page.goto(f"{url}/inbox/children/{child_id}")
                    expect(page.locator("#thread")).to_contain_text("hit me")
                    page.get_by_role("textbox", name="Private note").fill(
                        "Called the placement; visiting tomorrow."
                    )
                    page.get_by_role("button", name="Add note").click()
                    page.screenshot(path=str(HERE / "thread.png"))
                    page.goto(f"{url}/inbox/children/{child_id}/reviews/{review_id}")
                    expect(page.get_by_role("heading", level=1)).to_be_visible()
                    page.screenshot(path=str(HERE / "review.png"))
                finally:
                    browser.close()
        finally:
            stop()
    print("Wrote caseload.png, thread.png and review.png in", HERE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
