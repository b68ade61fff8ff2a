"""The installable app in a real Chromium: the service worker caches the app shell and
nothing of anyone's, shows its offline page for a page it cannot fetch, and shows the
notifications of a hidden page, whose click opens the chat."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_accessibility import assert_no_serious_violations
from tests.browser.ui import (
    CHATS_URL,
    PASSWORD,
    create_channel,
    log_out,
    open_chat,
    register,
    send_message,
    start_direct_chat,
    wait_until_async,
    wait_until_chat_is_open,
)

WAIT_FOR_WORKER = "async () => { await navigator.serviceWorker.ready; return true; }"

# Every cached request with its body (as text), listed from the page.
CACHED = """async () => {
    const found = [];
    for (const name of await caches.keys()) {
        const cache = await caches.open(name);
        for (const request of await cache.keys()) {
            const response = await cache.match(request);
            found.push({cache: name, url: request.url, body: await response.text()});
        }
    }
    return found;
}"""

SHELL_FILLED = """async () => {
    for (const name of await caches.keys()) {
        const cache = await caches.open(name);
        if (await cache.match('/offline') && await cache.match('/static/chat.js')) return true;
    }
    return false;
}"""


def log_in(page: Page, name: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(CHATS_URL)


def test_the_cache_keeps_nothing_of_a_user_who_logged_out(page_for, live_server):
    """Alice chats on a shared computer and logs out; bob logs in on it and loses the
    network. The caches hold the shell only (the offline page and static files, nothing
    else): no page, message, search or name of alice's; a page opened offline is the chat's
    offline page, not the browser's error, which opens the page by itself once the network
    is back."""
    shared = page_for("shared")
    register(shared, "bob")
    log_out(shared)
    register(shared, "alice")
    shared.evaluate(WAIT_FOR_WORKER)
    start_direct_chat(shared, "bob")
    send_message(shared, "The key is under the blue flowerpot")
    shared.goto("/find")
    shared.get_by_label("Search people").fill("bo")
    expect(shared.get_by_role("button", name="Message")).to_have_count(1)
    shared.goto("/chats")
    wait_until_chat_is_open(shared)
    assert shared.evaluate("navigator.serviceWorker.controller !== null")

    log_out(shared)
    log_in(shared, "bob")
    wait_until_async(shared, SHELL_FILLED)
    shared.context.set_offline(True)

    cached = shared.evaluate(CACHED)
    urls = sorted(re.sub(r"^https?://[^/]+", "", entry["url"]) for entry in cached)
    assert "/offline" in urls and "/static/chat.js" in urls
    others = [url for url in urls if url != "/offline" and not url.startswith("/static/")]
    assert others == [], f"cached beyond the shell: {others}"
    assert not [url for url in urls if "?" in url or url.startswith("/uploads/")]
    for entry in cached:
        assert "flowerpot" not in entry["body"], entry["url"]
        assert "alice" not in entry["body"], entry["url"]
        assert "csrf" not in entry["body"] or entry["url"].endswith(".js"), entry["url"]
    assert {entry["cache"] for entry in cached} == {cached[0]["cache"]}

    shared.goto("/chats")
    expect(shared.get_by_role("heading", name="You are offline")).to_be_visible()
    expect(shared.locator("#status")).to_contain_text("Offline")
    expect(shared.get_by_text("flowerpot")).to_have_count(0)
    with shared.expect_navigation():
        shared.get_by_role("button", name="Try again").click()
    expect(shared.get_by_role("heading", name="You are offline")).to_be_visible()
    shared.context.set_offline(False)  # the page reloads by itself
    wait_until_chat_is_open(shared)
    expect(shared.locator(".nav-user .username")).to_have_text("bob")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_notification_settings_and_the_offline_page_pass_axe(page_for, scheme):
    """With notifications allowed, the sound setting and a channel's "Notify every message"
    show, work from the keyboard, keep their state across a reload, and axe-core finds
    nothing serious on them, nor on the offline page."""
    fay = page_for(f"fay-{scheme}", permissions=["notifications"], color_scheme=scheme)
    register(fay, f"fay-{scheme}")
    create_channel(fay, f"Choir {scheme}")
    every_message = fay.get_by_role("button", name="Notify every message")
    sound = fay.get_by_label("Play a sound for new messages")
    expect(every_message).to_have_attribute("aria-pressed", "false")
    every_message.focus()
    fay.keyboard.press("Enter")
    expect(every_message).to_have_attribute("aria-pressed", "true")
    sound.focus()
    fay.keyboard.press("Space")
    expect(sound).not_to_be_checked()
    assert_no_serious_violations(fay, f"the chats page with notification settings ({scheme})")

    fay.reload()
    wait_until_chat_is_open(fay)
    expect(fay.get_by_role("button", name="Notify every message")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(fay.get_by_label("Play a sound for new messages")).not_to_be_checked()
    open_chat(fay, "General Talk")
    expect(fay.get_by_role("button", name="Notify every message")).to_have_attribute(
        "aria-pressed", "false"
    )

    fay.goto("/offline")
    expect(fay.get_by_role("heading", name="You are offline")).to_be_visible()
    assert_no_serious_violations(fay, f"the offline page ({scheme})")
