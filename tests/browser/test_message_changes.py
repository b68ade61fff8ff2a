"""Two people in real Chromium: a message edited, deleted, replied to (the quote jumps to
an original that is not loaded) and reacted to, each live on the other person's screen;
on a desktop and on a phone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Locator, Page, expect

from bench import seed
from tests.browser.conftest import PHONE
from tests.browser.test_accessibility import assert_no_serious_violations
from tests.browser.ui import (
    chat_in_list,
    message_bodies,
    open_chat,
    open_direct_chat_from,
    register,
    send_message,
    start_direct_chat,
    unread_badge,
    wait_until_chat_is_open,
)


def message(page: Page, text: str) -> Locator:
    """The message of the open chat whose text is ``text``."""
    return page.locator("#messages .message").filter(
        has=page.locator(".message-body", has_text=re.compile(f"^{re.escape(text)}$"))
    )


def open_actions(page: Page, text: str) -> Locator:
    """Open the actions of the message ``text``; return their panel."""
    target = message(page, text)
    target.hover()
    target.get_by_role("button", name="Message actions").click()
    panel = target.get_by_role("group", name="Message actions")
    expect(panel).to_be_visible()
    return panel


def test_edit_shows_live_with_edited_mark_and_preview(pair):
    alice, bob = pair("alice", "bob")
    send_message(alice, "See you at 5")
    send_message(alice, "helo bob")
    expect(message(bob, "helo bob")).to_be_visible()

    open_actions(alice, "helo bob").get_by_role("button", name="Edit").click()
    box = alice.get_by_role("textbox", name="Edit message")
    expect(box).to_be_focused()
    box.fill("hello bob")
    box.press("Enter")
    for page in (alice, bob):
        edited = message(page, "hello bob")
        expect(edited).to_be_visible()
        expect(edited.locator(".edited-mark")).to_have_text("(edited)")
        expect(message(page, "helo bob")).to_have_count(0)
    expect(chat_in_list(bob, "alice")).to_contain_text("hello bob")
    expect(alice.get_by_label("Message", exact=True)).to_be_focused()

    # Up in the empty text box edits one's last message; Escape leaves it as it was.
    alice.get_by_label("Message", exact=True).press("ArrowUp")
    box = alice.get_by_role("textbox", name="Edit message")
    expect(box).to_have_value("hello bob")
    box.fill("something else")
    box.press("Escape")
    expect(box).to_have_count(0)
    expect(message(alice, "hello bob")).to_be_visible()
    expect(message(bob, "hello bob")).to_be_visible()


def test_delete_is_live_and_the_preview_falls_back(pair):
    alice, bob = pair("cat", "dan")
    send_message(alice, "Meeting moved to Tuesday")
    send_message(alice, "password: hunter2")
    expect(message(bob, "password: hunter2")).to_be_visible()
    expect(chat_in_list(bob, "cat")).to_contain_text("password: hunter2")

    panel = open_actions(alice, "password: hunter2")
    panel.get_by_role("button", name="Delete").click()
    panel.get_by_role("button", name="Delete for everyone").click()
    for page in (alice, bob):
        expect(message(page, "password: hunter2")).to_have_count(0)
        expect(message(page, "Meeting moved to Tuesday")).to_be_visible()
    expect(chat_in_list(bob, "cat")).to_contain_text("Meeting moved to Tuesday")
    expect(chat_in_list(alice, "dan")).to_contain_text("Meeting moved to Tuesday")
    bob.reload()
    wait_until_chat_is_open(bob)
    expect(message_bodies(bob)).to_have_text(["Meeting moved to Tuesday"])

    # With another chat open, bob's list counts alice's messages unread; a deleted one
    # leaves the count and the preview.
    open_chat(bob, "General Talk")
    send_message(alice, "Lunch?")
    send_message(alice, "wrong chat, sorry")
    expect(chat_in_list(bob, "cat")).to_contain_text("wrong chat, sorry")
    expect(unread_badge(bob, "cat")).to_have_text(re.compile(r"^[12]$"))
    unread = int(unread_badge(bob, "cat").inner_text())
    panel = open_actions(alice, "wrong chat, sorry")
    panel.get_by_role("button", name="Delete").click()
    panel.get_by_role("button", name="Delete for everyone").click()
    expect(chat_in_list(bob, "cat")).to_contain_text("Lunch?")
    if unread == 2:
        expect(unread_badge(bob, "cat")).to_have_text("1")
    else:
        expect(unread_badge(bob, "cat")).to_be_hidden()


def test_reply_quotes_and_jumps_to_an_original_not_loaded(pair, live_server):
    alice, bob = pair("eve", "fay")
    send_message(bob, "Who brings the projector?")
    expect(message(alice, "Who brings the projector?")).to_be_visible()
    chat_id = int(re.search(r"chat=(\d+)", alice.url).group(1))
    start = datetime.now(UTC) - timedelta(minutes=30)
    filler = [f"Filler {n}" for n in range(60)]
    seed.add_messages(live_server, chat_id, seed.spread(["fay"], filler, start, timedelta(0)))

    open_actions(alice, "Who brings the projector?").get_by_role("button", name="Reply").click()
    expect(alice.locator(".reply-bar")).to_contain_text("Replying to fay")
    composer = alice.get_by_label("Message", exact=True)
    expect(composer).to_be_focused()
    composer.fill("I will")
    composer.press("Enter")
    expect(alice.locator(".reply-bar")).to_be_hidden()
    reply = message(bob, "I will")
    expect(reply.locator(".reply-quote")).to_contain_text("fay")
    expect(reply.locator(".reply-quote")).to_contain_text("Who brings the projector?")

    # bob opens the chat afresh: the original is 60 messages back, not loaded.
    bob.reload()
    wait_until_chat_is_open(bob)
    expect(message(bob, "I will")).to_be_visible()
    expect(message(bob, "Who brings the projector?")).to_have_count(0)
    message(bob, "I will").get_by_role("button", name=re.compile("In reply to fay")).click()
    original = message(bob, "Who brings the projector?")
    expect(original).to_be_in_viewport()
    expect(original).to_have_class(re.compile(r"\bhighlighted\b"))
    expect(original).to_be_focused()


def test_a_deleted_original_shows_as_deleted_in_the_reply(pair):
    alice, bob = pair("gus", "hal")
    send_message(bob, "Typo here")
    open_actions(alice, "Typo here").get_by_role("button", name="Reply").click()
    composer = alice.get_by_label("Message", exact=True)
    composer.fill("What typo?")
    composer.press("Enter")
    expect(message(bob, "What typo?").locator(".reply-quote")).to_contain_text("Typo here")
    panel = open_actions(bob, "Typo here")
    panel.get_by_role("button", name="Delete").click()
    panel.get_by_role("button", name="Delete for everyone").click()
    for page in (alice, bob):
        quote = message(page, "What typo?").locator(".reply-quote")
        expect(quote).to_have_text("Replying to a deleted message")


def test_react_live_with_who_reacted(pair):
    alice, bob = pair("ida", "joe")
    send_message(alice, "Release is out")
    panel = open_actions(bob, "Release is out")
    panel.get_by_role("button", name="React with 👍").click()
    for page in (alice, bob):
        chip = message(page, "Release is out").locator(".reaction")
        expect(chip).to_have_text("👍1")
    chip = message(alice, "Release is out").get_by_role("button", name=re.compile("^👍 1"))
    expect(chip).to_have_attribute("title", "joe reacted with 👍")
    expect(chip).to_have_attribute("aria-pressed", "false")
    chip.click()
    for page in (alice, bob):
        expect(message(page, "Release is out").locator(".reaction")).to_have_text("👍2")
    expect(message(alice, "Release is out").locator(".reaction")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(message(bob, "Release is out").locator(".reaction")).to_have_attribute(
        "title", "you and ida reacted with 👍"
    )

    # A second emoji from the picker, then bob takes his 👍 back.
    panel = open_actions(bob, "Release is out")
    panel.get_by_role("button", name="More reactions").click()
    panel.get_by_role("button", name="React with 🚀").click()
    message(bob, "Release is out").get_by_role("button", name=re.compile("^👍 2")).click()
    chips = message(alice, "Release is out").locator(".reaction")
    expect(chips).to_have_text(["👍1", "🚀1"])
    expect(chips.first).to_have_attribute("title", "you reacted with 👍")


def test_on_a_phone_react_long_press_reply_and_delete(page_for):
    """kim on a desktop, lou on a phone."""
    lou = page_for("lou", **PHONE)
    kim = page_for("kim")
    register(lou, "lou")
    register(kim, "kim")
    start_direct_chat(kim, "lou")
    open_direct_chat_from(lou, kim, "kim")
    for page in (kim, lou):
        wait_until_chat_is_open(page)
    send_message(kim, "Pizza tonight?")

    target = message(lou, "Pizza tonight?")
    expect(target).to_be_visible()
    actions = target.get_by_role("button", name="Message actions")
    expect(actions).to_be_visible()
    actions.tap()
    target.get_by_role("button", name="React with 🎉").tap()
    expect(message(kim, "Pizza tonight?").locator(".reaction")).to_have_text("🎉1")
    expect(message(kim, "Pizza tonight?").locator(".reaction")).to_have_attribute(
        "title", "lou reacted with 🎉"
    )
    # A long press on the phone shows who reacted.
    target.locator(".reaction").dispatch_event("contextmenu")
    expect(target.locator(".reaction-people")).to_have_text("you reacted with 🎉")

    actions.tap()
    target.get_by_role("button", name="Reply").tap()
    composer = lou.get_by_label("Message", exact=True)
    composer.fill("Yes!")
    composer.press("Enter")
    expect(message(kim, "Yes!").locator(".reply-quote")).to_contain_text("Pizza tonight?")

    mine = message(lou, "Yes!")
    mine.get_by_role("button", name="Message actions").tap()
    mine.get_by_role("button", name="Delete").tap()
    mine.get_by_role("button", name="Delete for everyone").tap()
    expect(message(kim, "Yes!")).to_have_count(0)
    expect(message(lou, "Yes!")).to_have_count(0)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_new_controls_pass_axe(page_for, scheme):
    """A reply's quote, "(edited)", reactions, the actions panel with its picker, the reply
    bar and a message being edited: axe-core finds nothing serious."""
    mia = page_for(f"mia-{scheme}", color_scheme=scheme)
    ned = page_for(f"ned-{scheme}", color_scheme=scheme)
    register(ned, f"ned-{scheme}")
    register(mia, f"mia-{scheme}")
    start_direct_chat(mia, f"ned-{scheme}")
    wait_until_chat_is_open(mia)
    send_message(mia, "First draft")
    panel = open_actions(mia, "First draft")
    panel.get_by_role("button", name="React with 😂").click()
    open_actions(mia, "First draft").get_by_role("button", name="Reply").click()
    composer = mia.get_by_label("Message", exact=True)
    composer.fill("Second thoughts")
    composer.press("Enter")
    expect(message(mia, "Second thoughts").locator(".reply-quote")).to_be_visible()
    composer.press("ArrowUp")
    box = mia.get_by_role("textbox", name="Edit message")
    box.fill("Second thoughts, edited")
    box.press("Enter")
    expect(message(mia, "Second thoughts, edited").locator(".edited-mark")).to_be_visible()

    open_actions(mia, "First draft").get_by_role("button", name="Reply").click()
    expect(mia.locator(".reply-bar")).to_be_visible()
    panel = open_actions(mia, "Second thoughts, edited")
    panel.get_by_role("button", name="More reactions").click()
    assert_no_serious_violations(mia, f"a chat with replies, reactions and actions ({scheme})")
    panel.get_by_role("button", name="Edit").click()
    assert_no_serious_violations(mia, f"a message being edited ({scheme})")
