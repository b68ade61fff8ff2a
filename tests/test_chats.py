"""Finding people, direct chats, channels and the chat list."""

from __future__ import annotations

import pytest

import attachments
import database
from helpers import MAX_CHANNEL_NAME_LENGTH, MAX_USERNAME_LENGTH
from tests.conftest import received


def test_find_answers_json_matches_prefix_first(alice, make_user):
    for name in ["bob", "bobby", "rebob", "carol"]:
        make_user(name)
    response = alice.http.get("/find?q=BOB", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert [u["username"] for u in response.get_json()] == ["bob", "bobby", "rebob"]
    assert set(response.get_json()[0]) == {"id", "username", "display_name"}


def test_find_with_an_empty_query_lists_people_by_name(alice, make_user):
    make_user("zed")
    make_user("bob")
    names = [u["username"] for u in alice.http.get("/find?q=").get_json()]
    assert names == ["alice", "bob", "zed"]


def test_find_treats_wildcards_as_text(alice, make_user):
    make_user("a_b")
    make_user("axb")
    assert [u["username"] for u in alice.http.get("/find?q=_").get_json()] == ["a_b"]


def test_find_page_renders(alice):
    page = alice.http.get("/find")
    assert page.status_code == 200
    assert b"find-query" in page.data
    assert f'maxlength="{MAX_USERNAME_LENGTH}"'.encode() in page.data


def test_a_search_longer_than_any_name_finds_nobody(alice, make_user):
    make_user("b" * MAX_USERNAME_LENGTH)
    found = alice.http.get("/find?q=" + "b" * MAX_USERNAME_LENGTH).get_json()
    assert [u["username"] for u in found] == ["b" * MAX_USERNAME_LENGTH]
    assert alice.http.get("/find?q=" + "b" * (MAX_USERNAME_LENGTH + 1)).get_json() == []


def test_the_chats_page_hands_the_client_the_servers_limits(app, alice):
    page = alice.http.get("/chats").get_data(as_text=True)
    assert f'data-max-message-length="{app.config["MAX_MESSAGE_LENGTH"]}"' in page
    assert f'data-max-upload-bytes="{app.config["MAX_UPLOAD_MB"] * 1024 * 1024}"' in page
    assert f'data-max-channel-name-length="{MAX_CHANNEL_NAME_LENGTH}"' in page
    assert f'maxlength="{MAX_CHANNEL_NAME_LENGTH}"' in page
    assert f'data-thumbnail-px="{attachments.THUMBNAIL_SIZE}"' in page


def test_add_opens_one_direct_chat_for_a_pair(alice, bob):
    first = alice.direct_chat_with(bob)
    assert bob.direct_chat_with(alice) == first
    assert alice.direct_chat_with(bob) == first
    chat = alice.call("join_chat", {"chat_id": first})["chat"]
    assert (chat["kind"], chat["name"], chat["partner_id"]) == ("direct", "bob", bob.id)


@pytest.mark.parametrize(
    ("user_id", "status"), [("999", 404), ("abc", 400), ("-1", 400), ("", 400), ("1.5", 400)]
)
def test_add_refuses_unknown_or_malformed_people(alice, user_id, status):
    response = alice.http.post("/add", data={"user_id": user_id})
    assert response.status_code == status
    assert b"apology" in response.data or b"<html" in response.data


def test_general_talk_exists_and_everyone_is_in_it(alice, bob):
    for user in (alice, bob):
        chats = user.call("list_chats")["chats"]
        assert [(c["kind"], c["name"]) for c in chats] == [("channel", "General Talk")]


def test_channel_created_appears_at_once_in_everyones_list(alice, bob):
    bob.tab.get_received()
    alice.tab.get_received()
    alice_other_tab = alice.open_tab()
    ack = alice.call("create_channel", {"name": "  Book   club "})
    assert ack["ok"], ack
    chat = ack["chat"]
    assert (chat["kind"], chat["name"]) == ("channel", "Book club")
    assert received(bob.tab, "channel_created") == [
        {"chat": {"id": chat["id"], "kind": "channel", "name": "Book club", "topic": ""}}
    ]
    assert received(alice_other_tab, "chat_added") == [{"chat": chat}]
    assert {"id": chat["id"], "name": "Book club"} in bob.call("list_chats")["channels"]
    assert chat["id"] in [c["id"] for c in alice.call("list_chats")["chats"]]


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "Please give the channel a name."),
        ("   ", "Please give the channel a name."),
        ("x" * 51, "A channel name has at most 50 characters."),
        ("general talk", "A channel with this name already exists."),
        (42, "A channel name must be text."),
        (None, "A channel name must be text."),
    ],
)
def test_channel_names_are_checked(alice, name, error):
    assert alice.call("create_channel", {"name": name}) == {"ok": False, "error": error}


def test_channel_name_of_fifty_characters_is_fine(alice):
    assert alice.call("create_channel", {"name": "x" * 50})["ok"]


