"""Live messages: who receives what, the sender's ack, tabs in step, one row per client_id."""

from __future__ import annotations

from socketio import packet as socketio_packet

import database
from app import socketio
from tests.conftest import received


def test_logged_out_socket_is_refused_at_connect(app):
    tab = socketio.test_client(app, flask_test_client=app.test_client())
    assert not tab.is_connected()


def test_ack_carries_the_stored_message_with_server_sender_and_time(alice, bob):
    chat_id = alice.direct_chat_with(bob)
    ack = alice.call(
        "message_sent",
        {
            "chat_id": chat_id,
            "body": "  hello bob  ",
            "client_id": "m1",
            "sender_name": "mallory",
            "created_at": 0,
        },
    )
    assert ack["ok"]
    message = ack["message"]
    assert message["body"] == "hello bob"
    assert message["sender_id"] == alice.id
    assert message["sender_name"] == "alice"
    assert message["created_at"] > 1_700_000_000_000
    assert message["chat_id"] == chat_id
    assert message["attachment"] is None


def test_recipient_with_the_chat_open_sees_it_at_once(alice, bob):
    chat_id = alice.direct_chat_with(bob)
    alice.call("join_chat", {"chat_id": chat_id})
    bob.call("join_chat", {"chat_id": chat_id})
    bob.tab.get_received()
    message = alice.send(chat_id, "hi")
    assert received(bob.tab, "message_received_from_current_chat") == [{"message": message}]
    assert received(alice.tab, "message_received_from_current_chat") == []


def test_recipient_elsewhere_gets_the_chat_moved_up_with_the_message(alice, bob):
    chat_id = alice.direct_chat_with(bob)
    bob.tab.get_received()
    message = alice.send(chat_id, "hi")
    events = bob.tab.get_received()
    assert [e["name"] for e in events if e["name"].startswith("message_")] == [
        "message_received_from_another_chat"
    ]
    another = next(e for e in events if e["name"] == "message_received_from_another_chat")
    assert another["args"][0] == {"chat_id": chat_id, "message": message}
    listed = bob.call("list_chats")["chats"]
    assert listed[0]["id"] == chat_id
    assert listed[0]["unread_count"] == 1


def test_first_direct_message_makes_the_chat_appear_for_the_recipient(alice, bob, carol):
    """Both are members from the start, but bob's list shows the chat only with its first
    message, which his tabs receive with the chat."""
    bob.tab.get_received()
    alice_other_tab = alice.open_tab()
    chat_id = alice.direct_chat_with(bob)
    assert received(bob.tab, "chat_added") == []
    assert chat_id not in [c["id"] for c in bob.call("list_chats")["chats"]]
    assert chat_id in [c["id"] for c in alice.call("list_chats")["chats"]]
    assert [e["chat"]["id"] for e in received(alice_other_tab, "chat_added")] == [chat_id]
    assert bob.call("join_chat", {"chat_id": chat_id})["ok"]  # he may open it all the same
    bob.call("join_chat", {"chat_id": bob.call("list_chats")["chats"][0]["id"]})
    bob.tab.get_received()
    message = alice.send(chat_id, "first")
    events = bob.tab.get_received()
    assert [e["args"][0] for e in events if e["name"] == "message_received_from_another_chat"] == [
        {"chat_id": chat_id, "message": message}
    ]
    new = [e["args"][0] for e in events if e["name"] == "new_user_sent_message"]
    assert new == [{"chat": new[0]["chat"], "message": message}]
    assert new[0]["chat"]["name"] == "alice"
    assert new[0]["chat"]["unread_count"] == 1
    alice.send(chat_id, "second")
    assert received(bob.tab, "new_user_sent_message") == []
    assert received(carol.tab) == []


def test_socket_connected_before_the_chat_existed_gets_later_messages(alice, bob):
    bob_tab = bob.open_tab()
    chat_id = alice.direct_chat_with(bob)  # his open sockets join the chat's room at once
    bob_tab.get_received()
    alice.send(chat_id, "one")
    alice.send(chat_id, "two")
    bodies = [e["message"]["body"] for e in received(bob_tab, "message_received_from_another_chat")]
    assert bodies == ["one", "two"]


