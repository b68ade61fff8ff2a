"""What a person does and sees on the chat's pages, through the real forms and controls."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

PASSWORD = "correct horse battery"
CHATS_URL = re.compile(r"/chats(\?|$)")
OPEN_CHAT_URL = re.compile(r"/chats\?chat=(\d+)$")


def wait_until_async(page: Page, function: str, timeout_s: float = 10) -> Any:
    """Evaluate the async page ``function`` until its result is truthy; return it.
    ``wait_for_function`` takes a returned promise as truthy at once, without awaiting it."""
    deadline = time.monotonic() + timeout_s
    while not (value := page.evaluate(function)):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_s} s: {function}")
        page.wait_for_timeout(100)
    return value


def register(page: Page, name: str, password: str = PASSWORD) -> None:
    """Create an account through the register form and wait to land on /chats, ready."""
    page.goto("/register")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Repeat the password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Create account").click()
    if not CHATS_URL.search(page.url):
        errors = page.locator(".form-error").all_inner_texts()
        raise AssertionError(f"{name} could not register: {errors or page.url}")
    # The chat list is filled by the page's scripts: from then on its buttons answer.
    expect(page.locator("#chat-list")).to_have_attribute("aria-busy", "false")


def start_direct_chat(page: Page, name: str) -> int:
    """Find ``name`` on /find, press "Message", land on their chat and wait until it is
    open (the page's scripts run by then); return the chat id."""
    page.goto("/find")
    page.get_by_label("Search people").fill(name)
    person = (
        page.get_by_role("list", name="People")
        .get_by_role("listitem")
        .filter(has=page.get_by_text(name, exact=True))
    )
    person.get_by_role("button", name="Message").click()
    expect(page).to_have_url(OPEN_CHAT_URL)
    wait_until_history_is_loaded(page)
    return int(OPEN_CHAT_URL.search(page.url).group(1))


def meet(page_for: Callable[..., Page], starter: str, other: str) -> tuple[Page, Page]:
    """Pages for ``other`` and ``starter``, both registered (``other`` first, so that
    ``starter`` finds them), and ``starter`` on their direct chat; return both pages."""
    other_page = page_for(other)
    starter_page = page_for(starter)
    register(other_page, other)
    register(starter_page, starter)
    start_direct_chat(starter_page, other)
    return starter_page, other_page


def chat_in_list(page: Page, name: str) -> Locator:
    """The entry of the chat called ``name`` (a channel, or a person) in the chat list."""
    return (
        page.get_by_role("list", name="Your chats")
        .get_by_role("link")
        .filter(has=page.get_by_text(name, exact=True))
    )


def unread_badge(page: Page, name: str) -> Locator:
    """The unread count shown on the chat called ``name`` in the chat list."""
    return chat_in_list(page, name).locator(".badge")


def open_chat(page: Page, name: str) -> None:
    """Pick the chat called ``name`` in the chat list and wait until it is shown."""
    chat_in_list(page, name).click()
    expect(page.locator("#chat-title")).to_have_text(name)
    wait_until_history_is_loaded(page)


def open_direct_chat_from(page: Page, starter: Page, name: str) -> None:
    """Open, by its address, the direct chat the person on ``starter`` has just made with
    this person, called ``name`` here: it enters this person's list only with its first
    message, but they are a member from the start."""
    chat_id = OPEN_CHAT_URL.search(starter.url).group(1)
    page.goto(f"/chats?chat={chat_id}")
    expect(page.locator("#chat-title")).to_have_text(name)
    wait_until_history_is_loaded(page)


def wait_until_history_is_loaded(page: Page) -> None:
    """Wait until the server has answered the opening of the chat shown (its history is
    no longer busy): from then on a reload reopens this chat."""
    expect(page.locator("#history")).to_have_attribute("aria-busy", "false")


def message_bodies(page: Page) -> Locator:
    """The text of each message in the open chat, oldest first."""
    return page.locator("#messages .message .message-body")


def message_senders(page: Page) -> Locator:
    """The sender's name of each message in the open chat, oldest first."""
    return page.locator("#messages .message .sender")


def send_message(page: Page, text: str) -> None:
    """Type ``text`` in the open chat, press Enter, and wait until it is no longer pending."""
    composer = page.get_by_label("Message", exact=True)
    composer.fill(text)
    composer.press("Enter")
    expect(composer).to_have_value("")
    sent = (
        page.locator("#messages .message")
        .filter(has=page.locator(".message-body", has_text=re.compile(f"^{re.escape(text)}$")))
        .last
    )
    expect(sent).to_be_visible()
    expect(sent.locator(".message-status")).to_have_count(0)


def wait_until_chat_is_open(page: Page) -> None:
    """Wait until the open chat has loaded on the server too: from then on its live
    messages, typing notes and uploads reach this page."""
    wait_until_history_is_loaded(page)
    expect(page.get_by_role("button", name="Attach a file")).to_be_enabled()


def create_channel(page: Page, name: str) -> None:
    """Create the channel ``name`` from the chat list and wait until it is open."""
    page.get_by_label("New channel").fill(name)
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#chat-title")).to_have_text(name)
    wait_until_history_is_loaded(page)


def join_channel(page: Page, name: str) -> None:
    """Press Join beside ``name`` under "Channels you can join"; wait until it is open."""
    joinable = page.get_by_role("list", name="Channels you can join").get_by_role("listitem")
    joinable.filter(has=page.get_by_text(name, exact=True)).get_by_role(
        "button", name="Join"
    ).click()
    expect(page.locator("#chat-title")).to_have_text(name)
    wait_until_history_is_loaded(page)


def history(page: Page) -> Locator:
    """The open chat's message history (a live log)."""
    return page.get_by_role("log")


def log_out(page: Page) -> None:
    """Press "Log out" in the header and wait for the login page."""
    with page.expect_navigation():
        page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))


def scroll_until_shown(page: Page, count: int, ends: tuple[str, ...] = ("top", "bottom")) -> None:
    """Scroll the history to each of ``ends`` in turn ("top", "bottom"), again and again,
    until ``count`` messages show: each scroll waits for the page it brings, if any."""
    for turn in range(4 * count):
        shown = message_bodies(page).count()
        if shown >= count:
            break
        page.evaluate(
            """top => {
                const history = document.getElementById('history');
                history.scrollTop = top ? 0 : history.scrollHeight;
            }""",
            ends[turn % len(ends)] == "top",
        )
        try:
            page.wait_for_function(
                "n => document.querySelectorAll('#messages .message').length > n",
                arg=shown,
                timeout=2_000,
            )
        except PlaywrightTimeout:
            continue  # that end is reached, or its sentinel was not in view yet
    expect(message_bodies(page)).to_have_count(count)
