"""Unread counts and the read pointer."""

from __future__ import annotations

from tests.conftest import received
from tests.test_history import seed


def test_unread_counts_are_in_the_list_right_after_login(app, alice, bob):
    general = alice.call("list_chats")["chats"][0]["id"]
    with_bob = bob.direct_chat_with(alice)
    seed(app, with_bob, bob.id, 3, "direct")
    seed(app, general, bob.id, 2, "channel")
    alice.http.post("/logout")
    alice.http.post("/login", data={"username": "alice", "password": "correct horse battery"})
    tab = alice.open_tab()
    counts = {c["id"]: c["unread_count"] for c in alice.call("list_chats", tab=tab)["chats"]}
    assert counts == {with_bob: 3, general: 2}


def test_reading_moves_the_pointer_forward_only_across_two_tabs(app, alice, bob):
    chat = bob.direct_chat_with(alice)
    ids = seed(app, chat, bob.id, 10)
    first, second = alice.open_tab(), alice.open_tab()
    ack = alice.call(
        "new_message_count_updated", {"chat_id": chat, "last_read_id": ids[7]}, tab=first
    )
    assert ack == {"ok": True, "unread_count": 2, "mention_count": 0, "last_read_id": ids[7]}
    assert received(second, "new_message_count_updated") == [
        {"chat_id": chat, "unread_count": 2, "mention_count": 0, "last_read_id": ids[7]}
    ]
    stale = alice.call(
        "new_message_count_updated", {"chat_id": chat, "last_read_id": ids[2]}, tab=second
    )
    assert stale["unread_count"] == 2
    assert stale["last_read_id"] == ids[7]


def test_the_pointer_never_passes_the_newest_message(app, alice, bob):
    chat = bob.direct_chat_with(alice)
    ids = seed(app, chat, bob.id, 3)
    ack = alice.call("new_message_count_updated", {"chat_id": chat, "last_read_id": 10**12})
    assert ack["last_read_id"] == ids[-1]
    later = seed(app, chat, bob.id, 2, "later")
    assert alice.call("join_chat", {"chat_id": chat})["first_unread_id"] == later[0]


def test_unread_counts_up_with_each_message_from_others(alice, bob):
    chat = bob.direct_chat_with(alice)
    for n in range(4):
        bob.send(chat, f"ping {n}")
    alice.send(chat, "pong")
    assert {c["id"]: c["unread_count"] for c in alice.call("list_chats")["chats"]}[chat] == 4
    assert {c["id"]: c["unread_count"] for c in bob.call("list_chats")["chats"]}[chat] == 1
