"""Take docs/screenshots/simulator.png for the README: the simulator after two messages as Jordan.

Run from the project root: ``.venv/bin/python docs/screenshots/take_simulator.py``. It serves the
app with the demo data on a throwaway SQLite database and drives Debian's Chromium
(``apt-get install -y chromium``), as the browser tests do.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.browser.conftest import (  # noqa: E402
    CHROMIUM,
    SKIP_REASON,
    chromium_launch_args,
    start_live_server,
)

OUTPUT = HERE / "simulator.png"
JORDAN = "+447700900001"


def say(page, text: str, expected_reply: str) -> None:  # type: ignore[no-untyped-def]
    before = page.locator("#log li.service").count()
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")
    replies = page.locator("#log li.service")
    expect(replies).not_to_have_count(before)
    expect(replies.filter(has_text=expected_reply).first).to_be_visible()


def main() -> int:
    if not CHROMIUM.exists():
        print(SKIP_REASON.replace("browser tests", "the screenshot"), file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="reviewline-screenshot-") as tmp:
        url, stop = start_live_server(Path(tmp))
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(**chromium_launch_args())
                try:
                    page = browser.new_page(viewport={"width": 1200, "height": 800})
                    page.goto(f"{url}/simulator")
                    expect(page.locator("#child option")).to_have_count(4)
                    page.get_by_label("Text as").select_option(JORDAN)
                    say(page, "who is my IRO", "Priya Shah")
                    say(page, "someone at the home hurt me", "999")
                    expect(page.locator("#effects li.urgent")).to_have_count(1)
                    # Keyboard focus would draw the focus ring on the message box; blur it.
                    page.get_by_role("textbox", name="Message").blur()
                    page.screenshot(path=str(OUTPUT))
                finally:
                    browser.close()
        finally:
            stop()
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
