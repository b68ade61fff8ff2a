"""Who is online and who is typing, live in the header, the chat list and the conversation."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.ui import (
    chat_in_list,
    meet,
    open_direct_chat_from,
    wait_until_chat_is_open,
)


def test_online_count_dot_and_typing_follow_the_other_person(page_for):
    """Alice sees how many are online and a dot on bob's chat while he is there; she sees
    "bob is typing…" until his message arrives; when he leaves, the count drops and the
    dot goes."""
    alice, bob = meet(page_for, "alice", "bob")
    open_direct_chat_from(bob, alice, "alice")
    wait_until_chat_is_open(alice)
    wait_until_chat_is_open(bob)

    header = alice.locator("#status")
    expect(header).to_contain_text("2 online")
    bobs_chat = chat_in_list(alice, "bob")
    expect(bobs_chat.locator(".presence-dot")).to_be_visible()
    expect(bobs_chat).to_have_accessible_name(re.compile(r"bob\s*, online"))

    typing = alice.locator("#typing-indicator")
    bob.get_by_label("Message", exact=True).press_sequentially("On my w")
    expect(typing).to_have_text("bob is typing…")
    bob.get_by_label("Message", exact=True).press_sequentially("ay")
    bob.get_by_label("Message", exact=True).press("Enter")
    expect(alice.locator("#messages .message-body")).to_have_text(["On my way"])
    expect(typing).to_have_text("")

    bob.close()
    expect(header).to_contain_text("1 online")
    expect(bobs_chat.locator(".presence-dot")).to_be_hidden()
    expect(bobs_chat).not_to_have_accessible_name(re.compile("online"))
