"""What people do with the chat, from the first visit to logging out, in real Chromium."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, expect

from bench import seed
from tests.browser.journey import first_day, keep_on_the_lan
from tests.browser.ui import (
    create_channel,
    history,
    log_out,
    message_bodies,
    open_chat,
    register,
    send_message,
    start_direct_chat,
    unread_badge,
    wait_until_chat_is_open,
)

LONG_HISTORY = 150


def test_first_day_on_a_lan_without_internet(page_for):
    """Register, find someone, talk; create, find and join a channel; with every request
    to another host refused, nothing even tries to leave the network."""
    alice = page_for("alice")
    bob = page_for("bob")
    refused_by_alice = keep_on_the_lan(alice.context)
    refused_by_bob = keep_on_the_lan(bob.context)
    first_day(alice, bob, "alice", "bob", "Release")
    assert refused_by_alice == []
    assert refused_by_bob == []
    assert alice.locator("#chat-app").get_attribute("data-transport") == "websocket"


def scroll_to_top(page: Page) -> dict:
    """Scroll the history to its very top; return the body and screen position of the
    topmost message then in view."""
    return page.evaluate(
        """() => {
            const history = document.getElementById('history');
            history.scrollTop = 0;
            const top = history.getBoundingClientRect().top;
            for (const el of history.querySelectorAll('.message')) {
                const box = el.getBoundingClientRect();
                if (box.bottom > top) {
                    return {body: el.querySelector('.message-body').textContent, y: box.top};
                }
            }
            return null;
        }"""
    )


def screen_y(page: Page, body: str) -> float:
    """Where the message ``body`` is on the screen now."""
    return page.evaluate(
        """body => [...document.querySelectorAll('#messages .message')]
            .find(el => el.querySelector('.message-body').textContent === body)
            .getBoundingClientRect().top""",
        body,
    )


DAY_SEPARATORS_CHECK = """() => {
    const problems = [];
    const days = new Set();
    let previousDay = null;
    let separatorsSince = 0;
    for (const li of document.querySelectorAll('#messages > li')) {
        if (li.classList.contains('day-separator')) separatorsSince += 1;
        if (!li.classList.contains('message')) continue;
        const day = new Date(Number(li.dataset.createdAt)).toDateString();
        const wanted = day === previousDay ? 0 : 1;
        if (separatorsSince !== wanted) {
            problems.push(`${separatorsSince} separators before ${li.textContent}`);
        }
        days.add(day);
        separatorsSince = 0;
        previousDay = day;
    }
    const separators = document.querySelectorAll('#messages > .day-separator').length;
    return {problems, days: days.size, separators};
}"""


def test_scrolling_far_up_loads_older_pages_without_moving_the_view(page_for, live_server):
    """Carol opens a channel with a long history spread over several days. Each time she
    reaches the top, the previous page arrives above it, and the message she was looking at
    stays exactly where it was on her screen. In the end every message shows once, in
    order, with one day separator before each day's first message."""
    carol = page_for("carol")
    register(carol, "carol")
    create_channel(carol, "Archive")
    chat_id = seed.channel_id(live_server, "Archive")
    start = datetime.now(UTC) - timedelta(hours=LONG_HISTORY + 1)
    bodies = [f"History line {n}" for n in range(1, LONG_HISTORY + 1)]
    seed.add_messages(
        live_server, chat_id, seed.spread(["carol"], bodies, start, timedelta(hours=1))
    )
    carol.reload()
    wait_until_chat_is_open(carol)
    expect(message_bodies(carol)).to_have_count(20)
    expect(message_bodies(carol).last).to_have_text(bodies[-1])

    shown = 20
    while shown < LONG_HISTORY:
        anchor = scroll_to_top(carol)
        carol.wait_for_function(
            "n => document.querySelectorAll('#messages .message').length > n", arg=shown
        )
        shown = message_bodies(carol).count()
        assert abs(screen_y(carol, anchor["body"]) - anchor["y"]) <= 1, anchor
    expect(carol.locator("#history-top-note")).to_have_text("This is the beginning of the chat.")
    assert message_bodies(carol).all_inner_texts() == bodies

    check = carol.evaluate(DAY_SEPARATORS_CHECK)
    assert check["problems"] == []
    assert check["separators"] == check["days"] >= 6


