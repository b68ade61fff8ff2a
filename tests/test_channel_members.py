"""Private channels, invitations, leaving, topics and names, and the member list: who sees
and receives what, on every tab of the people concerned."""

from __future__ import annotations

import io

from PIL import Image

from tests.conftest import received


def private_channel(owner, name="Inner circle"):
    ack = owner.call("create_channel", {"name": name, "private": True, "topic": "Plans"})
    assert ack["ok"], ack
    return ack["chat"]


def test_non_members_never_see_or_receive_a_private_channel(alice, bob):
    bob.tab.get_received()
    chat = private_channel(alice)
    assert (chat["private"], chat["topic"]) == (True, "Plans")
    assert received(bob.tab) == []
    listed = bob.call("list_chats")
    assert chat["id"] not in [c["id"] for c in listed["chats"]]
    assert chat["id"] not in [c["id"] for c in listed["channels"]]
    for event, payload in [
        ("join_channel", {"chat_id": chat["id"]}),
        ("join_chat", {"chat_id": chat["id"]}),
        ("list_members", {"chat_id": chat["id"]}),
        ("update_channel", {"chat_id": chat["id"], "topic": "mine"}),
        ("invite_to_channel", {"chat_id": chat["id"], "user_id": bob.id}),
        ("message_sent", {"chat_id": chat["id"], "body": "hi", "client_id": "x1"}),
    ]:
        assert not bob.call(event, payload)["ok"], event
    alice.send(chat["id"], "secret")
    assert received(bob.tab) == []


def test_an_invitation_reaches_every_tab_and_joins_them_at_once(alice, bob, carol):
    chat = private_channel(alice)
    tabs = [bob.tab, bob.open_tab()]
    for tab in tabs:
        tab.get_received()
    ack = alice.call("invite_to_channel", {"chat_id": chat["id"], "user_id": bob.id})
    assert ack == {"ok": True}
    for tab in tabs:
        added = received(tab, "chat_added")
        assert [a["chat"]["id"] for a in added] == [chat["id"]]
        assert added[0]["chat"]["private"] is True
    message = alice.send(chat["id"], "welcome")
    for tab in tabs:  # no list_chats needed: the sockets are in the room already
        assert received(tab, "message_received_from_another_chat") == [
            {"chat_id": chat["id"], "message": message}
        ]
    assert received(carol.tab) == []
    again = alice.call("invite_to_channel", {"chat_id": chat["id"], "user_id": bob.id})
    assert again == {"ok": True}  # a retry: nothing changes, nobody is told twice
    assert received(bob.tab, "chat_added") == []
    members = alice.call("list_members", {"chat_id": chat["id"]})["members"]
    assert [(m["username"], m["role"], m["online"]) for m in members] == [
        ("alice", "admin", True),
        ("bob", "member", True),
    ]
    assert set(members[0]) == {"id", "username", "display_name", "avatar_url", "online", "role"}


def test_leaving_reaches_every_tab_and_stops_delivery(alice, bob):
    chat = alice.call("create_channel", {"name": "Book club"})["chat"]
    assert bob.call("join_channel", {"chat_id": chat["id"]})["ok"]
    tabs = [bob.tab, bob.open_tab()]
    bob.call("join_chat", {"chat_id": chat["id"]}, tab=tabs[0])  # one tab has it open
    for tab in tabs:
        tab.get_received()
    assert bob.call("leave_channel", {"chat_id": chat["id"]}, tab=tabs[1]) == {"ok": True}
    for tab in tabs:
        assert received(tab, "chat_left") == [{"chat_id": chat["id"]}]
    alice.send(chat["id"], "after he left")
    for tab in tabs:
        assert received(tab) == []
    listed = bob.call("list_chats")
    assert chat["id"] not in [c["id"] for c in listed["chats"]]
    assert chat["id"] in [c["id"] for c in listed["channels"]]  # public: he may come back
    assert not bob.call("join_chat", {"chat_id": chat["id"]})["ok"]


