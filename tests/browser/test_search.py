"""Message search in Chromium: the search box opened by its button, "/" and Ctrl+K, results
with their chat, sender, time and matching words marked, walked with the keyboard, and on
a phone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, expect

from bench import seed
from tests.browser.conftest import PHONE
from tests.browser.test_phone import assert_fits_the_phone
from tests.browser.ui import (
    chat_in_list,
    create_channel,
    message_bodies,
    register,
    scroll_until_shown,
    wait_until_chat_is_open,
)


def search_dialog(page: Page):
    return page.get_by_role("dialog", name="Search messages")


def results(page: Page):
    return search_dialog(page).get_by_role("list", name="Messages found").get_by_role("button")


def seed_kitchen(page: Page, server, name: str, channel: str = "Kitchen") -> int:
    register(page, name)
    create_channel(page, channel)
    chat_id = seed.channel_id(server, channel)
    start = datetime.now(UTC) - timedelta(hours=2)
    bodies = [
        "The Crème Brûlée planning starts at noon",
        "Nothing to see here",
        "creme fraiche for the planner",
        "<img src=x onerror=alert(1)> plan",
    ]
    seed.add_messages(server, chat_id, seed.spread([name], bodies, start, timedelta(minutes=1)))
    page.reload()
    wait_until_chat_is_open(page)
    return chat_id


def test_slash_opens_search_and_results_mark_the_matching_words(page_for, live_server):
    alice = page_for("alice")
    seed_kitchen(alice, live_server, "alice")
    alice.locator("#history").focus()
    alice.keyboard.press("/")
    dialog = search_dialog(alice)
    expect(dialog).to_be_visible()
    box = dialog.get_by_role("searchbox", name="Search messages in your chats")
    expect(box).to_be_focused()
    box.fill("creme plan")
    expect(results(alice)).to_have_count(2)
    newest, oldest = results(alice).all()
    expect(newest.locator(".search-result-chat")).to_have_text("Kitchen")
    expect(newest.locator(".search-result-sender")).to_have_text("alice")
    expect(newest.locator("time")).to_have_attribute("datetime", re.compile(r"^2\d{3}-"))
    expect(newest.locator("mark")).to_have_text(["creme", "planner"])
    expect(oldest.locator("mark")).to_have_text(["Crème", "planning"])
    expect(dialog.get_by_role("status")).to_have_text("2 messages found.")

    # Markup in a message is text
    box.fill("onerror")
    expect(results(alice)).to_have_count(1)
    expect(results(alice).first.locator(".search-result-text")).to_contain_text(
        "<img src=x onerror=alert(1)> plan"
    )
    assert alice.locator(".search-result img").count() == 0

    # The keyboard walks the results; Escape closes and gives focus back
    box.fill("plan")
    expect(results(alice)).to_have_count(3)
    box.press("ArrowDown")
    expect(results(alice).nth(0)).to_be_focused()
    alice.keyboard.press("ArrowDown")
    expect(results(alice).nth(1)).to_be_focused()
    alice.keyboard.press("ArrowUp")
    alice.keyboard.press("ArrowUp")
    expect(box).to_be_focused()
    alice.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(alice.locator("#history")).to_be_focused()


def test_ctrl_k_and_the_button_open_search_and_bad_queries_explain(page_for, live_server):
    bob = page_for("bob")
    seed_kitchen(bob, live_server, "bob", "Pantry")
    bob.get_by_label("Message", exact=True).focus()
    bob.keyboard.press("Control+k")
    dialog = search_dialog(bob)
    expect(dialog).to_be_visible()
    box = dialog.get_by_role("searchbox")
    box.fill('"*" -- ()')
    expect(dialog.get_by_role("alert")).to_have_text("Type a word to search for.")
    box.fill('NEAR(plan) AND "crème')
    expect(dialog.get_by_role("alert")).to_be_hidden()
    expect(results(bob)).to_have_count(0)
    expect(dialog.get_by_role("status")).to_have_text("No messages found.")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    bob.get_by_role("button", name="Search messages").click()
    expect(dialog).to_be_visible()
    expect(box).to_be_focused()


def test_search_on_a_phone(page_for, live_server):
    carol = page_for("carol", **PHONE)
    register(carol, "carol")
    create_channel(carol, "Kitchen2")
    chat_id = seed.channel_id(live_server, "Kitchen2")
    start = datetime.now(UTC) - timedelta(days=3)
    bodies = [f"phone search result number {n} " + "with a long tail " * 12 for n in range(30)]
    seed.add_messages(
        live_server, chat_id, seed.spread(["carol"], bodies, start, timedelta(hours=1))
    )
    carol.goto("/chats")
    carol.get_by_role("button", name="Search messages").click()
    dialog = search_dialog(carol)
    dialog.get_by_role("searchbox").fill("phone resul")
    expect(results(carol)).to_have_count(20)
    assert_fits_the_phone(carol, "the search dialog")
    dialog.get_by_role("button", name="More results").click()
    expect(results(carol)).to_have_count(30)
    expect(dialog.get_by_role("button", name="More results")).to_be_hidden()
    expect(results(carol).nth(20)).to_be_focused()
    dialog.get_by_role("button", name="Close").tap()
    chat_in_list(carol, "Kitchen2").tap()
    expect(carol.locator("#chat-title")).to_have_text("Kitchen2")
    carol.get_by_role("button", name="Search messages").tap()
    expect(dialog).to_be_visible()


def test_a_result_deep_in_a_long_history_opens_there_and_pages_both_ways(page_for, live_server):
    """Choosing a result opens its chat at that message, highlighted; scrolling up and down
    from there brings each neighbour once, up to both ends of the chat."""
    dana = page_for("dana")
    frames: list[str] = []
    dana.on("websocket", lambda ws: ws.on("framesent", lambda frame: frames.append(str(frame))))
    register(dana, "dana")
    create_channel(dana, "Archive")
    archive = seed.channel_id(live_server, "Archive")
    bodies = [f"Entry {n}" for n in range(LONG)]
    bodies[60] = "Entry 60: the needle in the haystack"
    start = datetime.now(UTC) - timedelta(days=3)
    ids = seed.add_messages(
        live_server, archive, seed.spread(["dana"], bodies, start, timedelta(minutes=10))
    )
    create_channel(dana, "Elsewhere")
    wait_until_chat_is_open(dana)

    dana.keyboard.press("Control+k")
    search_dialog(dana).get_by_role("searchbox").fill("needle hay")
    expect(results(dana)).to_have_count(1)
    results(dana).first.click()

    expect(search_dialog(dana)).to_be_hidden()
    expect(dana.locator("#chat-title")).to_have_text("Archive")
    hit = dana.locator("#messages .message.highlighted")
    expect(hit).to_have_count(1)
    expect(hit).to_have_attribute("data-id", str(ids[60]))
    expect(hit).to_be_in_viewport()
    expect(hit).to_be_focused()
    assert message_bodies(dana).count() < LONG, "only the page around the result"

    scroll_to_both_ends(dana)
    shown = [
        int(i)
        for i in dana.locator("#messages .message").evaluate_all(
            "nodes => nodes.map((node) => node.dataset.id)"
        )
    ]
    assert shown == ids, "every message once, in order"
    asked = [f for f in frames if "scrolled_to_the_top" in f or "scrolled_to_the_bottom" in f]
    before_ids = [f.split('"before_id":')[1].split("}")[0] for f in asked if "before_id" in f]
    after_ids = [f.split('"after_id":')[1].split("}")[0] for f in asked if "after_id" in f]
    assert before_ids and after_ids, "pages were asked both ways"
    assert len(set(before_ids)) == len(before_ids), "each older page asked once"
    assert len(set(after_ids)) == len(after_ids), "each newer page asked once"


LONG = 150


def scroll_to_both_ends(page: Page) -> None:
    """Scroll to the top, then the bottom, and again, until every message shows."""
    scroll_until_shown(page, LONG)
    expect(page.locator("#history-top-note")).to_have_text("This is the beginning of the chat.")
    expect(message_bodies(page)).to_have_count(LONG)
