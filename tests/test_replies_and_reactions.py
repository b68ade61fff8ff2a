"""Replies (a message naming the one it answers) and reactions (one emoji per toggle,
counted per emoji, live for those viewing the chat)."""

from __future__ import annotations

import pytest

from tests.conftest import received

THUMBS = "\U0001f44d"
HEART = "\u2764\ufe0f"


@pytest.fixture
def original(alice, bob, chat):
    message = alice.send(chat, "Lunch at   noon?\nOr later.")
    bob.tab.get_received()
    return message


def reply(user, chat_id, body, reply_to_id, client_id="r-1"):
    return user.call(
        "message_sent",
        {"chat_id": chat_id, "body": body, "client_id": client_id, "reply_to_id": reply_to_id},
    )


# -- replies ---------------------------------------------------------------------------


def test_a_reply_quotes_its_original_live_and_in_history(alice, bob, chat, original):
    ack = reply(bob, chat, "Noon works", original["id"])
    assert ack["ok"], ack
    quoted = {"id": original["id"], "sender_name": "alice", "excerpt": "Lunch at noon? Or later."}
    assert ack["message"]["reply_to"] == quoted
    [live] = received(alice.tab, "message_received_from_another_chat")
    assert live["message"]["reply_to"] == quoted
    page = alice.call("join_chat", {"chat_id": chat})
    assert page["messages"][-1]["reply_to"] == quoted
    assert page["messages"][0]["reply_to"] is None


def test_a_long_original_is_cut_in_the_excerpt(alice, bob, chat):
    long = alice.send(chat, "word " * 100)
    ack = reply(bob, chat, "tl;dr", long["id"])
    excerpt = ack["message"]["reply_to"]["excerpt"]
    assert len(excerpt) == 120
    assert excerpt.endswith("…")


def test_a_deleted_original_shows_as_deleted(alice, bob, chat, original):
    answer = reply(bob, chat, "Noon works", original["id"])["message"]
    alice.call("message_deleted", {"message_id": original["id"]})
    page = bob.call("join_chat", {"chat_id": chat})
    assert [m["id"] for m in page["messages"]] == [answer["id"]]
    assert page["messages"][0]["reply_to"] == {"id": original["id"], "deleted": True}


def test_a_reply_to_a_message_of_another_chat_is_refused(alice, bob, carol, chat):
    other = alice.direct_chat_with(carol)
    elsewhere = alice.send(other, "private")
    ack = reply(bob, chat, "peek", elsewhere["id"])
    assert ack == {
        "ok": False,
        "error": "The message you reply to does not exist or is not in this chat.",
    }
    assert alice.call("join_chat", {"chat_id": chat})["messages"] == []


@pytest.mark.parametrize("reply_to_id", ["1", 1.0, False, 0, -3, {}])
def test_a_malformed_reply_to_id_is_refused(alice, bob, chat, original, reply_to_id):
    ack = reply(bob, chat, "x", reply_to_id)
    assert ack == {"ok": False, "error": "reply_to_id must be a positive integer."}


def test_a_retried_reply_is_stored_once_with_its_quote(alice, bob, chat, original):
    first = reply(bob, chat, "Noon works", original["id"], client_id="same")["message"]
    again = reply(bob, chat, "Noon works", original["id"], client_id="same")["message"]
    assert again == first


# -- reactions -------------------------------------------------------------------------


