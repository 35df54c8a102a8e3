"""Take the flow editor screenshots for the README: the draft editor and a flow's diagram.

Run from the project root: ``.venv/bin/python docs/screenshots/take_editor.py``. It serves the app
with the demo data on a throwaway SQLite database and signs in as the participation worker Sam
Patel in Debian's Chromium (``apt-get install -y chromium``), as the browser tests do. Sam starts a
draft of the views flow and rewords its first question; the checks and the diagram follow.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.browser.conftest import CHROMIUM, SKIP_REASON, chromium_launch_args, start_live_app  # noqa: E402

EDITOR = HERE / "editor.png"
DIAGRAM = HERE / "diagram.png"
DIAGRAM_FLOW = "concerns"
NEW_QUESTION = "How are you getting on at the moment?"


def main() -> int:
    if not CHROMIUM.exists():
        print(SKIP_REASON.replace("browser tests", "the screenshots"), file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="reviewline-screenshot-") as tmp:
        url, _, stop = start_live_app(Path(tmp))
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(**chromium_launch_args())
                try:
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    page.goto(f"{url}/login")
                    page.get_by_label("Email").fill("sam.patel@demo.invalid")
                    page.get_by_label("Password").fill("demo-password-1")
                    page.get_by_role("button", name="Sign in").click()
                    expect(page.get_by_role("heading", level=1, name="Flows")).to_be_visible()

                    page.get_by_role("link", name="My views for my review").click()
                    page.get_by_role("button", name="Make changes (start a draft)").click()
                    step = page.locator('fieldset.step[data-step="overall"]')
                    step.get_by_label("What the child is sent").fill(NEW_QUESTION)
                    page.locator("#save-draft").click()
                    expect(page.get_by_text("Draft saved.")).to_be_visible()
                    # The reworded question at the top, with the checks and diagram beside it.
                    step.evaluate("element => element.scrollIntoView()")
                    page.evaluate("window.scrollBy(0, -8)")
                    page.screenshot(path=str(EDITOR))

                    page.goto(f"{url}/flows/{DIAGRAM_FLOW}")
                    diagram = page.locator(".diagram svg")
                    expect(diagram).to_be_visible()
                    diagram.screenshot(path=str(DIAGRAM))
                finally:
                    browser.close()
        finally:
            stop()
    print(f"wrote {EDITOR.relative_to(ROOT)} and {DIAGRAM.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
