"""The installable app in a real Chromium: the service worker caches the app shell and
nothing of anyone's, shows its offline page for a page it cannot fetch, and shows the
notifications of a hidden page, whose click opens the chat."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Worker, expect

from tests.browser.test_accessibility import assert_no_serious_violations
from tests.browser.test_look_and_feel import HIDE_TAB
from tests.browser.ui import (
    CHATS_URL,
    PASSWORD,
    chat_in_list,
    create_channel,
    join_channel,
    log_out,
    open_chat,
    register,
    send_message,
    start_direct_chat,
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


def service_worker(page: Page) -> Worker:
    """The service worker of the page's browser, once it runs."""
    page.evaluate(WAIT_FOR_WORKER)
    workers = page.context.service_workers
    if not workers:
        return page.context.wait_for_event("serviceworker")
    return workers[0]


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
    shared.wait_for_function(SHELL_FILLED)
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


NOTIFICATIONS = """async () => {
    const registration = await navigator.serviceWorker.ready;
    return (await registration.getNotifications()).map(
        n => ({title: n.title, body: n.body, tag: n.tag, chatId: n.data && n.data.chatId,
               silent: n.silent}));
}"""


def test_a_direct_message_to_a_hidden_page_notifies_through_the_service_worker(page_for):
    """Dan allowed notifications and looks at another tab. A message in a channel he did
    not choose notifies nothing; eve's direct message shows as a notification of the
    service worker (the kind a phone shows), with sound; clicking it opens the chat with eve
    in dan's page, and the notification goes."""
    dan = page_for("dan", permissions=["notifications"])
    eve = page_for("eve")
    register(dan, "dan")
    register(eve, "eve")
    create_channel(eve, "Lunch club")
    dan.reload()
    join_channel(dan, "Lunch club")
    open_chat(dan, "General Talk")
    worker = service_worker(dan)
    expect(dan.get_by_label("Play a sound with notifications")).to_be_checked()
    dan.evaluate(HIDE_TAB, True)

    send_message(eve, "Who is in today?")
    expect(chat_in_list(dan, "Lunch club").locator(".chat-preview")).to_have_text(
        "eve: Who is in today?"
    )
    chat_id = start_direct_chat(eve, "dan")
    send_message(eve, "Lunch at noon?")
    dan.wait_for_function(f"({NOTIFICATIONS})().then(found => found.length > 0)")
    assert dan.evaluate(NOTIFICATIONS) == [
        {
            "title": "eve",
            "body": "Lunch at noon?",
            "tag": f"chat-{chat_id}",
            "chatId": chat_id,
            "silent": False,
        }
    ]

    dan.evaluate(HIDE_TAB, False)
    worker.evaluate(
        """async () => {
            const [notification] = await self.registration.getNotifications();
            await openChatFromNotification(notification);
        }"""
    )
    expect(dan.locator("#chat-title")).to_have_text("eve")
    expect(dan).to_have_url(re.compile(rf"/chats\?chat={chat_id}$"))
    assert dan.evaluate(NOTIFICATIONS) == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_notification_settings_and_the_offline_page_pass_axe(page_for, scheme):
    """With notifications allowed, the sound setting and a channel's "Notify every message"
    show, work from the keyboard, keep their state across a reload, and axe-core finds
    nothing serious on them, nor on the offline page."""
    fay = page_for(f"fay-{scheme}", permissions=["notifications"], color_scheme=scheme)
    register(fay, f"fay-{scheme}")
    create_channel(fay, f"Choir {scheme}")
    every_message = fay.get_by_role("button", name="Notify every message")
    sound = fay.get_by_label("Play a sound with notifications")
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
    expect(fay.get_by_label("Play a sound with notifications")).not_to_be_checked()
    open_chat(fay, "General Talk")
    expect(fay.get_by_role("button", name="Notify every message")).to_have_attribute(
        "aria-pressed", "false"
    )

    fay.goto("/offline")
    expect(fay.get_by_role("heading", name="You are offline")).to_be_visible()
    assert_no_serious_violations(fay, f"the offline page ({scheme})")
