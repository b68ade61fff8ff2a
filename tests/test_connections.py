"""How ``python app.py`` holds connections: one server per port, a cap per address, and a
timeout on every wait for a client that never cuts a healthy one."""

from __future__ import annotations

import contextlib
import re
import resource
import select
import selectors
import socket
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import requests
import socketio
from requests.adapters import HTTPAdapter

from bench.servers import answers, established_connections, limit_overrides
from tests.live_server import RealClient, csrf_token, launch_server, start_server

ROOT = Path(__file__).resolve().parents[1]
FLOOD = 3_000
DEFAULT_CAP = 200  # MAX_CONNECTIONS_PER_ADDRESS's default, which these tests keep
# Bounds on how long a test waits for what must happen, so that it fails instead of hanging.
SETTLE_S = 60.0


class SourceAddressAdapter(HTTPAdapter):
    """requests' adapter binding each connection to one local address."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


class ClientAt(RealClient):
    """A person whose browser is another machine of the LAN: every request of theirs,
    Socket.IO's long-polling included, comes from ``address`` (127.x.y.z)."""

    def __init__(self, server, name: str, address: str):
        super().__init__(server, name)
        self.http.mount("http://", SourceAddressAdapter(address))

    def connect(self, transport: str = "polling") -> socketio.Client:
        assert transport == "polling", "only long-polling goes through the bound session"
        client = socketio.Client(reconnection=False, http_session=self.http)
        client.on("*", lambda event, data=None: self.events.append((event, data)))
        client.connect(self.server.url, transports=["polling"], wait_timeout=10)
        self.sio = client
        return client


def port_of(url: str) -> int:
    return urlsplit(url).port


def raise_open_files_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        assert hard == resource.RLIM_INFINITY or hard >= wanted, f"open files capped at {hard}"
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def send_in_order(person: RealClient, chat_id: int, count: int, label: str) -> list[int]:
    """``count`` messages, each waiting for its ack; their ids, checked to be in order."""
    ids = []
    for n in range(count):
        ack = person.call(
            "message_sent",
            {"chat_id": chat_id, "body": f"{label} {n}", "client_id": uuid.uuid4().hex},
        )
        assert ack["ok"], ack
        ids.append(ack["message"]["id"])
    assert ids == sorted(ids) and len(set(ids)) == count
    return ids


def general_talk(person: RealClient) -> int:
    chats = person.call("list_chats")["chats"]
    return next(chat["id"] for chat in chats if chat["name"] == "General Talk")


def read_until_closed(sockets: list[socket.socket], deadline_s: float) -> list[bytes | None]:
    """What each socket received before the server closed it; None for one still open at
    the deadline."""
    received: list[bytes | None] = [None] * len(sockets)
    buffers = [b""] * len(sockets)
    with selectors.DefaultSelector() as selector:
        for index, sock in enumerate(sockets):
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, index)
        deadline = time.monotonic() + deadline_s
        open_count = len(sockets)
        while open_count and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=1.0):
                index = key.data
                try:
                    chunk = sockets[index].recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    buffers[index] += chunk
                    continue
                received[index] = buffers[index]
                selector.unregister(sockets[index])
                open_count -= 1
    return received


def test_a_second_server_on_the_same_port_refuses_to_start_and_names_the_port(tmp_path):
    first = start_server(tmp_path / "first")
    try:
        port = port_of(first.url)
        second = launch_server(tmp_path / "second", PORT=str(port))
        try:
            code = second.process.wait(SETTLE_S)
        finally:
            second.stop()
        output = second.log_tail()
        assert code != 0, output
        assert f"Cannot listen on port {port} of 127.0.0.1: Address already in use." in output
        assert "Chat is running" not in output
        assert not (tmp_path / "second" / "chat.db").exists()  # it touched nothing
        assert first.process.poll() is None
        assert answers(f"{first.url}/login")
    finally:
        first.stop()


def test_one_address_cannot_take_the_server_and_its_idle_connections_time_out(tmp_path):
    """3,000 idle connections from 127.0.0.1: the server holds 200 (the default cap) and
    answers the rest 503 at once; the 200 are closed after HTTP_TIMEOUT_SECONDS; carol, at
    127.0.0.2, is served in order throughout, and 127.0.0.1 is served again afterwards."""
    raise_open_files_limit(FLOOD + 1_000)
    server = start_server(tmp_path, HTTP_TIMEOUT_SECONDS="15", **limit_overrides(ROOT))
    port = port_of(server.url)
    carol = ClientAt(server, "carol", "127.0.0.2").register()
    carol.connect()
    channel = general_talk(carol)
    flood: list[socket.socket] = []
    try:
        send_in_order(carol, channel, 5, "before")
        for _ in range(FLOOD):
            flood.append(socket.create_connection(("127.0.0.1", port), timeout=SETTLE_S))

        # While the flood is held: the server settles at the cap for 127.0.0.1 ...
        deadline = time.monotonic() + SETTLE_S
        while established_connections(port).get("127.0.0.1", 0) > DEFAULT_CAP:
            assert time.monotonic() < deadline, established_connections(port)
            time.sleep(0.1)
        held = established_connections(port).get("127.0.0.1", 0)
        # ... and carol's pages and messages go through, in order.
        assert carol.http.get(f"{server.url}/chats").status_code == 200
        send_in_order(carol, channel, 20, "during")
        still_held = established_connections(port).get("127.0.0.1", 0)

        outcomes = read_until_closed(flood, SETTLE_S)
        assert None not in outcomes, "some connections were never closed"
        refused = [o for o in outcomes if o.startswith(b"HTTP/1.1 503 ")]
        timed_out = [o for o in outcomes if o == b""]
        assert len(refused) + len(timed_out) == FLOOD, {o[:40] for o in outcomes}
        assert all(o.endswith(b"Too many connections from your address.\n") for o in refused)
        assert held == still_held == DEFAULT_CAP
        assert len(timed_out) == DEFAULT_CAP
    finally:
        for sock in flood:
            sock.close()

    send_in_order(carol, channel, 5, "after")
    assert carol.sio.connected  # never cut, long-polling through all of it
    dave = RealClient(server, "dave").register()  # from 127.0.0.1 again
    assert dave.http.get(f"{server.url}/chats").status_code == 200
    carol.disconnect()
    server.stop()


