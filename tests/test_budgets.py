"""Every Socket.IO event has a per-user budget, and a page of history is capped in bytes
as well as in messages."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

import db_commands
import events
import rate_limits
from settings import DEFAULTS
from tests.conftest import User, register

MAX_ID = 2**53 - 1
_names = (f"room{n}" for n in itertools.count())
_client_ids = (f"budget{n}" for n in itertools.count())


def fresh_channel(app: Flask | None) -> int:
    """A new channel that users 1 and 2 (the test's alice and bob) are members of."""
    assert app is not None, "this event needs the app"
    with app.app_context():
        chat_id = db_commands.insert_channel(next(_names), 1)
        db_commands.insert_channel_member(chat_id, 2)
    return chat_id


def own_message(user: User, chat_id: int) -> int:
    """A message of ``user`` in ``chat_id``, stored without spending their send budget."""
    with user.app.app_context():
        row, _ = db_commands.insert_message(chat_id, user.id, "mine", next(_client_ids))
    return row["id"]


def payloads(chat_id: int, app: Flask | None = None) -> dict[str, Any]:
    """A valid request of each event by a user, made afresh for each call."""
    return {
        "invite_to_channel": lambda _user: {"chat_id": chat_id, "user_id": 2},
        "leave_channel": lambda _user: {"chat_id": fresh_channel(app)},
        "update_channel": lambda _user: {"chat_id": chat_id, "topic": "A topic"},
        "list_members": lambda _user: {"chat_id": chat_id},
        "join_chat": lambda _user: {"chat_id": chat_id},
        "list_chats": lambda _user: {},
        "message_history_is_scrolled_to_the_top": lambda _user: {
            "chat_id": chat_id,
            "before_id": MAX_ID,
        },
        "message_history_is_scrolled_to_the_bottom": lambda _user: {
            "chat_id": chat_id,
            "after_id": 1,
        },
        "new_message_count_updated": lambda _user: {"chat_id": chat_id, "last_read_id": 1},
        "typing": lambda _user: {"chat_id": chat_id},
        "message_sent": lambda _user: {
            "chat_id": chat_id,
            "body": "hi",
            "client_id": next(_client_ids),
        },
        "create_channel": lambda _user: {"name": next(_names)},
        "join_channel": lambda _user: {"chat_id": chat_id},
        "search_messages": lambda _user: {"query": "read"},
        "message_edited": lambda user: {"message_id": own_message(user, chat_id), "body": "b"},
        "message_deleted": lambda user: {"message_id": own_message(user, chat_id)},
        "reaction_toggled": lambda user: {
            "message_id": own_message(user, chat_id),
            "emoji": "\U0001f44d",
        },
    }


def test_every_event_has_a_budget_named_in_the_settings():
    assert set(events.BUDGETS) == set(events.HANDLERS)
    for name, setting in events.BUDGETS.items():
        assert setting.endswith("_RATE_LIMIT") and isinstance(DEFAULTS[setting], str), name
    assert set(payloads(1)) == set(events.HANDLERS), "this test covers every event"


def test_an_event_without_a_budget_cannot_be_registered():
    with pytest.raises(TypeError):
        events.event("sneaky")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="rate limit setting"):
        events.event("sneaky", "NO_SUCH_LIMIT")
    with pytest.raises(ValueError, match="rate limit setting"):
        events.event("sneaky", "MAX_REPLY_BYTES")  # a setting, but not a limit
    assert "sneaky" not in events.HANDLERS


@pytest.fixture
def users_of() -> Iterator[Any]:
    """``users_of(app, "alice", ...)``: people registered on an app of the test's own."""
    made: list[User] = []

    def make(app: Flask, *names: str) -> list[User]:
        for name in names:
            http = app.test_client()
            assert register(http, name).status_code == 303
            with http.session_transaction() as session:
                made.append(User(app, name, session["user_id"], http))
        return made[-len(names) :]

    yield make
    for user in made:
        for tab in user.tabs:
            if tab.is_connected():
                tab.disconnect()