def test_reactions_toggle_and_count_live_for_viewers(alice, bob, carol, chat, original):
    """bob's open chat and alice's other tab viewing it see each toggle; a tab without
    the chat open and a stranger get nothing."""
    alice.call("join_chat", {"chat_id": chat})
    viewing_tab = alice.open_tab()
    viewing_tab.emit("join_chat", {"chat_id": chat}, callback=True)
    list_tab = bob.open_tab()
    for tab in (alice.tab, viewing_tab, list_tab, carol.tab):
        tab.get_received()

    ack = bob.call("reaction_toggled", {"message_id": original["id"], "emoji": THUMBS})
    assert ack == {
        "ok": True,
        "reactions": [{"emoji": THUMBS, "user_ids": [bob.id], "user_names": ["bob"]}],
    }
    ack = alice.call("reaction_toggled", {"message_id": original["id"], "emoji": HEART})
    ack = alice.call("reaction_toggled", {"message_id": original["id"], "emoji": THUMBS})
    both = [
        {"emoji": THUMBS, "user_ids": [bob.id, alice.id], "user_names": ["bob", "alice"]},
        {"emoji": HEART, "user_ids": [alice.id], "user_names": ["alice"]},
    ]
    assert ack["reactions"] == both
    updates = received(viewing_tab, "reactions_updated")
    assert updates[-1] == {"chat_id": chat, "message_id": original["id"], "reactions": both}
    assert len(updates) == 3
    assert received(bob.tab, "reactions_updated")[-1]["reactions"] == both
    assert received(list_tab, "reactions_updated") == []
    assert received(carol.tab) == []

    # Toggling again takes it back (the order is that of the first reaction still
    # there); history carries the reactions too.
    ack = bob.call("reaction_toggled", {"message_id": original["id"], "emoji": THUMBS})
    left = [
        {"emoji": HEART, "user_ids": [alice.id], "user_names": ["alice"]},
        {"emoji": THUMBS, "user_ids": [alice.id], "user_names": ["alice"]},
    ]
    assert ack["reactions"] == left
    page = bob.call("join_chat", {"chat_id": chat})
    assert page["messages"][0]["reactions"] == left


def test_a_stranger_cannot_react(alice, bob, carol, chat, original):
    ack = carol.call("reaction_toggled", {"message_id": original["id"], "emoji": THUMBS})
    assert ack == {
        "ok": False,
        "error": "This message does not exist or is not in a chat of yours.",
    }
    assert received(bob.tab, "reactions_updated") == []


@pytest.mark.parametrize(
    "emoji",
    [
        "\U0001f44d\U0001f3fd",  # a skin tone
        "\U0001f469\u200d\U0001f4bb",  # woman technologist
        "\U0001f3f3\ufe0f\u200d\U0001f308",  # rainbow flag
        "\U0001f1eb\U0001f1f7",  # a country's flag
        "1\ufe0f\u20e3",  # a keycap
        "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",  # a family
        "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",  # England
    ],
)
def test_one_emoji_of_any_kind_is_a_reaction(alice, bob, chat, original, emoji):
    ack = bob.call("reaction_toggled", {"message_id": original["id"], "emoji": emoji})
    assert ack["ok"], ack
    assert ack["reactions"][0]["emoji"] == emoji


@pytest.mark.parametrize(
    ("emoji", "error"),
    [
        ("", "Choose an emoji to react with."),
        (None, "Choose an emoji to react with."),
        (7, "Choose an emoji to react with."),
        (["\U0001f44d"], "Choose an emoji to react with."),
        ("\U0001f44d\U0001f44d", "A reaction is one emoji."),
        ("lol", "A reaction is one emoji."),
        ("<script>", "A reaction is one emoji."),
        ("\U0001f44d ", "A reaction is one emoji."),
        ("\u200d", "A reaction is one emoji."),
        ("\U0001f1eb\U0001f1f7\U0001f1eb", "A reaction is one emoji."),
        ("\U0001f600" + "\ufe0f" * 40, "A reaction is one emoji."),
        ("\ud83d", "A reaction is one emoji."),
    ],
)
def test_anything_but_one_emoji_is_refused(alice, bob, chat, original, emoji, error):
    ack = bob.call("reaction_toggled", {"message_id": original["id"], "emoji": emoji})
    assert ack == {"ok": False, "error": error}
    assert alice.call("join_chat", {"chat_id": chat})["messages"][0]["reactions"] == []


def test_a_message_holds_a_bounded_number_of_different_reactions(alice, bob, chat, original):
    faces = [chr(0x1F600 + n) for n in range(21)]
    for face in faces[:20]:
        assert bob.call("reaction_toggled", {"message_id": original["id"], "emoji": face})["ok"]
    ack = alice.call("reaction_toggled", {"message_id": original["id"], "emoji": faces[20]})
    assert ack == {"ok": False, "error": "A message holds at most 20 different reactions."}
    # One already there can still be given.
    assert alice.call("reaction_toggled", {"message_id": original["id"], "emoji": faces[0]})["ok"]


def test_reactions_go_with_a_deleted_message(alice, bob, chat, original):
    bob.call("reaction_toggled", {"message_id": original["id"], "emoji": THUMBS})
    alice.call("message_deleted", {"message_id": original["id"]})
    ack = bob.call("reaction_toggled", {"message_id": original["id"], "emoji": THUMBS})
    assert ack["ok"] is False
