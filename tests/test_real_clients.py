"""Real python-socketio clients against ``python app.py``: a reader who drops off while
others keep sending catches up with nothing missed and nothing doubled."""

from __future__ import annotations

import contextlib
import threading
import uuid

import pytest

from tests.live_server import LiveServer, RealClient, start_server, wait_for
from tests.postgres import postgres_schema

# It starts real servers: `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

GENERAL = 1


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("real-clients")
    with contextlib.ExitStack() as stack:
        database = {}
        if request.param == "postgresql":
            database["DATABASE_URL"] = stack.enter_context(postgres_schema())
        # These clients send as fast as acks come back; the flood limits have their own tests.
        live = start_server(folder, SEND_RATE_LIMIT="1000 per second", **database)
        stack.callback(live.stop)
        yield live


def person(server: LiveServer, name: str) -> RealClient:
    client = RealClient(server, f"{name}-{uuid.uuid4().hex[:6]}").register()
    client.connect()
    return client


def send(client: RealClient, chat_id: int, body: str, client_id: str | None = None) -> dict:
    ack = client.call(
        "message_sent",
        {"chat_id": chat_id, "body": body, "client_id": client_id or uuid.uuid4().hex},
    )
    assert ack["ok"], ack
    return ack["message"]


def test_a_reader_who_drops_off_catches_up_with_nothing_missed_or_doubled(server):
    alice, bob, carol = (person(server, n) for n in ("alice", "bob", "carol"))
    channel = alice.call("create_channel", {"name": f"ops-{uuid.uuid4().hex[:6]}"})["chat"]["id"]
    for member in (bob, carol):
        assert member.call("join_channel", {"chat_id": channel})["ok"]
    opened = bob.call("join_chat", {"chat_id": channel})
    seen = [m["id"] for m in opened["messages"]]
    sent = [send(alice, channel, "before bob left")]
    wait_for(
        lambda: bob.received("message_received_from_current_chat"),
        "bob gets the first message live",
    )
    seen += [e["message"]["id"] for e in bob.received("message_received_from_current_chat")]
    bob.disconnect()

    for n in range(30):
        sender = alice if n % 2 else carol
        sent.append(send(sender, channel, f"while bob was away {n}"))

    # Alice keeps talking while bob reconnects: a message may come live, in the catch-up,
    # or both; the client keeps each id once.
    stop = threading.Event()
    failures: list[BaseException] = []

    def keep_sending() -> None:
        try:
            for n in range(200):
                if stop.is_set():
                    return
                sent.append(send(alice, channel, f"during reconnect {n}"))
        except BaseException as error:  # reported by the test, not lost in the thread
            failures.append(error)

    talker = threading.Thread(target=keep_sending)
    talker.start()
    bob.events.clear()
    bob.connect()
    listed = {c["id"]: c for c in bob.call("list_chats")["chats"]}
    assert listed[channel]["unread_count"] >= 31
    catch_up = bob.call("join_chat", {"chat_id": channel, "after_id": seen[-1]})
    # Let alice keep talking after the catch-up, so that some of her messages come live.
    wait_for(
        lambda: (
            len(bob.received("message_received_from_current_chat")) >= 3 or not talker.is_alive()
        ),
        "bob gets alice's messages live after the catch-up, or alice has said all",
    )
    stop.set()
    talker.join()
    assert failures == []
    # A last message: once it is in, everything sent before it is too (one socket's
    # events arrive in order).
    sent.append(send(alice, channel, "the last one"))
    wait_for(
        lambda: {"message": sent[-1]} in bob.received("message_received_from_current_chat"),
        "bob gets the last message live",
    )
    caught = [m["id"] for m in catch_up["messages"]]
    assert caught == sorted(caught), "the catch-up page is in order"
    assert len(caught) == len(set(caught)), "the catch-up page has no message twice"
    live = [e["message"]["id"] for e in bob.received("message_received_from_current_chat")]
    shown = sorted(set(seen) | set(caught) | set(live))
    if catch_up["has_more_after"]:
        more = bob.call(
            "message_history_is_scrolled_to_the_bottom",
            {"chat_id": channel, "after_id": caught[-1]},
        )
        shown = sorted(set(shown) | {m["id"] for m in more["messages"]})
    assert shown == [m["id"] for m in sent]
    for client in (alice, bob, carol):
        client.disconnect()


def test_a_retried_send_is_stored_once_over_a_real_connection(server):
    alice = person(server, "alice")
    client_id = uuid.uuid4().hex
    first = send(alice, GENERAL, "lost ack?", client_id)
    alice.disconnect()
    alice.connect()  # the retry goes out on a new connection, as after a reconnect
    again = send(alice, GENERAL, "lost ack?", client_id)
    assert again == first
    rows = server.query("SELECT COUNT(*) AS n FROM messages WHERE client_id = ?", (client_id,))
    assert rows == [{"n": 1}]
    alice.disconnect()


def test_a_logged_out_client_is_refused_at_connect(server):
    import socketio

    stranger = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        stranger.connect(server.url, transports=["websocket"], wait_timeout=5)


def test_long_polling_carries_the_chat_too(server):
    alice = RealClient(server, f"alice-{uuid.uuid4().hex[:6]}").register()
    bob = RealClient(server, f"bob-{uuid.uuid4().hex[:6]}").register()
    alice.connect(transport="polling")
    bob.connect(transport="polling")
    bob.call("join_chat", {"chat_id": GENERAL})
    message = send(alice, GENERAL, "over long-polling")
    wait_for(
        lambda: {"message": message} in bob.received("message_received_from_current_chat"),
        "bob receives the message over polling",
    )
    alice.disconnect()
    bob.disconnect()