def test_all_tabs_of_the_sender_stay_in_step(alice, bob):
    chat_id = alice.direct_chat_with(bob)
    first, second = alice.open_tab(), alice.open_tab()
    alice.call("join_chat", {"chat_id": chat_id}, tab=first)
    alice.call("join_chat", {"chat_id": chat_id}, tab=second)
    second.get_received()
    ack = first.emit(
        "message_sent",
        {"chat_id": chat_id, "body": "from tab one", "client_id": "t1"},
        callback=True,
    )
    assert received(second, "message_received_from_current_chat") == [{"message": ack["message"]}]


def message_events(tab) -> list[tuple[str, str]]:
    """(event, body) of each message event a tab received since the last call."""
    return [
        (e["name"], e["args"][0]["message"]["body"])
        for e in tab.get_received()
        if e["name"].startswith("message_received_")
    ]


def test_each_socket_gets_a_message_once_with_the_event_it_needs(alice, bob):
    chat_id = alice.direct_chat_with(bob)
    other_chat_id = bob.direct_chat_with(bob)  # bob's notes to self
    alice_reading, alice_elsewhere = alice.tab, alice.open_tab()
    bob_reading, bob_elsewhere, bob_switched = bob.tab, bob.open_tab(), bob.open_tab()
    alice.call("join_chat", {"chat_id": chat_id}, tab=alice_reading)
    bob.call("join_chat", {"chat_id": chat_id}, tab=bob_reading)
    bob.call("join_chat", {"chat_id": chat_id}, tab=bob_switched)
    bob.call("join_chat", {"chat_id": other_chat_id}, tab=bob_switched)
    bob.call("list_chats", tab=bob_switched)  # a resync must not bring a second copy back
    bob.call("join_chat", {"chat_id": other_chat_id}, tab=bob_elsewhere)
    bob.call("join_chat", {"chat_id": chat_id}, tab=bob_reading)  # opening it again
    tabs = [alice_reading, alice_elsewhere, bob_reading, bob_elsewhere, bob_switched]
    for tab in tabs:
        tab.get_received()

    ack = alice.call("message_sent", {"chat_id": chat_id, "body": "once", "client_id": "o1"})

    assert ack["ok"] and ack["message"]["body"] == "once"
    current = ("message_received_from_current_chat", "once")
    another = ("message_received_from_another_chat", "once")
    assert message_events(alice_reading) == []  # the sender has it in its ack
    assert message_events(alice_elsewhere) == [another]
    assert message_events(bob_reading) == [current]
    assert message_events(bob_elsewhere) == [another]
    assert message_events(bob_switched) == [another]


def test_an_emit_to_a_room_with_nobody_to_receive_it_is_not_even_encoded(alice, bob, monkeypatch):
    """Both members have their direct chat open: its chat room is empty, and only the one
    event for bob is built (python-socketio would encode the other one for nobody)."""
    chat_id = alice.direct_chat_with(bob)
    alice.call("join_chat", {"chat_id": chat_id})
    bob.call("join_chat", {"chat_id": chat_id})
    alice.send(chat_id, "hello")  # the first message of a direct chat also tells bob of it
    server = socketio.server
    built = []
    make_packet = server.packet_class

    def counting(*args, **kwargs):
        packet = make_packet(*args, **kwargs)
        if packet.packet_type == socketio_packet.EVENT and not kwargs.get("encoded_packet"):
            built.append(packet.data[0])
        return packet

    monkeypatch.setattr(server, "packet_class", counting)
    alice.send(chat_id, "just for bob")
    assert built == ["message_received_from_current_chat"]