@pytest.mark.parametrize("name", sorted(events.HANDLERS))
def test_each_event_answers_too_fast_past_its_budget(make_app, users_of, name):
    app = make_app(**{setting: "3 per minute" for setting in set(events.BUDGETS.values())})
    alice, bob = users_of(app, "alice", "bob")
    with app.app_context():
        db_commands.insert_message(1, bob.id, "one to read", "seed")
    request = payloads(1, app)[name]
    answers = [alice.call(name, request(alice)) for _ in range(4)]
    assert [a["ok"] for a in answers] == [True, True, True, False], answers
    assert answers[-1]["code"] == "rate_limited"
    assert answers[-1]["error"] == rate_limits.TOO_FAST
    assert 1 <= answers[-1]["retry_after"] <= 60
    assert bob.call(name, request(bob))["ok"], "another user's budget is their own"


def test_both_paging_events_share_one_budget(make_app, users_of):
    app = make_app(PAGING_RATE_LIMIT="3 per minute")
    (alice,) = users_of(app, "alice")
    up = {"chat_id": 1, "before_id": MAX_ID}
    down = {"chat_id": 1, "after_id": 1}
    answers = [
        alice.call("message_history_is_scrolled_to_the_top", up),
        alice.call("message_history_is_scrolled_to_the_bottom", down),
        alice.call("message_history_is_scrolled_to_the_top", up),
        alice.call("message_history_is_scrolled_to_the_bottom", down),
    ]
    assert [a["ok"] for a in answers] == [True, True, True, False]


def test_normal_use_stays_within_the_default_budgets(app, alice, bob):
    """Within one window of every budget: five tabs reconnecting at once, reading a busy
    chat as its messages arrive, fast scrolling through 1,000 messages, opening chats."""
    chat = alice.direct_chat_with(bob)
    with app.app_context():
        old = [
            db_commands.insert_message(chat, alice.id, f"old {n}", f"old-{n}")[0]["id"]
            for n in range(1000)
        ]
    tabs = [bob.tab] + [bob.open_tab() for _ in range(4)]
    for tab in tabs:  # every tab's catch-up after a reconnect
        assert bob.call("list_chats", {}, tab=tab)["ok"]
        assert bob.call("join_chat", {"chat_id": chat, "after_id": 1}, tab=tab)["ok"]
    bob.call("new_message_count_updated", {"chat_id": chat, "last_read_id": old[-1]})
    page = bob.call("join_chat", {"chat_id": chat})
    pages = 0
    while page["has_more_before"]:  # scrolling to the top of 1,000 messages, page by page
        oldest = page["messages"][0]["id"]
        page = bob.call(
            "message_history_is_scrolled_to_the_top", {"chat_id": chat, "before_id": oldest}
        )
        assert page["ok"], page
        pages += 1
    assert pages == 98
    for n in range(20):  # messages arrive in two chats and each is read as it comes
        message = alice.send(chat, f"new {n}")
        ack = bob.call(
            "new_message_count_updated", {"chat_id": chat, "last_read_id": message["id"]}
        )
        assert ack["ok"], ack
        assert bob.call("new_message_count_updated", {"chat_id": 1, "last_read_id": 1})["ok"]
    for _ in range(15):  # going through chats, back and forth
        assert bob.call("join_chat", {"chat_id": 1})["ok"]
        assert bob.call("join_chat", {"chat_id": chat})["ok"]
    for n in range(5):
        assert alice.call("create_channel", {"name": f"team {n}"})["ok"]
    for channel in alice.call("list_chats")["channels"]:
        assert bob.call("join_channel", {"chat_id": channel["id"]})["ok"]


# -- a page capped in bytes ---------------------------------------------------------------


def encoded_size(messages: list[dict[str, Any]]) -> int:
    """The bytes a list of messages takes in a Socket.IO packet (compact JSON, UTF-8)."""
    return len(json.dumps(messages, separators=(",", ":"), ensure_ascii=False).encode())


def seed_sizes(app, chat_id: int, sender_id: int, count: int) -> list[int]:
    """Messages of very different sizes (emoji are 4 bytes of JSON each); their ids."""
    with app.app_context():
        return [
            db_commands.insert_message(
                chat_id, sender_id, f"{n} " + "\N{GRINNING FACE}" * (n * 397 % 4000), f"big-{n}"
            )[0]["id"]
            for n in range(count)
        ]


