"""join_chat with around_id: the page around one message (a reply's original, a search
result), paged both ways from there with the ordinary keyset pages."""

from __future__ import annotations

import pytest

from tests.test_history import seed


@pytest.fixture
def chat(alice, bob):
    return alice.direct_chat_with(bob)


def ids_of(messages):
    return [m["id"] for m in messages]


def test_around_shows_the_message_between_its_neighbours(app, alice, bob, chat):
    """The page holds the message with older ones before it and newer ones after it."""
    ids = seed(app, chat, alice.id, 100)
    target = ids[50]
    ack = bob.call("join_chat", {"chat_id": chat, "around_id": target})
    assert ack["ok"], ack
    page = ids_of(ack["messages"])
    assert target in page
    assert page == ids[ids.index(page[0]) : ids.index(page[-1]) + 1]
    assert page[0] < target < page[-1]
    assert len(page) == app.config["MESSAGES_ON_OPEN"]
    assert ack["has_more_before"] is True
    assert ack["has_more_after"] is True


def test_paging_both_ways_from_around_shows_every_message_once(app, alice, bob, chat):
    """From the page around a message, scrolling up and down reaches both ends of the chat
    and shows each message exactly once."""
    ids = seed(app, chat, alice.id, 75)
    ack = bob.call("join_chat", {"chat_id": chat, "around_id": ids[30]})
    seen = ids_of(ack["messages"])
    more_before, more_after = ack["has_more_before"], ack["has_more_after"]
    while more_before:
        older = bob.call(
            "message_history_is_scrolled_to_the_top", {"chat_id": chat, "before_id": seen[0]}
        )
        seen = ids_of(older["messages"]) + seen
        more_before = older["has_more_before"]
    while more_after:
        newer = bob.call(
            "message_history_is_scrolled_to_the_bottom", {"chat_id": chat, "after_id": seen[-1]}
        )
        seen += ids_of(newer["messages"])
        more_after = newer["has_more_after"]
    assert seen == ids


def test_around_the_first_and_the_last_message(app, alice, bob, chat):
    """Near either end, the page says there is nothing more on that side."""
    ids = seed(app, chat, alice.id, 40)
    first = bob.call("join_chat", {"chat_id": chat, "around_id": ids[0]})
    assert ids_of(first["messages"])[0] == ids[0]
    assert first["has_more_before"] is False
    assert first["has_more_after"] is True
    last = bob.call("join_chat", {"chat_id": chat, "around_id": ids[-1]})
    assert ids_of(last["messages"])[-1] == ids[-1]
    assert last["has_more_before"] is True
    assert last["has_more_after"] is False


def test_around_keeps_the_unread_marks(app, alice, bob, chat):
    """Opening around a message still tells the reader how much is unread."""
    ids = seed(app, chat, alice.id, 30)
    ack = bob.call("join_chat", {"chat_id": chat, "around_id": ids[3]})
    assert ack["unread_count"] == 30
    assert ack["first_unread_id"] == ids[0]


def test_around_a_message_of_another_chat_is_refused(app, alice, bob, carol, chat):
    """A message id from another chat (even one the reader is in) opens nothing."""
    other = alice.direct_chat_with(carol)
    elsewhere = seed(app, other, alice.id, 3, "x")
    ack = bob.call("join_chat", {"chat_id": chat, "around_id": elsewhere[0]})
    assert ack == {"ok": False, "error": "This message does not exist or is not in this chat."}
    mine = alice.call("join_chat", {"chat_id": chat, "around_id": elsewhere[0]})
    assert mine["ok"] is False


def test_a_stranger_cannot_open_around_a_message(app, alice, bob, carol, chat):
    """Someone outside the chat learns nothing, whether the message exists or not."""
    ids = seed(app, chat, alice.id, 3)
    ack = carol.call("join_chat", {"chat_id": chat, "around_id": ids[1]})
    assert ack == {"ok": False, "error": "This chat does not exist or you are not in it."}


@pytest.mark.parametrize("around_id", ["5", 1.5, True, -1, 0, [1], 2**60])
def test_a_malformed_around_id_is_refused(app, alice, bob, chat, around_id):
    seed(app, chat, alice.id, 3)
    ack = bob.call("join_chat", {"chat_id": chat, "around_id": around_id})
    assert ack["ok"] is False
    assert ack["error"]


def test_around_and_after_together_are_refused(app, alice, bob, chat):
    ids = seed(app, chat, alice.id, 3)
    ack = bob.call("join_chat", {"chat_id": chat, "around_id": ids[1], "after_id": ids[0]})
    assert ack == {"ok": False, "error": "Ask for after_id or around_id, not both."}
