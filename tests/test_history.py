"""History paging: 20 on open, or from the first unread; 10 older on scroll;
pages cut by id so nothing repeats or hides when messages arrive mid-scroll."""

from __future__ import annotations

import pytest

import db_commands


def seed(app, chat_id: int, sender_id: int, count: int, prefix: str = "m") -> list[int]:
    """Store ``count`` messages straight through db_commands; return their ids."""
    with app.app_context():
        return [
            db_commands.insert_message(chat_id, sender_id, f"{prefix}{n}", f"{prefix}-{n}")[0]["id"]
            for n in range(count)
        ]


@pytest.fixture
def chat(alice, bob):
    return alice.direct_chat_with(bob)


def bodies(messages):
    return [m["body"] for m in messages]


def read_all(user, chat_id: int, ids: list[int]) -> None:
    user.call("new_message_count_updated", {"chat_id": chat_id, "last_read_id": ids[-1]})


def test_open_shows_the_newest_20_oldest_first(app, alice, bob, chat):
    ids = seed(app, chat, alice.id, 30)
    read_all(bob, chat, ids)
    ack = bob.call("join_chat", {"chat_id": chat})
    assert [m["id"] for m in ack["messages"]] == ids[-20:]
    assert ack["has_more_before"] is True
    assert ack["has_more_after"] is False


def test_open_with_few_unread_marks_the_first_unread(app, alice, bob, chat):
    read_all(bob, chat, seed(app, chat, alice.id, 10, "old"))
    unread = seed(app, chat, alice.id, 5, "new")
    ack = bob.call("join_chat", {"chat_id": chat})
    assert ack["unread_count"] == 5
    assert ack["first_unread_id"] == unread[0]
    assert len(ack["messages"]) == 15


def test_open_with_more_than_20_unread_starts_at_the_first_unread(app, alice, bob, chat):
    read_all(bob, chat, seed(app, chat, alice.id, 30, "old"))
    unread = seed(app, chat, alice.id, 45, "new")
    ack = bob.call("join_chat", {"chat_id": chat})
    assert ack["unread_count"] == 45
    assert ack["first_unread_id"] == unread[0]
    assert [m["id"] for m in ack["messages"]] == unread
    assert ack["has_more_before"] is True
    assert ack["has_more_after"] is False


def test_own_messages_are_never_unread(app, alice, bob, chat):
    seed(app, chat, bob.id, 25, "mine")
    ack = bob.call("join_chat", {"chat_id": chat})
    assert ack["unread_count"] == 0
    assert ack["first_unread_id"] is None
    assert len(ack["messages"]) == 20


def test_unread_past_the_cap_loads_the_rest_on_scroll_down(app, alice, bob, chat):
    app.config["MAX_MESSAGES_PER_FETCH"] = 50
    ids = seed(app, chat, alice.id, 120)
    ack = bob.call("join_chat", {"chat_id": chat})
    assert [m["id"] for m in ack["messages"]] == ids[:50]
    assert ack["has_more_after"] is True
    seen = [m["id"] for m in ack["messages"]]
    while ack.get("has_more_after", True):
        ack = bob.call(
            "message_history_is_scrolled_to_the_bottom", {"chat_id": chat, "after_id": seen[-1]}
        )
        seen += [m["id"] for m in ack["messages"]]
    assert seen == ids


def test_scroll_to_the_top_gives_the_10_older(app, alice, bob, chat):
    ids = seed(app, chat, alice.id, 35)
    read_all(bob, chat, ids)
    opened = bob.call("join_chat", {"chat_id": chat})
    page = bob.call(
        "message_history_is_scrolled_to_the_top",
        {"chat_id": chat, "before_id": opened["messages"][0]["id"]},
    )
    assert [m["id"] for m in page["messages"]] == ids[5:15]
    assert page["has_more_before"] is True
    last = bob.call(
        "message_history_is_scrolled_to_the_top", {"chat_id": chat, "before_id": ids[5]}
    )
    assert [m["id"] for m in last["messages"]] == ids[:5]
    assert last["has_more_before"] is False


def test_paging_45_messages_with_3_arriving_mid_scroll_shows_each_once_in_order(
    app, alice, bob, chat
):
    ids = seed(app, chat, alice.id, 45)
    read_all(bob, chat, ids)
    screen = bob.call("join_chat", {"chat_id": chat})["messages"]
    bob.tab.get_received()
    arrived = []
    has_more = True
    while has_more:
        arrived.append(alice.send(chat, f"live {len(arrived)}"))  # arrives while bob scrolls
        page = bob.call(
            "message_history_is_scrolled_to_the_top",
            {"chat_id": chat, "before_id": screen[0]["id"]},
        )
        screen = page["messages"] + screen
        has_more = page["has_more_before"]
    live = [
        e["args"][0]["message"]
        for e in bob.tab.get_received()
        if e["name"] == "message_received_from_current_chat"
    ]
    screen += live
    assert len(arrived) == 3
    assert [m["id"] for m in screen] == ids + [m["id"] for m in arrived]
    assert len({m["id"] for m in screen}) == 48


def test_catch_up_after_a_reconnect_returns_only_what_came_after(app, alice, bob, chat):
    first = seed(app, chat, alice.id, 5, "before")
    bob.call("join_chat", {"chat_id": chat})
    bob.tab.disconnect()
    later = seed(app, chat, alice.id, 4, "while away")
    tab = bob.open_tab()
    ack = bob.call("join_chat", {"chat_id": chat, "after_id": first[-1]}, tab=tab)
    assert [m["id"] for m in ack["messages"]] == later
    assert ack["has_more_after"] is False
    assert (
        bob.call("join_chat", {"chat_id": chat, "after_id": later[-1]}, tab=tab)["messages"] == []
    )


def test_an_empty_chat_opens_empty(bob, chat):
    ack = bob.call("join_chat", {"chat_id": chat})
    assert ack["messages"] == []
    assert (ack["has_more_before"], ack["has_more_after"], ack["unread_count"]) == (False, False, 0)


def test_history_keeps_order_by_id(app, alice, bob, chat):
    alice.send(chat, "one")
    bob.send(chat, "two")
    alice.send(chat, "three")
    assert bodies(bob.call("join_chat", {"chat_id": chat})["messages"]) == ["one", "two", "three"]