def test_coming_back_to_unread_messages(page_for, live_server):
    """Dave was away while erin wrote 40 messages. His title and badge count them; the
    chat opens at a "New messages" divider above the first unread; the badge and the
    title count go down as he reads, to nothing at the bottom. A message arriving in
    another chat counts too, and reading it clears it."""
    dave = page_for("dave")
    erin = page_for("erin")
    register(dave, "dave")
    register(erin, "erin")
    chat_id = start_direct_chat(erin, "dave")
    send_message(erin, "Before you left")
    open_chat(dave, "erin")
    expect(message_bodies(dave)).to_have_text(["Before you left"])
    open_chat(dave, "General Talk")

    bodies = [f"While you were away {n}" for n in range(1, 41)]
    start = datetime.now(UTC)
    seed.add_messages(
        live_server, chat_id, seed.spread(["erin"], bodies, start, timedelta(seconds=1))
    )
    dave.reload()
    expect(unread_badge(dave, "erin")).to_have_text("40")
    expect(dave).to_have_title("(40) Chat")

    open_chat(dave, "erin")
    divider = dave.locator("#messages .unread-divider")
    expect(divider).to_have_text("New messages")
    first_unread = divider.locator("xpath=following-sibling::li[contains(@class,'message')][1]")
    expect(first_unread.locator(".message-body")).to_have_text(bodies[0])
    expect(divider).to_be_in_viewport()

    # What fits on the screen is read; the rest still counts.
    expect(unread_badge(dave, "erin")).to_have_text(re.compile(r"^([1-9]|[12][0-9]|3[0-9])$"))
    partly = int(unread_badge(dave, "erin").inner_text())
    expect(dave).to_have_title(f"({partly}) Chat")

    history(dave).hover()
    dave.mouse.wheel(0, 600)
    expect(unread_badge(dave, "erin")).not_to_have_text(str(partly))
    dave.get_by_role("button", name="Jump to latest").click()
    expect(unread_badge(dave, "erin")).to_be_hidden()
    expect(dave).to_have_title("Chat")

    send_message(erin, "One more, while you are here")
    expect(message_bodies(dave).last).to_have_text("One more, while you are here")
    expect(unread_badge(dave, "erin")).to_be_hidden()
    open_chat(erin, "General Talk")
    send_message(erin, "Hello everyone")
    expect(unread_badge(dave, "General Talk")).to_have_text("1")
    expect(dave).to_have_title("(1) Chat")
    open_chat(dave, "General Talk")
    expect(message_bodies(dave).last).to_have_text("Hello everyone")
    expect(unread_badge(dave, "General Talk")).to_be_hidden()
    expect(dave).to_have_title("Chat")


def test_a_reload_lands_in_the_chat_open_last(page_for):
    """Frank opens a channel, then reloads, then comes back to /chats: both times the
    channel he had open is there again, history and all."""
    frank = page_for("frank")
    register(frank, "frank")
    create_channel(frank, "Book club")
    send_message(frank, "First book: Dune")
    open_chat(frank, "General Talk")
    open_chat(frank, "Book club")
    wait_until_chat_is_open(frank)

    frank.reload()
    expect(frank.locator("#chat-title")).to_have_text("Book club")
    expect(message_bodies(frank)).to_have_text(["First book: Dune"])

    frank.goto("/find")
    frank.get_by_role("link", name="Chats").click()
    expect(frank).to_have_url(re.compile(r"/chats(\?chat=\d+)?$"))
    expect(frank.locator("#chat-title")).to_have_text("Book club")
    expect(message_bodies(frank)).to_have_text(["First book: Dune"])


def test_after_logging_out_nothing_can_be_seen(page_for):
    """Grace logs out in one tab. That tab lands on the login page, and Back does not bring
    the chat back; her other tab drops every message and chat at once; /chats, /find and
    the search answer only with the login page."""
    grace = page_for("grace")
    register(grace, "grace")
    create_channel(grace, "Diary")
    send_message(grace, "Something private")
    other_tab = grace.context.new_page()
    other_tab.goto("/chats")
    expect(message_bodies(other_tab)).to_have_text(["Something private"])

    log_out(grace)
    expect(other_tab.get_by_role("heading", name="You are logged out")).to_be_visible()
    expect(other_tab.locator("#messages .message")).to_have_count(0)
    expect(other_tab.locator("#chat-list li")).to_have_count(0)
    expect(other_tab.get_by_text("Something private")).to_have_count(0)

    grace.go_back()
    expect(grace.get_by_text("Something private")).to_have_count(0)
    expect(grace.locator("#messages .message")).to_have_count(0)
    for path in ("/chats", "/find", "/"):
        grace.goto(path)
        expect(grace).to_have_url(re.compile(r"/login"))
        expect(grace.get_by_role("heading", name="Log in")).to_be_visible()
    response = grace.request.get("/find?q=gr", headers={"Accept": "application/json"})
    assert response.status in {302, 401} or "/login" in response.url
