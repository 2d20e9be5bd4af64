"""Real-browser tests: Django's live server and Playwright driving Debian's chromium.

`npx playwright install` cannot download browsers here, so the tests launch /usr/bin/chromium
and skip (not fail) on a machine without it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an asyncio loop in this thread; Django would then refuse ORM calls
# from the test body (SynchronousOnlyOperation) although they are ordinary blocking calls here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageWatch:
    """What the page did that a test must notice: dialogs (alert/confirm/prompt) and uncaught errors."""

    def __init__(self, page):
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _dialog(self, dialog):
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.watch = PageWatch(page)
    yield page
    context.close()


@pytest.fixture
def login(page):
    """login(user): fill in the login form with the keyboard and land on `next`."""
    from tests.conftest import PASSWORD

    def do(user, next_url: str = "/"):
        page.goto(f"/accounts/login/?next={next_url}")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", PASSWORD)
        page.press("input[name=password]", "Enter")
        page.wait_for_url(f"**{next_url}")

    return do


# Screenshots a person should look at (the labelling screen per kind and size): kept after the
# run in $ARBITER_SCREENSHOT_DIR (default var/screenshots/ in the checkout) and listed at the end.
SCREENSHOT_DIR = Path(os.environ.get("ARBITER_SCREENSHOT_DIR") or Path(__file__).resolve().parents[2] / "var" / "screenshots")
_saved_screenshots: list[Path] = []


def screenshot_path(name: str) -> str:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / name
    _saved_screenshots.append(path)
    return str(path)


def pytest_terminal_summary(terminalreporter):
    if _saved_screenshots:
        terminalreporter.write_sep("-", f"screenshots for review in {SCREENSHOT_DIR}")
        for path in _saved_screenshots:
            terminalreporter.write_line(str(path))
