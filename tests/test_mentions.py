"""Mentions: ``@username`` of a chat's members, stored, on the wire, and counted unread."""

from __future__ import annotations

import io

import db_commands
from mentions import MAX_MENTIONS_PER_MESSAGE, mentioned_names
from tests.conftest import query, received


def general_id(user) -> int:
    return next(c["id"] for c in user.call("list_chats")["chats"] if c["kind"] == "channel")


def chat_of(user, chat_id: int) -> dict:
    return next(c for c in user.call("list_chats")["chats"] if c["id"] == chat_id)


def test_names_are_words_of_their_own_outside_code():
    body = (
        "@Bob and (@carol), mail alice@example.org, @@dave, thanks @erin.\n"
        "`@frank` in code\n```\n@grace in a block\n```\n@heidi after it"
    )
    assert mentioned_names(body) == ["bob", "carol", "erin", "heidi"]


def test_a_body_without_at_names_nobody():
    assert mentioned_names("plain words, nothing to look up") == []


def test_no_more_names_than_the_limit_are_looked_up():
    body = " ".join(f"@user{n:03d}" for n in range(MAX_MENTIONS_PER_MESSAGE + 10))
    assert len(mentioned_names(body)) == MAX_MENTIONS_PER_MESSAGE


def test_a_mention_is_stored_and_on_the_wire_for_every_member(app, alice, bob, carol):
    general = general_id(alice)
    for user in (bob, carol):
        user.call("join_chat", {"chat_id": general})
        user.tab.get_received()
    message = alice.send(general, "Hi @BOB, can you look? cc @carol")
    assert message["mentions"] == [bob.id, carol.id]
    live = received(bob.tab, "message_received_from_current_chat")
    assert live[0]["message"]["mentions"] == [bob.id, carol.id]
    rows = query(
        app, "SELECT user_id, chat_id FROM mentions WHERE message_id = ?", (message["id"],)
    )
    assert sorted((r["user_id"], r["chat_id"]) for r in rows) == [
        (bob.id, general),
        (carol.id, general),
    ]
    page = bob.call("join_chat", {"chat_id": general})["messages"]
    assert page[-1]["mentions"] == [bob.id, carol.id]


def test_only_members_of_the_chat_are_mentions(app, alice, bob, carol):
    chat = alice.direct_chat_with(bob)
    message = alice.send(chat, "@bob did @carol say anything? @nobody @alice")
    assert message["mentions"] == [bob.id]
    assert query(app, "SELECT user_id FROM mentions WHERE message_id = ?", (message["id"],)) == [
        {"user_id": bob.id}
    ]


def test_a_plain_message_mentions_nobody(app, alice, bob):
    chat = alice.direct_chat_with(bob)
    message = alice.send(chat, "no names here, bob")
    assert message["mentions"] == []
    assert query(app, "SELECT COUNT(*) AS n FROM mentions") == [{"n": 0}]


def test_a_caption_can_mention(alice, bob):
    chat = alice.direct_chat_with(bob)
    response = alice.http.post(
        "/upload",
        data={
            "chat_id": chat,
            "client_id": "up1",
            "caption": "for @bob",
            "file": (io.BytesIO(b"notes"), "notes.txt"),
        },
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 201, response.data
    assert response.get_json()["message"]["mentions"] == [bob.id]


def test_mention_count_is_in_the_chat_objects_and_falls_as_the_reader_reads(alice, bob):
    chat = alice.direct_chat_with(bob)
    first = alice.send(chat, "@bob one")
    alice.send(chat, "no mention")
    third = alice.send(chat, "@bob three")
    listed = chat_of(bob, chat)
    assert (listed["unread_count"], listed["mention_count"]) == (3, 2)
    assert listed["last_message"]["mentions"] == [bob.id]
    other_tab = bob.open_tab()
    opened = bob.call("join_chat", {"chat_id": chat})
    assert opened["chat"]["mention_count"] == 2
    other_tab.get_received()
    ack = bob.call("new_message_count_updated", {"chat_id": chat, "last_read_id": first["id"]})
    assert ack == {"ok": True, "unread_count": 2, "mention_count": 1, "last_read_id": first["id"]}
    assert received(other_tab, "new_message_count_updated") == [
        {"chat_id": chat, "unread_count": 2, "mention_count": 1, "last_read_id": first["id"]}
    ]
    bob.call("new_message_count_updated", {"chat_id": chat, "last_read_id": third["id"]})
    assert chat_of(bob, chat)["mention_count"] == 0
    assert chat_of(alice, chat)["mention_count"] == 0


def test_the_first_direct_message_announces_its_mention(alice, bob):
    bob.tab.get_received()
    chat = alice.direct_chat_with(bob)
    bob.tab.get_received()
    alice.send(chat, "@bob hello")
    (announced,) = received(bob.tab, "new_user_sent_message")
    assert announced["chat"]["mention_count"] == 1


def test_replacing_mentions_after_an_edit_and_deleting_the_message(app, alice, bob, carol):
    general = general_id(alice)
    message = alice.send(general, "@bob look")
    with app.app_context():
        assert db_commands.replace_mentions(message["id"], general, "@carol instead") == str(
            carol.id
        )
    assert chat_of(bob, general)["mention_count"] == 0
    assert chat_of(carol, general)["mention_count"] == 1
    assert bob.call("join_chat", {"chat_id": general})["messages"][-1]["mentions"] == [carol.id]
    with app.app_context():
        db_commands.get_db().execute("DELETE FROM messages WHERE id = ?", (message["id"],))
    assert query(app, "SELECT COUNT(*) AS n FROM mentions") == [{"n": 0}]


def test_an_edit_changes_whom_the_message_mentions_and_a_deletion_says_whom(alice, bob, carol):
    general = general_id(alice)
    for user in (bob, carol):
        user.call("join_chat", {"chat_id": general})
    message = alice.send(general, "a word for everyone")
    edit = {"message_id": message["id"], "body": "a word for @carol"}
    bob.tab.get_received()
    edited = alice.call("message_edited", edit)
    assert edited["ok"] and edited["message"]["mentions"] == [carol.id]
    [updated] = received(bob.tab, "message_updated")
    assert updated["message"]["mentions"] == [carol.id]
    assert (chat_of(bob, general)["mention_count"], chat_of(carol, general)["mention_count"]) == (
        0,
        1,
    )
    edit["body"] = "a word for nobody in particular"
    assert alice.call("message_edited", edit)["message"]["mentions"] == []
    assert chat_of(carol, general)["mention_count"] == 0
    mention = alice.send(general, "@bob, yours")
    bob.tab.get_received()
    assert alice.call("message_deleted", {"message_id": mention["id"]})["ok"]
    [removed] = received(bob.tab, "message_removed")
    assert removed["mentions"] == [bob.id]
    assert chat_of(bob, general)["mention_count"] == 0


def test_members_are_listed_for_members_only(alice, bob, carol):
    chat = alice.direct_chat_with(bob)
    answer = alice.call("list_members", {"chat_id": chat})
    assert answer["ok"]
    assert [(m["id"], m["username"]) for m in answer["members"]] == [
        (alice.id, "alice"),
        (bob.id, "bob"),
    ]
    assert carol.call("list_members", {"chat_id": chat}) == {
        "ok": False,
        "error": "This chat does not exist or you are not in it.",
    }
    assert carol.call("list_members", {"chat_id": "x"})["ok"] is False
