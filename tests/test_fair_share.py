"""One socket cannot take the server from the others, against ``python app.py`` (eventlet):
a burst of 20,000 frames is answered in turn with everyone else's events, and a client
that never reads is disconnected before its unsent replies fill the server's memory."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.burst import RawSocketIO
from tests.live_server import LiveServer, RealClient, start_server

GENERAL = 1
BURST = 20_000
# Events that each read the chat: enough to show where another user's event falls.
READING_BURST = 5_000
# join_chat's default budget (settings.py): the burst's first events are served.
JOIN_CHAT_BUDGET = 60
BIG_BODY = "\N{GRINNING FACE}" * 4000  # 16 KB of JSON: each emoji travels as its 4 UTF-8 bytes
MAX_ID = 2**53 - 1


def raw_socket(server: LiveServer, person: RealClient, receive_buffer: int = 0) -> RawSocketIO:
    """A raw Socket.IO connection with ``person``'s login."""
    return RawSocketIO(server.url, person.cookie_header, receive_buffer)


def person(server: LiveServer, name: str) -> RealClient:
    return RealClient(server, f"{name}-{uuid.uuid4().hex[:6]}").register()


def call_ok(client: RealClient, event: str, payload: dict[str, Any]) -> dict[str, Any]:
    ack = client.call(event, payload, timeout=30)
    assert ack["ok"], (event, ack)
    return ack


def innocent_session(bob: RealClient, rounds: int, log: list[str], sent: list[int]) -> None:
    """What a person does meanwhile: open the chat, talk, scroll, list chats; each answered."""
    for n in range(rounds):
        opened = call_ok(bob, "join_chat", {"chat_id": GENERAL})
        log.append("join_chat")
        message = call_ok(
            bob,
            "message_sent",
            {"chat_id": GENERAL, "body": f"still here {n}", "client_id": uuid.uuid4().hex},
        )["message"]
        sent.append(message["id"])
        log.append("message_sent")
        oldest = min([m["id"] for m in opened["messages"]] + [message["id"]])
        call_ok(
            bob,
            "message_history_is_scrolled_to_the_top",
            {"chat_id": GENERAL, "before_id": oldest},
        )
        log.append("scroll")
        call_ok(bob, "list_chats", {})
        log.append("list_chats")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder: Path = tmp_path_factory.mktemp("fair-share")
    # Innocent users send as fast as acks come back; the burst meets the default budgets.
    live = start_server(folder, SEND_RATE_LIMIT="1000 per second")
    yield live
    live.stop()


def test_a_burst_from_one_socket_is_answered_in_turn_with_everyone_else(server):
    mallory, bob = person(server, "mallory"), person(server, "bob")
    bob.connect()
    burster = raw_socket(server, mallory)
    frames = [burster.frame(n, "join_chat", {"chat_id": GENERAL}) for n in range(BURST)]
    answers: list[tuple[int, dict[str, Any]]] = []
    reader = threading.Thread(target=burster.acks, args=(BURST, answers), daemon=True)
    reader.start()
    threading.Thread(target=burster.send_all, args=(frames,), daemon=True).start()
    while not answers:  # the server has started on the burst
        assert reader.is_alive(), "the burster's connection failed"
        time.sleep(0.001)

    log: list[str] = []
    sent: list[int] = []
    innocent_session(bob, 3, log, sent)
    answered_during_burst = len(answers)
    reader.join(120)
    assert not reader.is_alive(), f"only {len(answers)} of {BURST} burst events were answered"

    assert log == ["join_chat", "message_sent", "scroll", "list_chats"] * 3
    assert answered_during_burst < BURST, "bob was served only after the whole burst"
    assert [ack_id for ack_id, _ in answers] == list(range(BURST)), "one socket's order kept"
    oks = [answer["ok"] for _, answer in answers]
    assert oks[:JOIN_CHAT_BUDGET] == [True] * JOIN_CHAT_BUDGET
    refused = [answer for _, answer in answers if not answer["ok"]]
    assert refused[0]["code"] == "rate_limited" and refused[0]["retry_after"] >= 1
    assert all(answer["code"] == "rate_limited" for answer in refused)
    assert len(refused) > BURST * 0.9, "the burst is over budget"
    history = call_ok(bob, "join_chat", {"chat_id": GENERAL})["messages"]
    assert [m["id"] for m in history if m["id"] in sent] == sent, "bob's messages, in order"
    burster.ws.close()
    bob.disconnect()


def test_the_server_yields_to_others_between_one_sockets_events(tmp_path):
    # The paging budget lifted: every event of the burst reads the chat's newest page, as
    # before budgets, and its answer shows whether bob's message, sent during the burst,
    # was stored yet.
    live = start_server(tmp_path, PAGING_RATE_LIMIT="100000 per 10 seconds")
    try:
        mallory, bob = person(live, "mallory"), person(live, "bob")
        bob.connect()
        burster = raw_socket(live, mallory)
        newest = {"chat_id": GENERAL, "before_id": MAX_ID}
        frames = [
            burster.frame(n, "message_history_is_scrolled_to_the_top", newest)
            for n in range(READING_BURST)
        ]
        answers: list[tuple[int, dict[str, Any]]] = []
        reader = threading.Thread(target=burster.acks, args=(READING_BURST, answers), daemon=True)
        reader.start()
        sender = threading.Thread(target=burster.send_all, args=(frames,), daemon=True)
        sender.start()
        while sender.is_alive() and not answers:  # the burst is in the server's hands
            time.sleep(0.001)
        message = call_ok(
            bob, "message_sent", {"chat_id": GENERAL, "body": "hello", "client_id": "b1"}
        )["message"]
        reader.join(300)
        assert not reader.is_alive(), (
            f"only {len(answers)} of {READING_BURST} burst events answered"
        )
        assert [ack_id for ack_id, _ in answers] == list(range(READING_BURST)), "one socket's order"
        assert all(answer["ok"] for _, answer in answers)
        seen_from = next(
            (
                ack_id
                for ack_id, answer in answers
                if message["id"] in {m["id"] for m in answer["messages"]}
            ),
            None,
        )
        assert seen_from is not None, "bob's message was stored only after the whole burst"
        assert seen_from < READING_BURST // 2, f"bob waited for {seen_from} of the burst's events"
        burster.ws.close()
        bob.disconnect()
    finally:
        live.stop()


