"""Two people talk in a direct chat, each in their own browser, and see it happen live."""

from playwright.sync_api import expect

from tests.browser.ui import (
    chat_in_list,
    meet,
    message_bodies,
    message_senders,
    open_chat,
    send_message,
    unread_badge,
)


def test_alice_and_bob_exchange_a_direct_message_live(page_for):
    """Alice finds bob and writes to him; the chat appears in bob's list with an unread
    badge; he opens it, reads it and replies; alice sees the reply without reloading."""
    alice, bob = meet(page_for, "alice", "bob")
    expect(alice.locator("#chat-title")).to_have_text("bob")
    send_message(alice, "Hi bob, lunch at noon?")

    expect(chat_in_list(bob, "alice")).to_be_visible()
    expect(unread_badge(bob, "alice")).to_have_text("1")
    expect(unread_badge(bob, "alice")).to_be_visible()
    open_chat(bob, "alice")
    expect(message_bodies(bob)).to_have_text(["Hi bob, lunch at noon?"])
    expect(message_senders(bob)).to_have_text(["alice"])
    expect(unread_badge(bob, "alice")).to_be_hidden()

    alice.evaluate("window.pageNeverReloaded = true")
    send_message(bob, "Sure, see you there")
    expect(message_bodies(alice)).to_have_text(["Hi bob, lunch at noon?", "Sure, see you there"])
    expect(message_senders(alice)).to_have_text(["alice", "bob"])
    assert alice.evaluate("window.pageNeverReloaded") is True
    # Each page got the message once, through its own event or its own answer, and both
    # chat lists show it as the chat's last message.
    expect(chat_in_list(alice, "bob").locator(".chat-preview")).to_have_text("Sure, see you there")
    expect(chat_in_list(bob, "alice").locator(".chat-preview")).to_have_text(
        "You: Sure, see you there"
    )
    expect(unread_badge(alice, "bob")).to_be_hidden()


def test_messages_survive_a_reload(page_for):
    """After an exchange, dave reloads his page and finds the whole history, in order."""
    carol, dave = meet(page_for, "carol", "dave")
    send_message(carol, "First, from carol")
    open_chat(dave, "carol")
    send_message(dave, "Second, from dave")
    expect(message_bodies(carol)).to_have_text(["First, from carol", "Second, from dave"])
    send_message(carol, "Third, from carol")
    expect(message_bodies(dave)).to_have_text(
        ["First, from carol", "Second, from dave", "Third, from carol"]
    )

    dave.reload()

    expect(dave.locator("#chat-title")).to_have_text("carol")
    expect(message_bodies(dave)).to_have_text(
        ["First, from carol", "Second, from dave", "Third, from carol"]
    )
    expect(message_senders(dave)).to_have_text(["carol", "dave", "carol"])
