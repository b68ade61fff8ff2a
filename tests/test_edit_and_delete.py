"""Editing and deleting a message: sender only, every member socket follows live (the open
chat and the chat list), strangers learn nothing, a deletion leaves history, unread counts
and the chat list's preview, and takes its attachment's files with it."""

from __future__ import annotations

import pytest

import db_commands
from tests.conftest import query, received
from tests.test_attachments import PNG, stored_files, upload


def backdate(app, message_id: int, ms: int) -> None:
    """Make a message look ``ms`` milliseconds older."""
    with app.app_context():
        db_commands.get_db().execute(
            "UPDATE messages SET created_at = created_at - ? WHERE id = ?", (ms, message_id)
        )


@pytest.fixture
def sent(alice, bob, chat):
    """A message alice sent to bob, bob's tab having seen its arrival."""
    message = alice.send(chat, "helo bob")
    bob.tab.get_received()
    return message


def test_sender_edits_and_every_member_socket_follows(alice, bob, chat, sent):
    """bob's open chat and alice's other tab get message_updated; a tab of bob's without
    the chat open gets it too (for the chat list's preview)."""
    other_tab = alice.open_tab()
    bob_list_tab = bob.open_tab()
    ack = alice.call("message_edited", {"message_id": sent["id"], "body": "  hello bob "})
    assert ack["ok"], ack
    edited = ack["message"]
    assert edited["body"] == "hello bob"
    assert edited["edited_at"] >= sent["created_at"]
    assert edited["id"] == sent["id"]
    expected = {"chat_id": chat, "message": edited}
    assert received(bob.tab, "message_updated") == [expected]
    assert received(bob_list_tab, "message_updated") == [expected]
    assert received(other_tab, "message_updated") == [expected]
    assert received(alice.tab, "message_updated") == []  # the ack told it


def test_an_edit_shows_in_history_and_in_the_chat_list(alice, bob, chat, sent):
    alice.call("message_edited", {"message_id": sent["id"], "body": "hello bob"})
    page = bob.call("join_chat", {"chat_id": chat})
    assert [(m["body"], m["edited_at"] is not None) for m in page["messages"]] == [
        ("hello bob", True)
    ]
    chats = {c["id"]: c for c in bob.call("list_chats")["chats"]}
    assert chats[chat]["last_message"]["body"] == "hello bob"


def test_only_the_sender_edits(alice, bob, chat, sent):
    ack = bob.call("message_edited", {"message_id": sent["id"], "body": "hijacked"})
    assert ack == {"ok": False, "error": "You can only edit your own messages."}
    assert query(alice.app, "SELECT body FROM messages WHERE id = ?", (sent["id"],)) == [
        {"body": "helo bob"}
    ]


def test_a_stranger_can_neither_edit_nor_hear_an_edit(alice, bob, carol, chat, sent):
    carol.tab.get_received()
    ack = carol.call("message_edited", {"message_id": sent["id"], "body": "x"})
    assert ack == {
        "ok": False,
        "error": "This message does not exist or is not in a chat of yours.",
    }
    alice.call("message_edited", {"message_id": sent["id"], "body": "hello bob"})
    assert received(carol.tab) == []


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"message_id": None, "body": "x"}, "message_id must be a positive integer."),
        ({"message_id": "1", "body": "x"}, "message_id must be a positive integer."),
        ({"message_id": True, "body": "x"}, "message_id must be a positive integer."),
        (
            {"message_id": 10**9, "body": "x"},
            "This message does not exist or is not in a chat of yours.",
        ),
        ({"body": "   "}, "A message cannot be empty."),
        ({"body": 5}, "A message must be text."),
        ({"body": None}, "A message must be text."),
        ({"body": "x" * 4001}, "A message has at most 4000 characters."),
        ({"body": "a\x00b"}, "A message cannot hold NUL characters."),
    ],
)
def test_a_bad_edit_is_refused_and_changes_nothing(alice, bob, chat, sent, payload, error):
    payload = {"message_id": sent["id"], **payload}
    assert alice.call("message_edited", payload) == {"ok": False, "error": error}
    assert received(bob.tab) == []
    assert query(alice.app, "SELECT body, edited_at FROM messages WHERE id = ?", (sent["id"],)) == [
        {"body": "helo bob", "edited_at": None}
    ]


def test_a_payload_that_is_no_object_is_refused(alice, chat, sent):
    for event in ("message_edited", "message_deleted", "reaction_toggled"):
        ack = alice.call(event, ["not", "an", "object"])
        assert ack["ok"] is False and ack["error"]


def test_the_edit_window(app, alice, bob, chat, sent):
    """With EDIT_WINDOW_SECONDS set, a message older than that can no longer be edited
    (and can still be deleted); a newer one can."""
    app.config["EDIT_WINDOW_SECONDS"] = 900
    fresh = alice.send(chat, "just now")
    backdate(app, sent["id"], 901_000)
    ack = alice.call("message_edited", {"message_id": sent["id"], "body": "too late"})
    assert ack == {"ok": False, "error": "A message can be edited for 15 minutes after it is sent."}
    assert alice.call("message_edited", {"message_id": fresh["id"], "body": "fine"})["ok"]
    assert alice.call("message_deleted", {"message_id": sent["id"]}) == {"ok": True}


def test_by_default_an_old_message_can_be_edited(app, alice, bob, chat, sent):
    backdate(app, sent["id"], sent["created_at"])
    assert alice.call("message_edited", {"message_id": sent["id"], "body": "years later"})["ok"]