def test_a_healthy_socket_outlives_a_short_timeout_on_both_transports(tmp_path):
    """Engine.IO's pings keep a quiet WebSocket alive (python-engineio gives it the ping
    interval plus the ping timeout), and a long-poll waits in the server, not on its socket."""
    server = start_server(tmp_path, HTTP_TIMEOUT_SECONDS="1")
    try:
        people = {}
        for name, transport in (("alice", "websocket"), ("bob", "polling")):
            person = RealClient(server, name).register()
            person.connect(transport)
            people[name] = (person, person.sio.sid)
        time.sleep(4)  # four timeouts without a frame from either client
        for person, sid in people.values():
            assert person.sio.connected and person.sio.sid == sid
            assert person.call("list_chats")["ok"]
            person.disconnect()
    finally:
        server.stop()


def stalled_upload(server, person: RealClient) -> socket.socket:
    """An upload that announces a megabyte, sends its first bytes, then nothing."""
    token = csrf_token(person.http.get(f"{server.url}/chats").text)
    cookie = person.cookie_header
    body = (
        b'--B\r\nContent-Disposition: form-data; name="chat_id"\r\n\r\n1\r\n'
        b'--B\r\nContent-Disposition: form-data; name="client_id"\r\n\r\n'
        + uuid.uuid4().hex.encode()
        + b'\r\n--B\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        b"\r\nthe first bytes, and then nothing"
    )
    head = (
        f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
        f"X-CSRFToken: {token}\r\nAccept: application/json\r\n"
        f"Content-Type: multipart/form-data; boundary=B\r\nContent-Length: 1000000\r\n\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", port_of(server.url)), timeout=SETTLE_S)
    sock.sendall(head.encode() + body)
    return sock


def test_stalled_uploads_and_half_sent_requests_are_closed_after_the_timeout(tmp_path):
    server = start_server(tmp_path, HTTP_TIMEOUT_SECONDS="2")
    alice = RealClient(server, "alice").register()
    stalled = [stalled_upload(server, alice) for _ in range(5)]
    half_lines = []
    for _ in range(5):
        sock = socket.create_connection(("127.0.0.1", port_of(server.url)), timeout=SETTLE_S)
        sock.sendall(b"GET /log")  # half a request line
        half_lines.append(sock)
    try:
        outcomes = read_until_closed(stalled + half_lines, SETTLE_S)
        assert None not in outcomes, "a stalled connection was held open"
        for answer in outcomes[:5]:
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
            assert re.search(rb'"error":\s*"The request stopped arriving before its end', answer)
        assert outcomes[5:] == [b""] * 5
        assert list((tmp_path / "uploads").glob("*")) == []  # nothing stored, nothing left
        # The server is fine and uploads still work.
        token = csrf_token(alice.http.get(f"{server.url}/chats").text)
        done = alice.http.post(
            f"{server.url}/upload",
            data={"chat_id": "1", "client_id": uuid.uuid4().hex},
            files={"file": ("a.txt", b"complete")},
            headers={"X-CSRFToken": token, "Accept": "application/json"},
        )
        assert done.status_code == 201, done.text
    finally:
        for sock in stalled + half_lines:
            with contextlib.suppress(OSError):
                sock.close()
        server.stop()


def test_a_request_head_sent_a_byte_at_a_time_is_closed_after_the_timeout(tmp_path):
    """Each byte comes before the timeout, yet the whole head is due within it."""
    server = start_server(tmp_path, HTTP_TIMEOUT_SECONDS="2")
    try:
        sock = socket.create_connection(("127.0.0.1", port_of(server.url)), timeout=SETTLE_S)
        head = b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 20
        sent = 0
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for byte in head:
                sock.send(bytes([byte]))
                sent += 1
                time.sleep(0.5)
                if select.select([sock], [], [], 0)[0]:
                    break  # the server answered or closed
        assert sent < len(head), "the server waited for the whole trickle"
        assert read_until_closed([sock], SETTLE_S) == [b""]
        assert answers(f"{server.url}/login")
    finally:
        server.stop()


def test_behind_a_proxy_the_cap_is_left_to_the_proxy(tmp_path):
    """With TRUSTED_PROXIES every connection comes from the proxy's address: capping it
    would cap everyone together, so the chat does not (nginx's limit_conn does)."""
    server = start_server(tmp_path, TRUSTED_PROXIES="1", MAX_CONNECTIONS_PER_ADDRESS="3")
    held = []
    try:
        for _ in range(10):
            held.append(socket.create_connection(("127.0.0.1", port_of(server.url))))
        session = requests.Session()
        session.trust_env = False
        assert session.get(f"{server.url}/login").status_code == 200  # the 11th connection
    finally:
        for sock in held:
            sock.close()
        server.stop()
