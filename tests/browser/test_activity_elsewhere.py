"""Activity in other chats, in real browsers: on a phone showing a conversation, Back counts
the unread messages of the other chats and a short notice tells who wrote where (tapping it
opens that chat); a hidden page plays a sound for a new message unless the reader turned
it off."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE
from tests.browser.test_accessibility import assert_no_serious_violations
from tests.browser.test_look_and_feel import HIDE_TAB
from tests.browser.ui import (
    chat_in_list,
    join_channel,
    message_bodies,
    open_chat,
    register,
    send_message,
    start_direct_chat,
    wait_until_chat_is_open,
)

# Every play() of an audio element is noted instead of making a sound.
COUNT_PLAYS = """
    window.__plays = [];
    HTMLMediaElement.prototype.play = function () {
        window.__plays.push(this.src);
        return Promise.resolve();
    };
"""


def notice(page: Page):
    return page.locator(".elsewhere-notice")


def test_a_phone_shows_activity_in_other_chats_on_back_and_in_a_notice(page_for):
    """Bob reads General Talk on his phone. Alice's direct message puts 1 on Back (said in
    words to a screen reader) and a notice "New message from alice" that leaves his focus
    where it was; his own message elsewhere shows nothing. Tapping the notice opens the
    chat with alice; back in General Talk, a message there from alice says where it is."""
    bob = page_for("bob", **PHONE)
    alice = page_for("alice")
    register(bob, "bob")
    register(alice, "alice")
    start_direct_chat(alice, "bob")
    send_message(alice, "First hello")
    chat_in_list(bob, "General Talk").tap()
    wait_until_chat_is_open(bob)
    back = bob.get_by_role("button", name=re.compile("^Back"))
    expect(back).to_have_accessible_name(re.compile(r"Back\s*, 1 unread in other chats"))
    expect(back.locator(".back-count")).to_have_text("1")
    expect(notice(bob)).to_be_hidden()

    composer = bob.get_by_label("Message", exact=True)
    composer.fill("half a reply")
    composer.focus()
    send_message(alice, "Are you around?")
    expect(notice(bob)).to_have_text("New message from alice")
    expect(bob.get_by_role("status").filter(has=notice(bob))).to_have_count(1)
    expect(back.locator(".back-count")).to_have_text("2")
    expect(back).to_have_accessible_name(re.compile(r"Back\s*, 2 unread in other chats"))
    expect(composer).to_be_focused()

    notice(bob).tap()
    expect(bob.locator("#chat-title")).to_have_text("alice")
    expect(message_bodies(bob)).to_have_text(["First hello", "Are you around?"])
    expect(notice(bob)).to_be_hidden()
    expect(back.locator(".back-count")).to_be_hidden()
    expect(back).to_have_accessible_name(re.compile(r"^Back$"))

    bob.go_back()
    chat_in_list(bob, "General Talk").tap()
    wait_until_chat_is_open(bob)
    expect(bob.get_by_label("Message", exact=True)).to_have_value("half a reply")
    open_chat(alice, "General Talk")
    bobs_other_tab = bob.context.new_page()
    bobs_other_tab.goto("/chats")
    open_chat(bobs_other_tab, "alice")
    send_message(bobs_other_tab, "My own, from the other tab")
    expect(chat_in_list(alice, "bob").locator(".chat-preview")).to_contain_text("My own")
    send_message(alice, "Lunch, anyone?")
    expect(message_bodies(bob).last).to_have_text("Lunch, anyone?")
    expect(notice(bob)).to_be_hidden()
    expect(back.locator(".back-count")).to_be_hidden()

    create = alice.get_by_label("New channel")
    create.fill("Garden")
    alice.get_by_role("button", name="Create").click()
    expect(alice.locator("#chat-title")).to_have_text("Garden")
    bobs_other_tab.goto("/chats")
    join_channel(bobs_other_tab, "Garden")
    send_message(alice, "Tomatoes are ripe")
    expect(notice(bob)).to_have_text("New message from alice in Garden")
    expect(back.locator(".back-count")).to_have_text("1")
    assert_no_serious_violations(bob, "a phone's conversation with a notice and a count on Back")


def test_a_hidden_page_plays_a_sound_unless_turned_off(page_for):
    """Dan has not allowed notifications; the sound setting shows anyway, on. With his
    page hidden, bob's direct message plays the sound; one he sees does not. Turned off
    (kept across a reload), the next one plays nothing."""
    dan = page_for("dan")
    bob = page_for("bob2")
    dan.add_init_script(COUNT_PLAYS)
    register(dan, "dan")
    register(bob, "bob2")
    start_direct_chat(bob, "dan")
    wait_until_chat_is_open(dan)
    sound = dan.get_by_label("Play a sound for new messages")
    expect(sound).to_be_checked()

    send_message(bob, "Seen while you look")
    expect(chat_in_list(dan, "bob2").locator(".chat-preview")).to_contain_text("Seen while")
    dan.evaluate(HIDE_TAB, True)
    send_message(bob, "Are you there?")
    dan.wait_for_function("() => window.__plays.length > 0")
    plays = dan.evaluate("window.__plays")
    assert len(plays) == 1
    assert plays[0].endswith("/static/sounds/notify.wav")

    dan.evaluate(HIDE_TAB, False)
    sound.uncheck()
    dan.reload()
    wait_until_chat_is_open(dan)
    expect(dan.get_by_label("Play a sound for new messages")).not_to_be_checked()
    dan.evaluate(HIDE_TAB, True)
    send_message(bob, "Still there?")
    expect(chat_in_list(dan, "bob2").locator(".chat-preview")).to_contain_text("Still there?")
    assert dan.evaluate("window.__plays") == []