def test_anyone_can_join_a_channel_and_then_receives_it(alice, bob):
    chat_id = alice.call("create_channel", {"name": "games"})["chat"]["id"]
    alice.send(chat_id, "before bob")
    joined = bob.call("join_channel", {"chat_id": chat_id})
    assert joined["ok"]
    assert joined["chat"]["unread_count"] == 0  # the past is not unread for a newcomer
    assert bob.call("join_channel", {"chat_id": chat_id})["ok"]  # twice is harmless
    bob.tab.get_received()
    alice.send(chat_id, "welcome bob")
    bodies = [e["message"]["body"] for e in received(bob.tab, "message_received_from_another_chat")]
    assert bodies == ["welcome bob"]
    assert {"id": chat_id, "name": "games"} not in bob.call("list_chats")["channels"]
    history = bob.call("join_chat", {"chat_id": chat_id})["messages"]
    assert [m["body"] for m in history] == ["before bob", "welcome bob"]


def test_a_direct_chat_cannot_be_joined_as_a_channel(alice, bob, carol):
    chat_id = alice.direct_chat_with(bob)
    assert carol.call("join_channel", {"chat_id": chat_id}) == {
        "ok": False,
        "error": "This channel does not exist.",
    }


def test_chat_list_is_newest_activity_first(alice, bob, carol):
    with_bob = alice.direct_chat_with(bob)
    with_carol = alice.direct_chat_with(carol)
    general = alice.call("list_chats")["chats"][-1]["id"]
    alice.send(with_bob, "1")
    alice.send(general, "2")
    alice.send(with_carol, "3")
    assert [c["id"] for c in alice.call("list_chats")["chats"]] == [with_carol, general, with_bob]
    bob.send(with_bob, "4")
    assert [c["id"] for c in alice.call("list_chats")["chats"]][0] == with_bob


def test_a_chat_joined_after_the_last_messages_stands_above_them(alice, bob, carol):
    """Joining counts as activity, placed by message ids: a chat created, opened or joined
    after a message stands above that message's chat, as the browser puts it on top."""
    general = alice.call("list_chats")["chats"][0]["id"]
    games = bob.call("create_channel", {"name": "games"})["chat"]["id"]
    bob.send(games, "an old message")
    alice.send(general, "1")
    empty = alice.call("create_channel", {"name": "empty"})["chat"]["id"]
    assert [c["id"] for c in alice.call("list_chats")["chats"]] == [empty, general]
    alice.send(general, "2")
    assert alice.call("join_channel", {"chat_id": games})["ok"]
    with_carol = alice.direct_chat_with(carol)
    order = [c["id"] for c in alice.call("list_chats")["chats"]]
    assert order == [with_carol, games, general, empty]
    alice.send(general, "3")
    order = [c["id"] for c in alice.call("list_chats")["chats"]]
    assert order == [general, with_carol, games, empty]


def test_an_upgraded_database_places_each_joining_among_the_messages(
    tmp_path, monkeypatch, database_url
):
    """Schema version 5 gives an empty chat's members the newest message older than their
    joining, and the members of a chat with messages 0 (its last message places it)."""
    dialect = database.dialect_of(database_url)
    sections = database.schema_versions(database.SCHEMA_FILES[dialect].read_text())
    version_4 = tmp_path / "version_4.sql"
    version_4.write_text("".join(f"-- version: {v}{sql}" for v, sql in sections if v <= 4))
    monkeypatch.setitem(database.SCHEMA_FILES, dialect, version_4)
    db = database.Database(database_url, str(tmp_path))
    assert db.init_schema() == 4
    conn = db.connect()
    for sql in [
        "INSERT INTO users (id, username, password_hash, created_at) VALUES (1, 'a', 'h', 0)",
        "INSERT INTO chats (id, kind, name, created_at) VALUES (2, 'channel', 'quiet', 0)",
        "INSERT INTO chat_members (chat_id, user_id, joined_at) VALUES (1, 1, 500)",
        "INSERT INTO chat_members (chat_id, user_id, joined_at) VALUES (2, 1, 3000)",
        "INSERT INTO messages (id, chat_id, sender_id, body, created_at, client_id)"
        " VALUES (7, 1, 1, 'x', 1000, 'a'), (9, 1, 1, 'y', 5000, 'b')",
    ]:
        conn.execute(sql)
    db.release(conn)
    monkeypatch.undo()
    try:
        assert db.init_schema() == sections[-1][0]
        conn = db.connect()
        rows = conn.all(
            "SELECT chat_id, joined_after_message_id FROM chat_members ORDER BY chat_id"
        )
        db.release(conn)
    finally:
        db.close()
    assert [(r["chat_id"], r["joined_after_message_id"]) for r in rows] == [(1, 0), (2, 7)]


def test_chats_page_opens_the_chat_opened_last_on_any_device(app, alice, bob):
    chat_id = alice.direct_chat_with(bob)
    alice.call("join_chat", {"chat_id": chat_id})
    other_device = app.test_client()
    other_device.post("/login", data={"username": "alice", "password": "correct horse battery"})
    page = other_device.get("/chats").get_data(as_text=True)
    assert f'data-open-chat-id="{chat_id}"' in page


def test_home_page_shows_the_unread_total(alice, bob):
    general = bob.call("list_chats")["chats"][0]["id"]
    bob.send(general, "hello all")
    assert alice.http.get("/").status_code == 200