def test_a_caption_may_be_emptied_but_a_text_may_not(app, alice, bob, chat, sent):
    response = upload(alice, chat, "pic.png", PNG, caption="a picture")
    picture = response.get_json()["message"]
    ack = alice.call("message_edited", {"message_id": picture["id"], "body": "  "})
    assert ack["ok"], ack
    assert ack["message"]["body"] == ""
    assert ack["message"]["attachment"]["name"] == "pic.png"
    ack = alice.call("message_edited", {"message_id": sent["id"], "body": "  "})
    assert ack == {"ok": False, "error": "A message cannot be empty."}


def test_sender_deletes_and_every_member_socket_follows(alice, bob, chat, sent):
    """Every socket of the chat hears it, the deleting one too: its ack does not carry the
    chat's newest message, which its chat list needs."""
    other_tab = alice.open_tab()
    bob_list_tab = bob.open_tab()
    earlier_id = sent["id"]
    last = alice.send(chat, "oops, wrong chat")
    for tab in (bob.tab, bob_list_tab, other_tab, alice.tab):
        tab.get_received()
    assert alice.call("message_deleted", {"message_id": last["id"]}) == {"ok": True}
    for tab in (bob.tab, bob_list_tab, other_tab, alice.tab):
        [removed] = received(tab, "message_removed")
        assert removed["chat_id"] == chat
        assert removed["message_id"] == last["id"]
        assert removed["sender_id"] == alice.id
        assert removed["last_message"]["id"] == earlier_id
        assert removed["last_message"]["body"] == "helo bob"


def test_a_deleted_message_leaves_history_unread_counts_and_the_list(alice, bob, chat, sent):
    last = alice.send(chat, "oops")
    before = {c["id"]: c for c in bob.call("list_chats")["chats"]}[chat]
    assert before["unread_count"] == 2
    assert before["last_message"]["id"] == last["id"]
    alice.call("message_deleted", {"message_id": last["id"]})
    after = {c["id"]: c for c in bob.call("list_chats")["chats"]}[chat]
    assert after["unread_count"] == 1
    assert after["last_message_id"] == sent["id"]
    assert after["last_message"]["body"] == "helo bob"
    page = bob.call("join_chat", {"chat_id": chat})
    assert [m["id"] for m in page["messages"]] == [sent["id"]]
    assert query(alice.app, "SELECT id FROM messages WHERE id = ?", (last["id"],)) == []


def test_deleting_the_only_message_empties_the_preview(alice, bob, chat, sent):
    alice.call("message_deleted", {"message_id": sent["id"]})
    [removed] = received(bob.tab, "message_removed")
    assert removed["last_message"] is None
    after = {c["id"]: c for c in alice.call("list_chats")["chats"]}[chat]
    assert after["last_message"] is None
    assert after["unread_count"] == 0
    # Empty again, the direct chat is listed as before its first message: by its opener only.
    assert chat not in {c["id"] for c in bob.call("list_chats")["chats"]}


def test_only_the_sender_deletes(alice, bob, carol, chat, sent):
    assert bob.call("message_deleted", {"message_id": sent["id"]}) == {
        "ok": False,
        "error": "You can only delete your own messages.",
    }
    assert carol.call("message_deleted", {"message_id": sent["id"]}) == {
        "ok": False,
        "error": "This message does not exist or is not in a chat of yours.",
    }
    assert len(query(alice.app, "SELECT id FROM messages WHERE id = ?", (sent["id"],))) == 1


def test_a_stranger_hears_nothing_of_a_deletion(alice, bob, carol, chat, sent):
    carol.tab.get_received()
    alice.call("message_deleted", {"message_id": sent["id"]})
    assert received(carol.tab) == []


def test_deleting_twice_is_harmless(alice, bob, chat, sent):
    assert alice.call("message_deleted", {"message_id": sent["id"]}) == {"ok": True}
    ack = alice.call("message_deleted", {"message_id": sent["id"]})
    assert ack == {
        "ok": False,
        "error": "This message does not exist or is not in a chat of yours.",
    }


def test_a_deleted_attachment_takes_its_files(app, alice, bob, chat):
    """A picture's file and thumbnail leave the upload folder with its message, and its
    address answers 404."""
    response = upload(alice, chat, "pic.png", PNG)
    assert response.status_code == 201, response.get_json()
    message = response.get_json()["message"]
    assert len(stored_files(app)) == 2  # the picture and its thumbnail
    assert alice.http.get(message["attachment"]["url"]).status_code == 200
    assert alice.call("message_deleted", {"message_id": message["id"]}) == {"ok": True}
    assert stored_files(app) == []
    assert query(app, "SELECT id FROM attachments") == []
    assert alice.http.get(message["attachment"]["url"]).status_code == 404


def test_an_admin_deletes_anyones_message_in_a_chat_of_theirs(app, alice, bob, carol, chat):
    """The first account (alice) is the admin: she deletes bob's message, and it goes
    everywhere as the sender's own deletion does; an admin who is not in the chat cannot."""
    with app.app_context():
        assert db_commands.get_role(alice.id) == "admin"
        assert db_commands.get_role(bob.id) == "member"
        db_commands.update_role(carol.id, "admin")
    message = bob.send(chat, "regrettable")
    assert carol.call("message_deleted", {"message_id": message["id"]}) == {
        "ok": False,
        "error": "This message does not exist or is not in a chat of yours.",
    }
    bob.tab.get_received()
    assert alice.call("message_deleted", {"message_id": message["id"]}) == {"ok": True}
    [removed] = received(bob.tab, "message_removed")
    assert removed["message_id"] == message["id"]
    assert query(app, "SELECT id FROM messages WHERE id = ?", (message["id"],)) == []