CAP = 100_000


@pytest.fixture
def capped(make_app: Any) -> Flask:
    return make_app(MAX_REPLY_BYTES=CAP)


def test_scrolling_up_through_big_messages_gets_each_once_in_pages_under_the_cap(capped, users_of):
    alice, bob = users_of(capped, "alice", "bob")
    chat = alice.direct_chat_with(bob)
    ids = seed_sizes(capped, chat, alice.id, 60)
    bob.call("new_message_count_updated", {"chat_id": chat, "last_read_id": ids[-1]})
    opened = bob.call("join_chat", {"chat_id": chat})
    page = opened["messages"]
    assert encoded_size(page) <= CAP
    assert 1 <= len(page) < capped.config["MESSAGES_ON_OPEN"], "the newest page was cut"
    assert [m["id"] for m in page] == ids[-len(page) :], "the newest kept, nearest the bottom"
    assert opened["has_more_before"] is True and opened["has_more_after"] is False
    shown = [m["id"] for m in page]
    more = True
    while more:
        older = bob.call(
            "message_history_is_scrolled_to_the_top", {"chat_id": chat, "before_id": shown[0]}
        )
        assert older["ok"] and older["messages"], older
        assert encoded_size(older["messages"]) <= CAP
        shown = [m["id"] for m in older["messages"]] + shown
        more = older["has_more_before"]
    assert shown == ids, "every message exactly once, in order"


def test_reading_down_from_the_first_unread_gets_each_once_in_pages_under_the_cap(capped, users_of):
    alice, bob = users_of(capped, "alice", "bob")
    chat = alice.direct_chat_with(bob)
    ids = seed_sizes(capped, chat, alice.id, 60)  # all unread: join_chat starts at the first
    opened = bob.call("join_chat", {"chat_id": chat})
    assert opened["first_unread_id"] == ids[0]
    shown = [m["id"] for m in opened["messages"]]
    assert shown == ids[: len(shown)] and len(shown) < len(ids), "cut after the first unread"
    assert encoded_size(opened["messages"]) <= CAP
    assert opened["has_more_after"] is True
    more = True
    while more:
        newer = bob.call(
            "message_history_is_scrolled_to_the_bottom", {"chat_id": chat, "after_id": shown[-1]}
        )
        assert newer["ok"] and newer["messages"], newer
        assert encoded_size(newer["messages"]) <= CAP
        shown += [m["id"] for m in newer["messages"]]
        more = newer["has_more_after"]
    assert shown == ids
    catch_up = bob.call("join_chat", {"chat_id": chat, "after_id": ids[9]})
    assert [m["id"] for m in catch_up["messages"]] == ids[10 : 10 + len(catch_up["messages"])]
    assert encoded_size(catch_up["messages"]) <= CAP and catch_up["has_more_after"] is True


def test_a_message_bigger_than_the_cap_still_comes_alone(make_app, users_of):
    app = make_app(MAX_REPLY_BYTES=1000)
    alice, bob = users_of(app, "alice", "bob")
    chat = alice.direct_chat_with(bob)
    ids = seed_sizes(app, chat, alice.id, 5)[1:]  # each over 1,500 bytes
    shown: list[int] = []
    after = {"chat_id": chat, "after_id": ids[0] - 1}  # a small message's id
    while True:
        page = bob.call("message_history_is_scrolled_to_the_bottom", after)
        shown += [m["id"] for m in page["messages"]]
        if not page["has_more_after"]:
            break
        assert len(page["messages"]) == 1
        after["after_id"] = shown[-1]
    assert shown == ids


def test_small_pages_are_not_cut(app, alice, bob):
    chat = alice.direct_chat_with(bob)
    with app.app_context():
        ids = [
            db_commands.insert_message(chat, alice.id, f"m{n}", f"m{n}")[0]["id"]
            for n in range(601)
        ]
    page = bob.call(
        "message_history_is_scrolled_to_the_bottom", {"chat_id": chat, "after_id": ids[0]}
    )
    assert [m["id"] for m in page["messages"]] == ids[1:501], "500 small ones fit"
    assert page["has_more_after"] is True