def test_carol_never_receives_anything_of_alice_and_bobs_chat(alice, bob, carol):
    carol.tab.get_received()
    chat_id = alice.direct_chat_with(bob)
    alice.call("join_chat", {"chat_id": chat_id})
    bob.call("join_chat", {"chat_id": chat_id})
    alice.send(chat_id, "secret")
    bob.call("typing", {"chat_id": chat_id})
    bob.call("new_message_count_updated", {"chat_id": chat_id, "last_read_id": 1})
    assert received(carol.tab) == []
    for event, payload in [
        ("join_chat", {"chat_id": chat_id}),
        ("join_chat", {"chat_id": chat_id, "after_id": 0 + 1}),
        ("message_history_is_scrolled_to_the_top", {"chat_id": chat_id, "before_id": 99}),
        ("message_history_is_scrolled_to_the_bottom", {"chat_id": chat_id, "after_id": 1}),
        ("message_sent", {"chat_id": chat_id, "body": "let me in", "client_id": "x"}),
        ("new_message_count_updated", {"chat_id": chat_id, "last_read_id": 1}),
        ("typing", {"chat_id": chat_id}),
        ("join_channel", {"chat_id": chat_id}),
    ]:
        ack = carol.call(event, payload)
        assert ack["ok"] is False, (event, ack)
        assert ack["error"] in {
            "This chat does not exist or you are not in it.",
            "This channel does not exist.",
        }
    assert carol.http.get(f"/chats?chat={chat_id}").status_code == 404
    assert all(chat["id"] != chat_id for chat in carol.call("list_chats")["chats"])
    alice.call("join_chat", {"chat_id": chat_id})
    history = alice.call("join_chat", {"chat_id": chat_id})["messages"]
    assert [m["body"] for m in history] == ["secret"]
    assert received(alice.tab, "message_received_from_current_chat") == []


def test_a_message_is_committed_before_its_ack_and_moves_its_chat(database_url, alice, bob):
    """Another connection sees the message and the chat's new last message as soon as the
    sender has the ack; a retried client_id moves nothing."""
    chat_id = alice.direct_chat_with(bob)
    elsewhere = database.Database(database_url, "/")
    conn = elsewhere.connect()
    last_message = "SELECT last_message_id FROM chats WHERE id = ?"
    try:
        first = alice.send(chat_id, "one", client_id="k1")
        assert conn.one(last_message, (chat_id,)) == {"last_message_id": first["id"]}
        second = alice.send(chat_id, "two", client_id="k2")
        assert alice.send(chat_id, "one", client_id="k1") == first
        assert conn.one(last_message, (chat_id,)) == {"last_message_id": second["id"]}
        count = conn.scalar("SELECT COUNT(*) FROM messages WHERE chat_id = ?", (chat_id,))
        assert count == 2
    finally:
        elsewhere.release(conn)
        elsewhere.close()


def test_same_client_id_twice_stores_one_message(app, alice, bob):
    chat_id = alice.direct_chat_with(bob)
    bob.tab.get_received()
    first = alice.send(chat_id, "only once", client_id="retry-1")
    second = alice.send(chat_id, "only once", client_id="retry-1")
    assert first == second
    assert len(received(bob.tab, "message_received_from_another_chat")) == 1
    history = alice.call("join_chat", {"chat_id": chat_id})["messages"]
    assert [m["id"] for m in history] == [first["id"]]


def test_same_client_id_from_two_users_are_two_messages(alice, bob):
    chat_id = alice.direct_chat_with(bob)
    a = alice.send(chat_id, "hi", client_id="same")
    b = bob.send(chat_id, "hi", client_id="same")
    assert a["id"] != b["id"]


def test_message_text_is_stored_as_text(alice):
    chat_id = alice.direct_chat_with(alice)
    body = "<script>alert(1)</script> <img src=x onerror=alert(2)>"
    assert alice.send(chat_id, body)["body"] == body


def test_notes_to_self(alice):
    chat_id = alice.direct_chat_with(alice)
    alice.tab.get_received()
    message = alice.send(chat_id, "remember the milk")
    chat = alice.call("join_chat", {"chat_id": chat_id})["chat"]
    assert chat["name"] == "alice"
    assert chat["partner_id"] == alice.id
    assert chat["unread_count"] == 0
    assert received(alice.tab, "new_user_sent_message") == []
    assert alice.call("join_chat", {"chat_id": chat_id})["messages"] == [message]


def test_typing_reaches_only_those_with_the_chat_open(alice, bob):
    chat_id = alice.direct_chat_with(bob)
    bob.call("join_chat", {"chat_id": chat_id})
    bob.tab.get_received()
    assert alice.call("typing", {"chat_id": chat_id}) == {"ok": True}
    assert received(bob.tab, "user_typing") == [
        {"chat_id": chat_id, "user_id": alice.id, "username": "alice"}
    ]
    assert received(alice.tab, "user_typing") == []