def memory_kb(server: LiveServer) -> int:
    """The server process's resident memory."""
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))


def test_a_client_that_never_reads_is_disconnected_and_memory_stays_bounded(tmp_path):
    # Budgets out of the way: the limit on unsent bytes alone must hold the memory.
    generous = "100000 per 10 seconds"
    live = start_server(
        tmp_path,
        SEND_RATE_LIMIT=generous,
        JOIN_CHAT_RATE_LIMIT=generous,
        PAGING_RATE_LIMIT=generous,
        LIST_CHATS_RATE_LIMIT=generous,
    )
    try:
        alice, bob, carol = (person(live, n) for n in ("alice", "bob", "carol"))
        alice.connect()
        for n in range(30):
            call_ok(
                alice,
                "message_sent",
                {"chat_id": GENERAL, "body": BIG_BODY, "client_id": f"big{n}"},
            )
        alice.disconnect()
        bob.connect()
        online_before = call_ok(bob, "list_chats", {})["online_count"]

        # Each answer is a page cut at MAX_REPLY_BYTES (256 KiB): 600 of them, 150 MB,
        # would all wait in the server for a client that reads nothing.
        reader = raw_socket(live, carol, receive_buffer=4096)
        assert call_ok(bob, "list_chats", {})["online_count"] == online_before + 1
        memory_before = memory_kb(live)
        frames = [
            RawSocketIO.frame(
                n,
                "message_history_is_scrolled_to_the_top",
                {"chat_id": GENERAL, "before_id": MAX_ID},
            )
            if n % 2
            else RawSocketIO.frame(n, "join_chat", {"chat_id": GENERAL})
            for n in range(600)
        ]
        reader.send_all(frames)

        log: list[str] = []
        sent: list[int] = []
        deadline = time.monotonic() + 60
        while call_ok(bob, "list_chats", {})["online_count"] != online_before:
            assert time.monotonic() < deadline, "the client that never reads is still connected"
            innocent_session(bob, 1, log, sent)
        innocent_session(bob, 1, log, sent)
        assert log == ["join_chat", "message_sent", "scroll", "list_chats"] * (len(log) // 4)
        growth_mb = (memory_kb(live) - memory_before) / 1024
        assert growth_mb < 64, f"the server grew by {growth_mb:.0f} MB"

        # What reached the client before the server hung up: at most the unsent limit
        # (4 MiB) plus what the kernel buffers held, far from the 150 MB asked for.
        received = 0
        reader.ws.sock.settimeout(10)
        try:
            while chunk := reader.ws.sock.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            pass  # the server closed with the client's requests still unread: a reset
        assert received < 16 * 1024 * 1024, received
        assert "does not read" in live.log_tail(), live.describe()
        bob.disconnect()
    finally:
        live.stop()


def test_a_long_polling_client_that_never_polls_is_disconnected(tmp_path):
    generous = "100000 per 10 seconds"
    live = start_server(tmp_path, SEND_RATE_LIMIT=generous, PAGING_RATE_LIMIT=generous)
    try:
        alice, bob, carol = (person(live, n) for n in ("alice", "bob", "carol"))
        alice.connect()
        for n in range(10):
            call_ok(
                alice, "message_sent", {"chat_id": GENERAL, "body": BIG_BODY, "client_id": f"b{n}"}
            )
        bob.connect()
        online_before = call_ok(bob, "list_chats", {})["online_count"]

        # carol opens a long-polling session, then only posts: her answers wait for a GET.
        endpoint = f"{live.url}/socket.io/?EIO=4&transport=polling"
        opened = carol.http.get(endpoint).text
        sid = json.loads(opened[opened.index("{") :])["sid"]
        endpoint += f"&sid={sid}"
        assert carol.http.post(endpoint, data="40").text == "OK"
        deadline = time.monotonic() + 30
        while call_ok(bob, "list_chats", {})["online_count"] != online_before + 1:
            assert time.monotonic() < deadline, "carol never came online"
        page = json.dumps(
            ["message_history_is_scrolled_to_the_top", {"chat_id": GENERAL, "before_id": MAX_ID}]
        )
        for batch in range(40):  # 40 pages of ~160 KB each: past the 4 MiB limit
            if carol.http.post(endpoint, data=f"42{batch}{page}").status_code != 200:
                break  # the session is gone
        while call_ok(bob, "list_chats", {})["online_count"] != online_before:
            assert time.monotonic() < deadline, "the client that never polls is still connected"
        assert carol.http.get(endpoint).status_code == 400, "her session is closed"
        assert "does not read" in live.log_tail(), live.describe()
        alice.disconnect()
        bob.disconnect()
    finally:
        live.stop()
