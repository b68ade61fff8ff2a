"""Socket.IO frames no client of ours sends, over a raw WebSocket to a real ``python app.py``:
each is refused with at most one short log line (and a bounded number of lines per burst),
an acknowledgement id gets an error answer, and everyone else keeps being served."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
import websocket

from socket_frames import REFUSED_LOG_LINES, UNREADABLE, RefusalLog
from tests.live_server import LiveServer, RealClient, start_server

# Events without a name, names that are not text, no payload at all, unreadable JSON,
# packet types a client never sends, an empty Socket.IO frame.
MALFORMED = ["42[]", "42", "42[1]", "42[null]", "42{}", "42[{}]", '42"x"', "42[", "44", "49"]
MALFORMED += ["4", "4[[[", '42["list_chats"']
BURST_PER_KIND = 150
# A burst may straddle two windows of the log's limit.
MAX_BURST_LOG_LINES = 2 * REFUSED_LOG_LINES
# Room for the 100,000 brackets in one frame (the default limit would refuse it by
# size first, and never parse it).
BIG_FRAME_BYTES = "262144"


@pytest.fixture
def server(tmp_path) -> Iterator[LiveServer]:
    live = start_server(tmp_path / "server", SOCKET_MAX_MESSAGE_BYTES=BIG_FRAME_BYTES)
    yield live
    live.stop()


def raw_socket(person: RealClient) -> websocket.WebSocket:
    """A WebSocket speaking Engine.IO/Socket.IO by hand, connected to the default namespace."""
    url = person.server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    cookie = person.cookie_header
    conn = websocket.create_connection(url, origin=person.server.url, cookie=cookie, timeout=10)
    assert conn.recv().startswith("0")  # Engine.IO's open packet
    conn.send("40")
    while not conn.recv().startswith("40"):  # broadcasts may come first
        pass
    return conn


def answer(conn: websocket.WebSocket, ack_id: int) -> list:
    """The acknowledgement ``ack_id`` gets, skipping broadcasts and answering pings."""
    prefix = f"43{ack_id}"
    while True:
        frame = conn.recv()
        if frame == "2":
            conn.send("3")
        elif frame.startswith(prefix) and frame[len(prefix)] == "[":
            return json.loads(frame[len(prefix) :])


def answers_in_order(conn: websocket.WebSocket, count: int) -> list[tuple[int, list]]:
    """The next ``count`` acknowledgements, in the order they arrive."""
    found = []
    while len(found) < count:
        frame = conn.recv()
        if frame == "2":
            conn.send("3")
        elif frame.startswith("43"):
            head, _, rest = frame[2:].partition("[")
            found.append((int(head), json.loads("[" + rest)))
    return found


def log_lines(server: LiveServer) -> list[str]:
    return server.log_path.read_text(errors="replace").splitlines()


def test_a_burst_of_malformed_frames_leaves_a_short_log_and_others_are_served(server):
    alice = RealClient(server, "alice").register()
    bob = RealClient(server, "bob").register()
    conn = raw_socket(alice)
    before = len(log_lines(server))
    for _ in range(BURST_PER_KIND):
        for frame in MALFORMED:
            conn.send(frame)
    # A socket's frames are handled in order: once this is answered, the burst was read.
    conn.send('427["list_chats",{}]')
    assert answer(conn, 7)[0]["ok"] is True
    added = log_lines(server)[before:]
    assert len(added) <= MAX_BURST_LOG_LINES, "\n".join(added[:40])
    assert added, "the refused frames were not logged at all"
    assert all("Refused a Socket.IO frame" in line for line in added), "\n".join(added[:40])
    assert not any("Traceback" in line for line in added)
    # Everyone else, and the sender's own socket, are still served.
    bob.connect()
    assert bob.call("message_sent", {"chat_id": 1, "body": "still here", "client_id": "b1"})["ok"]
    conn.send('428["message_sent",{"chat_id":1,"body":"me too","client_id":"a1"}]')
    assert answer(conn, 8)[0]["ok"] is True
    bob.disconnect()
    conn.close()
    assert server.process.poll() is None


def test_deeply_nested_json_is_answered_with_an_error_and_the_server_stays_up(server):
    alice = RealClient(server, "alice").register()
    conn = raw_socket(alice)
    before = len(log_lines(server))
    # The frame (100,000 brackets), with an acknowledgement id, then a sound one.
    conn.send('421["message_sent",' + "[" * 100_000)
    conn.send('422["message_sent",{"chat_id":1,"body":"after","client_id":"n1"}]')
    (first_id, first), (second_id, second) = answers_in_order(conn, 2)
    assert (first_id, first) == (1, [{"ok": False, "error": UNREADABLE}])
    assert second_id == 2 and second[0]["ok"] is True
    added = log_lines(server)[before:]
    assert len(added) == 1 and "nested too deeply" in added[0], "\n".join(added[:40])
    # An unreadable frame with an id, and an event whose name is not text, are answered too.
    conn.send("423[")
    conn.send("424[{}]")
    assert answers_in_order(conn, 2) == [
        (3, [{"ok": False, "error": UNREADABLE}]),
        (4, [{"ok": False, "error": UNREADABLE}]),
    ]
    # The chat takes no binary events: one announced does not make the next frames its parts.
    conn.send('45-["list_chats"]')
    conn.send('426["list_chats",{}]')
    assert answer(conn, 6)[0]["ok"] is True
    conn.close()
    assert server.process.poll() is None


def test_unreadable_long_polling_bodies_are_logged_briefly(server):
    alice = RealClient(server, "alice").register()
    base = f"{server.url}/socket.io/?EIO=4&transport=polling"
    headers = {"Origin": server.url}
    opened = alice.http.get(base, headers=headers)
    sid = json.loads(opened.text[1:])["sid"]
    url = f"{base}&sid={sid}"
    assert alice.http.post(url, data="40", headers=headers).status_code == 200
    before = len(log_lines(server))
    for _ in range(50):
        for body in (b"x", b"\xff\xfe", b"42[]", b"4" + b"[" * 3000):
            alice.http.post(url, data=body, headers=headers)
    added = log_lines(server)[before:]
    assert 0 < len(added) <= MAX_BURST_LOG_LINES, "\n".join(added[:40])
    assert not any("Traceback" in line for line in added)
    assert requests.get(f"{server.url}/login", timeout=10).status_code == 200


def test_the_refusal_log_keeps_to_its_limit_and_reports_what_it_left_out(caplog):
    now = [0.0]
    refusals = RefusalLog(lines=3, window_s=60.0, clock=lambda: now[0])
    with caplog.at_level("WARNING", logger="chat"):
        logged = [refusals.note("refused %d", n) for n in range(100)]
        assert logged.count(True) == 3
        now[0] += 60.0
        assert refusals.note("refused again") is True
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "refused 0",
        "refused 1",
        "refused 2",
        "refused again (and 97 more not logged)",
    ]
