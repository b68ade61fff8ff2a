def test_two_users_exchange(alice, bob):
    chat_id = alice.direct_chat_with(bob)
    bob.tab.get_received()
    ack = alice.call("join_chat", {"chat_id": chat_id})
    assert ack["ok"], ack
    bob.call("join_chat", {"chat_id": chat_id})
    message = alice.send(chat_id, "hello bob")
    events = bob.tab.get_received()
    names = [e["name"] for e in events]
    assert "message_received_from_current_chat" in names, events
