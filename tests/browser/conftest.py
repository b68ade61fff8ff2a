"""Fixtures for tests that drive a real Chromium against a real server.

``live_server`` runs ``python app.py`` (eventlet, as in production) in its own process on a
free loopback port with a fresh database; ``browser`` is one headless Chromium for the run;
``page_for(name)`` gives each person a browser context of their own (own cookies), and
``page_for(name, **options)`` one with other context options (a phone, a dark theme).
``pair(alice, bob)`` registers two people and opens their direct chat on both pages.

A test that cannot get Chromium is skipped with the reason, except when ``CI=true``: there
it fails, because CI must run every test.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, expect, sync_playwright

from tests.browser.ui import meet, open_direct_chat_from, wait_until_chat_is_open
from tests.live_server import LiveServer, start_server
from tests.skips import skip_or_fail

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1280, "height": 800}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}

# Generous enough for a loaded CI machine; a live update normally lands in milliseconds.
UI_TIMEOUT_MS = 10_000

expect.set_options(timeout=UI_TIMEOUT_MS)

PAGES = pytest.StashKey[dict[str, "OpenPage"]]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this folder ``browser`` and ``slow`` (``-m 'not browser'`` or
    ``-m 'not slow'`` leaves them out)."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


# -- the server ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The chat on eventlet with a fresh database, shared by the tests of one module.

    Usernames are unique per database, so each test of a module registers its own people.
    """
    server = start_server(tmp_path_factory.mktemp("live-server"))
    yield server
    server.stop()


# -- the browser ---------------------------------------------------------------------


# The package's scope, not the session's: Playwright's sync API keeps an asyncio loop running
# in the main thread while it is started, and the tests after this folder (zeroconf, the
# disturbance benchmark's clients) need that thread without one.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the browser tests (the system's, never a downloaded one)."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        skip_or_fail(
            f"Chromium not found at {CHROMIUM}: install it (apt-get install chromium) "
            "or set CHROMIUM_PATH"
        )
    try:
        playwright = sync_playwright().start()
    except Exception as error:
        skip_or_fail(f"Playwright could not start: {error}")
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception as error:
        playwright.stop()
        skip_or_fail(f"Chromium at {CHROMIUM} did not start through Playwright: {error}")
    yield chromium
    chromium.close()
    playwright.stop()


@dataclass
class OpenPage:
    """A person's page and what its console said, for the report of a failed test."""

    page: Page
    console: list[str] = field(default_factory=list)

    def note(self, message: ConsoleMessage) -> None:
        if message.type in {"error", "warning"}:
            where = message.location.get("url") or ""
            self.console.append(f"{message.type}: {message.text} {where}".rstrip())


@pytest.fixture
def page_for(
    request: pytest.FixtureRequest, browser: Browser, live_server: LiveServer
) -> Iterator[Callable[..., Page]]:
    """``page_for("alice")``: a page in alice's own browser context, 1280x800, whose
    relative URLs (``page.goto("/find")``) go to the live server. Keyword arguments are
    Playwright's context options: ``page_for("bob", **PHONE)``, ``color_scheme="dark"``."""
    contexts = []
    opened: dict[str, OpenPage] = {}
    request.node.stash[PAGES] = opened

    def open_page(name: str, **options: Any) -> Page:
        if name in opened:
            raise ValueError(f"{name} already has a page in this test")
        options = {"viewport": VIEWPORT, **options}
        context = browser.new_context(base_url=live_server.url, **options)
        context.set_default_timeout(UI_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        entry = OpenPage(page)
        page.on("console", entry.note)
        page.on("pageerror", lambda error: entry.console.append(f"uncaught: {error}"))
        opened[name] = entry
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def pair(page_for: Callable[..., Page]) -> Callable[[str, str], tuple[Page, Page]]:
    """``pair("alice", "bob")``: alice and bob, each with their direct chat open."""

    def make(alice_name: str, bob_name: str) -> tuple[Page, Page]:
        alice, bob = meet(page_for, alice_name, bob_name)
        open_direct_chat_from(bob, alice, alice_name)
        for page in (alice, bob):
            wait_until_chat_is_open(page)
        return alice, bob

    return make


# -- reports of failed tests ---------------------------------------------------------


def save_screenshots(item: pytest.Item, opened: dict[str, OpenPage]) -> list[str]:
    """Save a screenshot of each person's page under tests/artifacts; return the paths."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    test_name = re.sub(r"[^\w.-]+", "_", item.name)
    saved = []
    for name, entry in opened.items():
        path = ARTIFACTS / f"{test_name}-{name}.png"
        try:
            entry.page.screenshot(path=str(path), full_page=True, timeout=5_000)
        except Error as error:
            saved.append(f"{name}: no screenshot ({error.message.splitlines()[0]})")
        else:
            saved.append(f"{name}: {path.relative_to(ROOT)} (at {entry.page.url})")
    return saved


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failure, add screenshots, each page's console and the server's output."""
    report = yield
    opened = item.stash.get(PAGES, None)
    if report.when == "call" and report.failed and opened:
        report.sections.append(("screenshots", "\n".join(save_screenshots(item, opened))))
        for name, entry in opened.items():
            if entry.console:
                report.sections.append((f"console of {name}'s page", "\n".join(entry.console)))
        server = item.funcargs.get("live_server")
        if isinstance(server, LiveServer):
            report.sections.append(("server output (last lines)", server.describe()))
    return report