def test_the_default_channel_cannot_be_left_or_renamed(alice):
    general = alice.call("list_chats")["chats"][0]
    assert general["name"] == "General Talk"
    ack = alice.call("leave_channel", {"chat_id": general["id"]})
    assert ack == {"ok": False, "error": "Everyone stays in General Talk: it cannot be left."}
    ack = alice.call("update_channel", {"chat_id": general["id"], "name": "Other"})
    assert not ack["ok"]
    ack = alice.call("update_channel", {"chat_id": general["id"], "topic": "Say hello"})
    assert ack["ok"] and ack["chat"]["topic"] == "Say hello"


def test_a_topic_or_name_change_reaches_the_members(alice, bob, carol):
    chat = private_channel(alice)
    alice.call("invite_to_channel", {"chat_id": chat["id"], "user_id": bob.id})
    bob.tab.get_received()
    carol.tab.get_received()
    ack = bob.call(
        "update_channel", {"chat_id": chat["id"], "topic": "  New   plans ", "name": "Ring"}
    )
    assert ack["ok"], ack
    updated = received(alice.tab, "channel_updated")
    assert updated == [
        {
            "chat": {
                "id": chat["id"],
                "kind": "channel",
                "name": "Ring",
                "display_name": "Ring",
                "private": True,
                "topic": "New plans",
            }
        }
    ]
    assert received(carol.tab) == []
    for payload, error in [
        ({"topic": 5}, "A topic must be text."),
        ({"topic": "x" * 251}, "A topic has at most 250 characters."),
        ({"name": "general talk"}, "A channel with this name already exists."),
        ({"topic": "a\u202eb"}, "A topic cannot hold control or invisible characters."),
    ]:
        ack = bob.call("update_channel", {"chat_id": chat["id"], **payload})
        assert ack == {"ok": False, "error": error}


def test_bad_payloads_get_clear_errors(alice, bob):
    chat = private_channel(alice)
    for event, payload, error in [
        (
            "invite_to_channel",
            {"chat_id": chat["id"], "user_id": "2"},
            "user_id must be a positive integer.",
        ),
        ("invite_to_channel", {"chat_id": chat["id"], "user_id": 999}, "There is no such person."),
        ("leave_channel", {"chat_id": True}, "chat_id must be a positive integer."),
        ("leave_channel", {"chat_id": 999}, "This chat does not exist or you are not in it."),
        ("create_channel", {"name": "P", "private": "yes"}, "private must be true or false."),
        ("list_members", [], "The request must be a JSON object."),
    ]:
        assert alice.call(event, payload) == {"ok": False, "error": error}, event


def test_display_names_and_pictures_travel_with_messages_and_members(alice, bob, chat):
    response = bob.http.post("/settings/name", data={"display_name": "  Bob  the Builder "})
    assert response.status_code == 303
    picture = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 40, 40)).save(picture, "PNG")
    picture.seek(0)
    response = bob.http.post(
        "/settings/picture",
        data={"picture": (picture, "me.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    message = bob.send(chat, "hello")
    assert message["sender_display_name"] == "Bob the Builder"
    url = message["sender_avatar_url"]
    assert url.startswith(f"/avatars/{bob.id}?v=")
    served = alice.http.get(url)
    assert served.mimetype == "image/png"
    assert Image.open(io.BytesIO(served.data)).size == (128, 128)
    listed = {c["id"]: c for c in alice.call("list_chats")["chats"]}
    assert listed[chat]["display_name"] == "Bob the Builder"
    assert listed[chat]["avatar_url"] == url
    members = alice.call("list_members", {"chat_id": chat})["members"]
    assert {m["display_name"] for m in members} == {"alice", "Bob the Builder"}

    fake = io.BytesIO(b"not a picture")
    response = bob.http.post(
        "/settings/picture", data={"picture": (fake, "me.png")}, content_type="multipart/form-data"
    )
    assert response.status_code == 400
    assert b"not a real PNG picture" in response.data
    response = bob.http.post("/settings/name", data={"display_name": "x" * 41})
    assert response.status_code == 400
    assert bob.http.post("/settings/name", data={"display_name": ""}).status_code == 303
    assert bob.send(chat, "again")["sender_display_name"] == "bob"


def test_a_direct_chat_is_not_a_channel(alice, bob, chat):
    for event in ("leave_channel", "update_channel"):
        ack = alice.call(event, {"chat_id": chat, "topic": "x"})
        assert ack == {"ok": False, "error": "This is a direct chat, not a channel."}
