"""Disturbances: while one user (or an outside process) misbehaves, how long do the others
wait?

Each disturbance runs on a fresh ``python app.py`` of a checkout (SQLite, the chat's own
password hash and limits). A few innocent users, each from a loopback address of its own,
do a steady mix of requests: over their socket ``message_sent`` (one at a time, each
awaiting its ack, as the browser's outbox sends them), ``join_chat``, a read report and a
page of history (each sent when due, as the browser does), and over a new HTTP connection
the chat page. Each request's latency counts from the moment it was due, so a stalled
server shows as the time the user waited. The disturbances:

- ``quiet``: nothing happens (the baseline of the same run);
- ``lock``: another process holds ``BEGIN IMMEDIATE`` on the SQLite file;
- ``burst``: one logged-in socket sends a burst of ``join_chat`` frames without waiting;
- ``picture``: uploads of a small PNG of ~40 megapixels, one after another;
- ``logins``: rounds of parallel successful logins;
- ``idle``: connections from one address, each sending half a request line, held open;
- ``nonreader``: a socket that never reads asks again and again for a page of 500 large
  messages.

    python -m bench.disturbance [--checkout DIR] [--only lock,burst] [--out FILE]
    python -m bench.disturbance --compare before=before.json after=after.json

The innocent users run in a process of their own (``python -m bench.disturbance
--innocents``, driven through its stdin and stdout), so the disturbing client's own work
does not delay their measurements. Everything talks to loopback, is bounded in count and
time, and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import copy
import functools
import json
import math
import os
import re
import resource
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench import servers

HOST = "127.0.0.1"
PASSWORD = "bench-password-1"
DEFAULT_CHANNEL = "General Talk"
# Each innocent user has an address of its own, the disturbing clients others: a limit per
# address (connections, logins) then falls on the one that misbehaves, as on a LAN.
INNOCENT_ADDRESS = "127.0.2.{}"
ATTACKER_ADDRESS = "127.0.3.1"
NONREADER_ADDRESS = "127.0.3.2"
IDLE_ADDRESS = "127.0.3.3"
SOCKET_KINDS = ("message_sent", "join_chat", "read_report", "page")
# What each socket request emits.
EVENT_OF_KIND = {
    "message_sent": "message_sent",
    "join_chat": "join_chat",
    "read_report": "new_message_count_updated",
    "page": "message_history_is_scrolled_to_the_top",
}
# static/js/outbox.js: how long a message refused as "too fast" waits before it goes again.
TOO_FAST_PAUSE_S = 2.0
NAMES = ("quiet", "lock", "burst", "picture", "logins", "idle", "nonreader")
MAX_IDLE_CONNECTIONS = 10_000
STEP_TIMEOUT_S = 60.0
# A receive buffer this small keeps the kernel from reading a non-reading client's replies
# for it: what the server cannot send stays in the server.
NONREADER_RECEIVE_BUFFER = 4096

FULL: dict[str, Any] = {
    "users": 5,
    # 5 users x (3 socket requests + 1 page load) a second: 20 requests a second in all.
    "socket_rate_per_user": 3.0,
    "http_rate_per_user": 1.0,
    "request_timeout_s": 15.0,
    "lead_s": 3.0,
    "tail_s": 3.0,
    # Settings of every server of the run (on top of the chat's defaults).
    "server_settings": {},
    "quiet": {"seconds": 8.0},
    "lock": {"seconds": 8.0},
    "burst": {"frames": 20_000, "timeout_s": 120.0},
    "picture": {"side": 6324, "uploads": 3, "timeout_s": 60.0},
    "logins": {"parallel": 20, "rounds": 5, "timeout_s": 60.0},
    # MAX_CONNECTIONS below the 3,000: one address can take every connection the server
    # allows, as the 10,050 of the issue did against the default 10,000.
    "idle": {"connections": 3000, "hold_s": 8.0, "settings": {"MAX_CONNECTIONS": "2500"}},
    # Seeding 500 messages would otherwise wait on the per-user send limit for 50 s.
    "nonreader": {
        "messages": 500,
        "body_chars": 4000,
        "requests": 150,
        "hold_s": 20.0,
        "settings": {"SEND_RATE_LIMIT": "1000000 per second"},
    },
}

# The smoke test's size: every disturbance, each a second or so.
TINY: dict[str, Any] = {
    **FULL,
    "users": 2,
    "socket_rate_per_user": 4.0,
    "http_rate_per_user": 1.0,
    "request_timeout_s": 10.0,
    "lead_s": 0.3,
    "tail_s": 0.3,
    "server_settings": {"PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"},
    "quiet": {"seconds": 0.5},
    "lock": {"seconds": 0.5},
    "burst": {"frames": 200, "timeout_s": 30.0},
    "picture": {"side": 1200, "uploads": 1, "timeout_s": 30.0},
    "logins": {"parallel": 3, "rounds": 1, "timeout_s": 30.0},
    "idle": {"connections": 30, "hold_s": 0.5, "settings": {}},
    "nonreader": {
        "messages": 20,
        "body_chars": 500,
        "requests": 5,
        "hold_s": 0.5,
        "settings": {"SEND_RATE_LIMIT": "1000000 per second"},
    },
}


# -- HTTP over loopback ---------------------------------------------------------------------


@dataclass
class HttpResponse:
    """A status, the headers (repeated ones kept) and the body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


async def http_request(
    port: int,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    local_address: str | None = None,
    timeout: float = 15.0,
) -> HttpResponse:
    """One HTTP/1.0 request on a new connection from ``local_address``; the connection
    closes after the answer, so the body is what comes before the end."""

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection(
            HOST, port, local_addr=(local_address, 0) if local_address else None
        )
        try:
            lines = [f"{method} {path} HTTP/1.0", f"Host: {HOST}:{port}"]
            lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
            if body or method == "POST":
                lines.append(f"Content-Length: {len(body)}")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            await writer.drain()
            return await reader.read()
        finally:
            writer.transport.abort()

    raw = await asyncio.wait_for(exchange(), timeout)
    head, _, content = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    if not status_line.startswith("HTTP/"):
        raise ConnectionError(f"no HTTP answer to {method} {path}")
    pairs = [tuple(part.strip() for part in line.split(":", 1)) for line in header_lines]
    return HttpResponse(int(status_line.split()[1]), pairs, content)


CSRF_FIELD = re.compile(
    r'name="csrf_token"[^>]*value="([^"]+)"|name="csrf-token" content="([^"]+)"'
)


class Browser:
    """One person's cookies, from one loopback address."""

    def __init__(self, port: int, address: str) -> None:
        self.port = port
        self.address = address
        self.cookies: dict[str, str] = {}

    @property
    def cookie_header(self) -> str:
        """The Cookie header these cookies make."""
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        content_type: str | None = None,
        timeout: float = 15.0,
        extra: dict[str, str] | None = None,
    ) -> HttpResponse:
        """A request with the cookies; the cookies it sets are kept."""
        headers = {"Cookie": self.cookie_header} if self.cookies else {}
        if content_type:
            headers["Content-Type"] = content_type
        headers.update(extra or {})
        response = await http_request(
            self.port,
            method,
            path,
            headers=headers,
            body=body,
            local_address=self.address,
            timeout=timeout,
        )
        for name, value in response.headers:
            if name.lower() == "set-cookie":
                cookie, _, _ = value.partition(";")
                key, _, cookie_value = cookie.partition("=")
                self.cookies[key.strip()] = cookie_value.strip()
        return response

    async def csrf_token(self, path: str, timeout: float = 15.0) -> str:
        """The CSRF token of a page (its form, or the page's meta tag)."""
        page = (await self.request("GET", path, timeout=timeout)).body.decode()
        found = CSRF_FIELD.search(page)
        if found is None:
            raise RuntimeError(f"no CSRF token on {path}")
        return found.group(1) or found.group(2)

    async def post_form(self, path: str, fields: dict[str, str], timeout: float = 15.0) -> int:
        """Fetch the form for its token, post it; the status of the answer."""
        token = await self.csrf_token(path, timeout)
        body = urlencode({**fields, "csrf_token": token}).encode()
        response = await self.request(
            "POST", path, body, "application/x-www-form-urlencoded", timeout
        )
        return response.status

    async def register(self, name: str) -> None:
        """Register through the real form (which also logs in)."""
        status = await self.post_form(
            "/register", {"username": name, "password": PASSWORD, "confirmation": PASSWORD}
        )
        if status != 303:
            raise RuntimeError(f"registering {name} answered {status}")


# -- Socket.IO over a WebSocket, by hand -----------------------------------------------------
# Written out rather than python-socketio's client so that a client can bind a source
# address, send thousands of frames in one write, and stop reading.


def websocket_frame(text: str) -> bytes:
    """One masked text frame, as a client must send it."""
    payload = text.encode()
    length = len(payload)
    if length < 126:
        head = bytes([0x81, 0x80 | length])
    elif length < 1 << 16:
        head = bytes([0x81, 0x80 | 126]) + length.to_bytes(2, "big")
    else:
        head = bytes([0x81, 0x80 | 127]) + length.to_bytes(8, "big")
    key = os.urandom(4)
    repeated = (key * (length // 4 + 1))[:length]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        length, "big"
    )
    return head + key + masked


def event_packet(event: str, payload: Any, ack_id: int | None = None) -> str:
    """A Socket.IO event packet inside an Engine.IO message: ``42[id]["event",payload]``."""
    data = json.dumps([event, payload], separators=(",", ":"), ensure_ascii=False)
    return f"42{'' if ack_id is None else ack_id}{data}"


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The next whole message from the server: its opcode and payload."""
    opcode, parts = None, []
    while True:
        head = await reader.readexactly(2)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        key = await reader.readexactly(4) if head[1] & 0x80 else None
        payload = await reader.readexactly(length)
        if key:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        if opcode is None:
            opcode = head[0] & 0x0F
        parts.append(payload)
        if head[0] & 0x80:
            return opcode, b"".join(parts)


class SioSocket:
    """A logged-in Socket.IO connection: calls that await their ack, raw packets, events."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.on_event: Callable[[str, Any], None] | None = None
        self.closed = False
        self.last_ack_bytes = 0  # the size of the last acknowledgement's frame
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 1
        self._reading: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        port: int,
        cookie: str,
        address: str,
        timeout: float = 15.0,
        *,
        read: bool = True,
        receive_buffer: int | None = None,
    ) -> SioSocket:
        """Connect, upgrade, join the default namespace; then read in the background unless
        ``read`` is False (the socket then never reads again)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.bind((address, 0))
        sock.setblocking(False)
        try:
            await asyncio.wait_for(
                asyncio.get_running_loop().sock_connect(sock, (HOST, port)), timeout
            )
            reader, writer = await asyncio.open_connection(sock=sock)
        except BaseException:
            sock.close()
            raise
        client = cls(reader, writer)
        try:
            await asyncio.wait_for(client._handshake(port, cookie), timeout)
        except BaseException:
            writer.transport.abort()
            raise
        if read:
            client._reading = asyncio.create_task(client._read_forever())
        return client

    async def _handshake(self, port: int, cookie: str) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            f"Host: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nCookie: {cookie}\r\n\r\n"
        )
        self.writer.write(request.encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"no WebSocket: {head[:200]!r}")
        _opcode, opened = await read_frame(self.reader)
        if not opened.startswith(b"0"):
            raise ConnectionError(f"no Engine.IO open packet: {opened[:200]!r}")
        self.writer.write(websocket_frame("40"))
        while True:
            _opcode, packet = await read_frame(self.reader)
            if packet.startswith(b"40"):
                return
            if packet.startswith(b"44"):
                raise ConnectionError(f"refused: {packet[:200]!r}")
            if packet == b"2":
                self.writer.write(websocket_frame("3"))

    async def _read_forever(self) -> None:
        try:
            while True:
                opcode, payload = await read_frame(self.reader)
                if opcode == 8:
                    break
                if opcode == 1:
                    self._on_packet(payload)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self._close_pending()

    def _on_packet(self, payload: bytes) -> None:
        text = payload.decode()
        if text == "2":
            self.send_packets(["3"])
            return
        if text.startswith("41") or text.startswith("1"):
            self.writer.transport.abort()
            return
        if not text.startswith("4") or len(text) < 2:
            return
        kind, rest = text[1], text[2:]
        digits = len(rest) - len(rest.lstrip("0123456789"))
        data = json.loads(rest[digits:]) if rest[digits:] else []
        if kind == "3" and digits:
            ack_id = int(rest[:digits])
            future = self._pending.pop(ack_id, None)
            self.last_ack_bytes = len(payload)
            if future is not None and not future.done():
                future.set_result(data[0] if data else None)
        elif kind == "2" and self.on_event is not None and data:
            self.on_event(data[0], data[1] if len(data) > 1 else None)

    def _close_pending(self) -> None:
        self.closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("the server closed the socket"))
        self._pending.clear()

    def send_packets(self, packets: list[str]) -> None:
        """Write Engine.IO packets, one frame each, in one write."""
        self.writer.write(b"".join(websocket_frame(packet) for packet in packets))

    def next_ack_id(self) -> int:
        """An ack id for a packet sent by hand."""
        self._next_id += 1
        return self._next_id - 1

    async def call(self, event: str, payload: Any, timeout: float) -> Any:
        """Emit ``event`` and return its ack; TimeoutError or ConnectionError otherwise."""
        if self.closed:
            raise ConnectionError("the socket is closed")
        ack_id = self.next_ack_id()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ack_id] = future
        self.writer.write(websocket_frame(event_packet(event, payload, ack_id)))
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(ack_id, None)

    def close(self) -> None:
        """Drop the connection at once."""
        self.writer.transport.abort()
        if self._reading is not None:
            self._reading.cancel()


async def call_ok(
    sock: SioSocket, event: str, payload: Any, timeout: float = STEP_TIMEOUT_S
) -> Any:
    """A call that must succeed (set-up); a "too fast" ack is waited out and retried."""
    deadline = time.monotonic() + timeout
    while True:
        reply = await sock.call(event, payload, max(1.0, deadline - time.monotonic()))
        if reply.get("ok"):
            return reply
        if "retry_after" in reply and time.monotonic() + reply["retry_after"] < deadline:
            await asyncio.sleep(reply["retry_after"])
            continue
        raise RuntimeError(f"{event} failed: {reply}")


def general_chat_id(reply: dict[str, Any]) -> int:
    """The id of the default channel in a ``list_chats`` answer."""
    return next(chat["id"] for chat in reply["chats"] if chat.get("name") == DEFAULT_CHANNEL)


# -- the innocent users (a process of their own) ---------------------------------------------


@dataclass
class Innocent:
    """One innocent user: its socket, its address, what it has seen."""

    index: int
    name: str
    address: str
    cookie: str
    sock: SioSocket | None = None
    latest_id: int = 0
    sent: int = 0


async def _socket_request(user: Innocent, kind: str, chat_id: int, timeout: float) -> dict:
    """One socket request of ``kind``; the facts of its answer."""
    if kind == "message_sent":
        user.sent += 1
        client_id = f"inn-{user.index}-{user.sent}"
        payload = {
            "chat_id": chat_id,
            "body": f"{user.name} says {user.sent}",
            "client_id": client_id,
        }
    elif kind == "join_chat":
        payload = {"chat_id": chat_id}
    elif kind == "read_report":
        payload = {"chat_id": chat_id, "last_read_id": user.latest_id}
    else:
        payload = {"chat_id": chat_id, "before_id": user.latest_id}
    deadline = time.monotonic() + timeout
    retries = 0
    while True:
        reply = await user.sock.call(EVENT_OF_KIND[kind], payload, deadline - time.monotonic())
        pause = reply.get("retry_after", TOO_FAST_PAUSE_S)
        too_fast = not reply.get("ok") and "too fast" in str(reply.get("error", "")).lower()
        # As the browser's outbox: a message refused as too fast waits, then goes again.
        if kind != "message_sent" or not too_fast:
            break
        if time.monotonic() + pause >= deadline:
            raise TimeoutError
        retries += 1
        await asyncio.sleep(pause)
    facts: dict[str, Any] = {"ok": bool(reply.get("ok"))}
    if retries:
        facts["too_fast_retries"] = retries
    if not facts["ok"]:
        facts["error"] = reply.get("error")
    for message in reply.get("messages", []) + [reply.get("message") or {}]:
        user.latest_id = max(user.latest_id, message.get("id", 0))
    if kind == "message_sent":
        facts["client_id"] = client_id
        facts["message_id"] = (reply.get("message") or {}).get("id")
    return facts


@dataclass
class Lane:
    """Requests of one kind for one user, due every 1/rate s from ``start``. Sequential
    (messages, as the browser's outbox sends them): each awaits the answer to the one
    before, so a late one delays the rest. Otherwise each goes out when due, whatever is
    still waiting for an answer (as the browser's other requests)."""

    user: Innocent
    kind: str
    rate: float
    start: float
    request: Callable[[], Awaitable[dict]]
    sequential: bool
    next: int = 0  # the first slot not sent yet

    def due(self, number: int) -> float:
        """When slot ``number`` is due."""
        return self.start + number / self.rate

    async def run(
        self, stopping: asyncio.Event, timeout: float, records: list[dict[str, Any]]
    ) -> None:
        """Send each slot when it is due (a sequential lane: or as soon as the one before
        it was answered) until ``stopping``; a record for each."""
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while not stopping.is_set():
                due = self.due(self.next)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), max(0.0, due - time.monotonic()))
                if stopping.is_set():
                    break
                self.next += 1
                if self.sequential:
                    await self._one(due, timeout, records)
                else:
                    task = asyncio.create_task(self._one(due, timeout, records))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
        finally:
            if in_flight:  # each bounded by its own timeout
                await asyncio.wait(list(in_flight))

    async def _one(self, due: float, timeout: float, records: list[dict[str, Any]]) -> None:
        record: dict[str, Any] = {"user": self.user.index, "kind": self.kind, "due": due}
        record["sent"] = time.monotonic()
        try:
            record.update(await self.request())
            record["status"] = "ok" if record.pop("ok") else "error"
            record["done"] = time.monotonic()
        except TimeoutError:
            record["status"] = "timeout"
            record["done"] = record["sent"] + timeout
        except (ConnectionError, OSError) as error:
            record["status"] = "closed"
            record["error"] = str(error) or type(error).__name__
            record["done"] = time.monotonic()
        records.append(record)

    def unsent(self, stopped_at: float) -> list[dict[str, Any]]:
        """The slots due before ``stopped_at`` that were never sent: a sequential lane was
        still waiting for an earlier answer. Each waited at least until ``stopped_at``."""
        slots = range(self.next, self.next + math.ceil((stopped_at - self.start) * self.rate) + 1)
        return [
            {
                "user": self.user.index,
                "kind": self.kind,
                "due": self.due(number),
                "sent": None,
                "done": stopped_at,
                "status": "unsent",
            }
            for number in slots
            if self.due(number) < stopped_at
        ]


async def _page_load(user: Innocent, port: int, timeout: float) -> dict[str, Any]:
    """The chat page over a new connection, as a browser opening it."""
    response = await http_request(
        port,
        "GET",
        "/chats",
        headers={"Cookie": user.cookie},
        local_address=user.address,
        timeout=timeout,
    )
    return {
        "ok": response.status == 200,
        **({} if response.status == 200 else {"error": response.status}),
    }


async def run_innocents(
    spec: dict[str, Any], emit: Callable[[dict], None], stop: asyncio.Event
) -> None:
    """Connect the users, say ready, run the lanes until ``stop`` (or ``max_seconds``),
    then emit every request's record."""
    port, timeout = spec["port"], spec["request_timeout_s"]
    users = [Innocent(i, u["name"], u["address"], u["cookie"]) for i, u in enumerate(spec["users"])]
    for user in users:
        user.sock = await SioSocket.open(port, user.cookie, user.address)
    chat_id = general_chat_id(await call_ok(users[0].sock, "list_chats", {}))
    for user in users:
        await call_ok(user.sock, "join_chat", {"chat_id": chat_id})
        await call_ok(
            user.sock,
            "message_sent",
            {
                "chat_id": chat_id,
                "body": f"{user.name} is here",
                "client_id": f"inn-{user.index}-0",
            },
        )

    def seen(user: Innocent) -> Callable[[str, Any], None]:
        def on_event(_name: str, data: Any) -> None:
            message = (data or {}).get("message") if isinstance(data, dict) else None
            if isinstance(message, dict) and message.get("chat_id") == chat_id:
                user.latest_id = max(user.latest_id, message.get("id", 0))

        return on_event

    for user in users:
        user.sock.on_event = seen(user)
        user.latest_id = max(user.latest_id, 1)
    records: list[dict[str, Any]] = []
    stopping = asyncio.Event()
    start = time.monotonic() + 0.2
    emit({"event": "ready", "t": start, "chat_id": chat_id})
    # One lane per user and kind of request (a browser awaits each kind separately), the
    # lanes' requests spread evenly over each period.
    lane_rate = spec["socket_rate_per_user"] / len(SOCKET_KINDS)
    http_rate = spec["http_rate_per_user"]
    lanes = []
    for user in users:
        for number, kind in enumerate(SOCKET_KINDS):
            share = (user.index * len(SOCKET_KINDS) + number) / (len(users) * len(SOCKET_KINDS))
            request = functools.partial(_socket_request, user, kind, chat_id, timeout)
            sequential = kind == "message_sent"
            lanes.append(
                Lane(user, kind, lane_rate, start + share / lane_rate, request, sequential)
            )
        if http_rate > 0:
            share = (user.index + 0.5) / len(users)
            request = functools.partial(_page_load, user, port, timeout)
            lanes.append(
                Lane(user, "page_load", http_rate, start + share / http_rate, request, False)
            )
    tasks = [asyncio.create_task(lane.run(stopping, timeout, records)) for lane in lanes]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), spec["max_seconds"])
    stopped_at = time.monotonic()
    stopping.set()
    # Each lane ends once its requests in flight are answered or timed out.
    await asyncio.wait(tasks, timeout=timeout + 5)
    for task in tasks:
        task.cancel()
    for user in users:
        user.sock.close()
    for lane in lanes:
        records.extend(lane.unsent(stopped_at))
    emit({"event": "records", "records": sorted(records, key=lambda r: r["due"])})


def innocents_main() -> None:
    """``--innocents``: the spec on stdin's first line; "stop" on a later line ends it."""
    spec = json.loads(sys.stdin.readline())

    def emit(record: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def wait_for_stop() -> None:
            sys.stdin.readline()  # "stop", or the end of stdin if the parent went away
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=wait_for_stop, daemon=True).start()
        try:
            await run_innocents(spec, emit, stop)
        except Exception as error:  # reported to the parent, which raises it
            emit({"event": "error", "error": f"{type(error).__name__}: {error}"})

    asyncio.run(main())


# -- the disturbances ------------------------------------------------------------------------


@dataclass
class Context:
    """What a disturbance works with: the server, its config, the attacker's session."""

    server: servers.Server
    config: dict[str, Any]
    folder: Path
    attacker: Browser
    attacker_socket: SioSocket | None = None
    general_id: int = 0
    channel_id: int = 0
    prepared: dict[str, Any] = field(default_factory=dict)


Span = tuple[float, float, dict[str, Any]]


async def do_quiet(ctx: Context) -> Span:
    """Nothing at all, for as long as a disturbance lasts."""
    start = time.monotonic()
    await asyncio.sleep(ctx.config["seconds"])
    return start, time.monotonic(), {}


LOCK_SCRIPT = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


async def do_lock(ctx: Context) -> Span:
    """Another process takes SQLite's write lock and holds it."""
    seconds = ctx.config["seconds"]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LOCK_SCRIPT,
        str(ctx.server.database_path),
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        line = await asyncio.wait_for(process.stdout.readline(), STEP_TIMEOUT_S)
        start = time.monotonic()
        if line.strip() != b"locked":
            raise RuntimeError("the lock holder did not get the lock")
        await asyncio.wait_for(process.wait(), seconds + STEP_TIMEOUT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    end = time.monotonic()
    return start, end, {"lock_held_s": round(end - start, 2)}


async def prepare_burst(ctx: Context) -> None:
    """The frames, made before the clock starts."""
    packet = event_packet("join_chat", {"chat_id": ctx.general_id})
    ctx.prepared["frames"] = b"".join(websocket_frame(packet) for _ in range(ctx.config["frames"]))


async def do_burst(ctx: Context) -> Span:
    """One socket writes a burst of join_chat frames without ack ids, then one list_chats
    with an ack: its answer says the server has got through the burst."""
    sock = ctx.attacker_socket
    start = time.monotonic()
    sock.writer.write(ctx.prepared.pop("frames"))
    await asyncio.wait_for(sock.writer.drain(), ctx.config["timeout_s"])
    written = time.monotonic()
    try:
        reply = await sock.call(
            "list_chats", {}, max(1.0, ctx.config["timeout_s"] - (written - start))
        )
        outcome = "answered" if reply.get("ok") else f"refused: {reply.get('error')}"
    except TimeoutError:
        outcome = "no answer in time"
    except ConnectionError:
        outcome = "socket closed by the server"
    end = time.monotonic()
    return (
        start,
        end,
        {
            "frames": ctx.config["frames"],
            "written_s": round(written - start, 3),
            "through_s": round(end - start, 3),
            "after_the_burst": outcome,
        },
    )


def make_picture(path: Path, side: int) -> None:
    """A PNG of side x side pixels of one colour: small to send, huge to decode."""
    from PIL import Image

    if not path.exists():
        Image.new("RGB", (side, side), (40, 120, 200)).save(path, "PNG", compress_level=9)


async def prepare_picture(ctx: Context) -> None:
    """The picture (once per run of the benchmark) and the form's body parts."""
    side = ctx.config["side"]
    path = ctx.folder.parent / f"picture-{side}.png"
    make_picture(path, side)
    ctx.prepared["picture"] = path.read_bytes()
    ctx.prepared["token"] = await ctx.attacker.csrf_token("/chats")


def multipart(fields: dict[str, str], file_name: str, content: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with ``fields`` and one file; and its content type."""
    boundary = "bench" + os.urandom(12).hex()
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


async def do_picture(ctx: Context) -> Span:
    """The attacker uploads the picture a few times in a row."""
    picture, token = ctx.prepared["picture"], ctx.prepared["token"]
    uploads = []
    start = time.monotonic()
    for number in range(ctx.config["uploads"]):
        fields = {"chat_id": str(ctx.channel_id), "client_id": f"pic-{number}", "csrf_token": token}
        body, content_type = multipart(fields, "big.png", picture)
        began = time.monotonic()
        try:
            response = await ctx.attacker.request(
                "POST",
                "/upload",
                body,
                content_type,
                ctx.config["timeout_s"],
                {"X-CSRFToken": token, "Accept": "application/json"},
            )
            outcome: Any = response.status
        except TimeoutError:
            outcome = "timeout"
        uploads.append({"status": outcome, "seconds": round(time.monotonic() - began, 3)})
    end = time.monotonic()
    side = ctx.config["side"]
    return (
        start,
        end,
        {
            "picture": f"{side}x{side} PNG, {len(picture) / 1024:.0f} KiB",
            "megapixels": round(side * side / 1e6, 1),
            "uploads": uploads,
        },
    )


async def do_logins(ctx: Context) -> Span:
    """Rounds of parallel logins of one account, each one right."""
    parallel, timeout = ctx.config["parallel"], ctx.config["timeout_s"]
    name = ctx.prepared["attacker_name"]
    rounds = []
    start = time.monotonic()
    for _ in range(ctx.config["rounds"]):
        began = time.monotonic()
        browsers = [Browser(ctx.server.port, ATTACKER_ADDRESS) for _ in range(parallel)]
        outcomes = await asyncio.gather(
            *(
                b.post_form("/login", {"username": name, "password": PASSWORD}, timeout)
                for b in browsers
            ),
            return_exceptions=True,
        )
        rounds.append(
            {
                "logged_in": sum(outcome == 303 for outcome in outcomes),
                "failed": [str(o) for o in outcomes if o != 303],
                "seconds": round(time.monotonic() - began, 3),
            }
        )
    end = time.monotonic()
    return start, end, {"parallel": parallel, "rounds": rounds}


def raise_open_files(wanted: int) -> int:
    """Raise this process's soft open-files limit towards ``wanted``; the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(max(soft, wanted), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return max(soft, target)


async def do_idle(ctx: Context) -> Span:
    """Connections from one address, each sending half a request line, held open."""
    count, hold = ctx.config["connections"], ctx.config["hold_s"]
    if count > MAX_IDLE_CONNECTIONS:
        raise ValueError(f"at most {MAX_IDLE_CONNECTIONS} idle connections")
    if raise_open_files(count + 500) < count + 100:
        raise RuntimeError(f"the open-files limit is too low for {count} connections")
    gate = asyncio.Semaphore(200)
    failures: dict[str, int] = {}

    async def open_one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        async with gate:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(HOST, ctx.server.port, local_addr=(IDLE_ADDRESS, 0)),
                    5,
                )
            except (OSError, TimeoutError) as error:
                failures[type(error).__name__] = failures.get(type(error).__name__, 0) + 1
                return None
            writer.write(b"GET /login HT")
            return reader, writer

    start = time.monotonic()
    opened = [c for c in await asyncio.gather(*(open_one() for _ in range(count))) if c]
    all_open = time.monotonic()
    watchers = [asyncio.create_task(reader.read(1)) for reader, _writer in opened]
    if watchers:
        await asyncio.wait(watchers, timeout=hold)
    closed_early = sum(task.done() for task in watchers)
    held_at_end = servers.established_connections(ctx.server.port).get(IDLE_ADDRESS, 0)
    for task in watchers:
        task.cancel()
    for _reader, writer in opened:
        writer.transport.abort()
    end = time.monotonic()
    return (
        start,
        end,
        {
            "connections": count,
            "opened": len(opened),
            "failed": failures,
            "opening_s": round(all_open - start, 3),
            "closed_by_server_within_hold": closed_early,
            "established_at_end_of_hold": held_at_end,
            "hold_s": hold,
        },
    )


async def prepare_nonreader(ctx: Context) -> None:
    """Fill the attacker's channel with large messages; measure one page of them."""
    sock = ctx.attacker_socket
    first = await call_ok(
        sock, "message_sent", {"chat_id": ctx.channel_id, "body": "start", "client_id": "big-0"}
    )
    body = "\U0001f600" * ctx.config["body_chars"]
    for number in range(1, ctx.config["messages"] + 1):
        await call_ok(
            sock,
            "message_sent",
            {"chat_id": ctx.channel_id, "body": body, "client_id": f"big-{number}"},
        )
    after_id = first["message"]["id"]
    reply = await call_ok(
        sock,
        "message_history_is_scrolled_to_the_bottom",
        {"chat_id": ctx.channel_id, "after_id": after_id},
    )
    ctx.prepared.update(
        after_id=after_id,
        page_messages=len(reply["messages"]),
        page_bytes=sock.last_ack_bytes,
    )


async def do_nonreader(ctx: Context) -> Span:
    """A socket that never reads asks for the page again and again, then holds on."""
    payload = {"chat_id": ctx.channel_id, "after_id": ctx.prepared["after_id"]}
    sock = await SioSocket.open(
        ctx.server.port,
        ctx.attacker.cookie_header,
        NONREADER_ADDRESS,
        read=False,
        receive_buffer=NONREADER_RECEIVE_BUFFER,
    )
    start = time.monotonic()
    try:
        sock.send_packets(
            [
                event_packet("message_history_is_scrolled_to_the_bottom", payload, number)
                for number in range(1, ctx.config["requests"] + 1)
            ]
        )
        await asyncio.wait_for(sock.writer.drain(), STEP_TIMEOUT_S)
        await asyncio.sleep(ctx.config["hold_s"])
        still = servers.established_connections(ctx.server.port).get(NONREADER_ADDRESS, 0)
    finally:
        sock.close()
    end = time.monotonic()
    return (
        start,
        end,
        {
            "requests": ctx.config["requests"],
            "page_messages": ctx.prepared["page_messages"],
            "page_bytes": ctx.prepared["page_bytes"],
            "hold_s": ctx.config["hold_s"],
            "connected_at_end_of_hold": bool(still),
        },
    )


DISTURBANCES: dict[
    str, tuple[Callable[[Context], Awaitable[None]] | None, Callable[[Context], Awaitable[Span]]]
] = {
    "quiet": (None, do_quiet),
    "lock": (None, do_lock),
    "burst": (prepare_burst, do_burst),
    "picture": (prepare_picture, do_picture),
    "logins": (None, do_logins),
    "idle": (None, do_idle),
    "nonreader": (prepare_nonreader, do_nonreader),
}


# -- one run: a fresh server, the users, the disturbance -------------------------------------


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process and of the whole machine, and the clock."""
    snapshot = {}
    for name, pid in pids.items():
        with contextlib.suppress(OSError):
            snapshot[name] = cpu_seconds(pid)
    jiffies = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = jiffies[3] + jiffies[4]
    snapshot["machine"] = (sum(jiffies) - idle) / os.sysconf("SC_CLK_TCK")
    snapshot["wall"] = time.monotonic()
    return snapshot


def cpu_shares(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Per cent of one core each used between two snapshots; ``others`` is the rest of the
    machine (of 100 x cores): work that is not this benchmark's."""
    wall = after["wall"] - before["wall"]
    shares = {
        name: round(100 * (after[name] - before[name]) / wall, 1)
        for name in before
        if name != "wall" and name in after
    }
    ours = sum(value for name, value in shares.items() if name != "machine")
    shares["others"] = round(max(0.0, shares["machine"] - ours), 1)
    return shares


async def _read_record(stream: asyncio.StreamReader, timeout: float) -> dict[str, Any]:
    line = await asyncio.wait_for(stream.readline(), timeout)
    if not line:
        raise RuntimeError("the innocent users' process ended early")
    record = json.loads(line)
    if record.get("event") == "error":
        raise RuntimeError(f"the innocent users failed: {record['error']}")
    return record


async def _sample_rss(
    server: servers.Server, samples: list[tuple[float, int]], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        with contextlib.suppress(OSError, AttributeError):
            samples.append((time.monotonic(), server.rss_kib()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


async def _disturb(
    name: str, server: servers.Server, config: dict[str, Any], folder: Path
) -> dict[str, Any]:
    port = server.port
    users = [
        (f"innocent{i}", Browser(port, INNOCENT_ADDRESS.format(i + 1)))
        for i in range(config["users"])
    ]
    attacker_name = "disturber"
    attacker = Browser(port, ATTACKER_ADDRESS)
    await asyncio.gather(
        *(browser.register(n) for n, browser in users), attacker.register(attacker_name)
    )
    ctx = Context(server, config[name], folder, attacker, prepared={"attacker_name": attacker_name})
    ctx.attacker_socket = await SioSocket.open(port, attacker.cookie_header, ATTACKER_ADDRESS)
    ctx.general_id = general_chat_id(await call_ok(ctx.attacker_socket, "list_chats", {}))
    created = await call_ok(ctx.attacker_socket, "create_channel", {"name": f"disturbance-{name}"})
    ctx.channel_id = created["chat"]["id"]
    prepare, disturb = DISTURBANCES[name]
    if prepare is not None:
        await prepare(ctx)

    span_bound = _span_bound(name, config)
    spec = {
        "port": port,
        "users": [{"name": n, "address": b.address, "cookie": b.cookie_header} for n, b in users],
        "socket_rate_per_user": config["socket_rate_per_user"],
        "http_rate_per_user": config["http_rate_per_user"],
        "request_timeout_s": config["request_timeout_s"],
        "max_seconds": config["lead_s"] + span_bound + config["tail_s"] + 30,
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.disturbance",
        "--innocents",
        cwd=servers.ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=2**26,
        preexec_fn=servers.set_niceness,
    )
    samples: list[tuple[float, int]] = []
    sampling = asyncio.Event()
    sampler = asyncio.create_task(_sample_rss(server, samples, sampling))
    try:
        child.stdin.write((json.dumps(spec) + "\n").encode())
        await child.stdin.drain()
        ready = await _read_record(child.stdout, STEP_TIMEOUT_S)
        await asyncio.sleep(max(0.0, ready["t"] - time.monotonic()) + config["lead_s"])
        rss_before = server.rss_kib()
        pids = {"server": server.pid, "innocents": child.pid, "benchmark": os.getpid()}
        cpu_before = cpu_snapshot(pids)
        load_before = os.getloadavg()[0]
        start, end, facts = await asyncio.wait_for(disturb(ctx), span_bound)
        cpu_after = cpu_snapshot(pids)
        cpu_during = cpu_after["server"] - cpu_before["server"] if "server" in cpu_after else None
        await asyncio.sleep(config["tail_s"])
        stopped = time.monotonic()
        child.stdin.write(b"stop\n")
        await child.stdin.drain()
        records = (await _read_record(child.stdout, config["request_timeout_s"] + 30))["records"]
    finally:
        sampling.set()
        await sampler
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
        if ctx.attacker_socket is not None:
            ctx.attacker_socket.close()
    peak = max((rss for t, rss in samples if start <= t <= stopped), default=rss_before)
    windows = {
        "before": summarize(records, ready["t"], start),
        "during": summarize(records, start, end),
        "after": summarize(records, end, stopped),
    }
    order = check_order(records, server.database_path)
    for record in records:  # kept with times in seconds from the start of the disturbance
        for key in ("due", "sent", "done"):
            if record[key] is not None:
                record[key] = round(record[key] - start, 4)
    return {
        "disturbance": name,
        "config": config[name],
        "facts": facts,
        "span_s": round(end - start, 3),
        "lead_s": round(start - ready["t"], 3),
        "tail_s": round(stopped - end, 3),
        "windows": windows,
        "order": order,
        "server": {
            "alive": server.process.poll() is None,
            "rss_before_mib": round(rss_before / 1024, 1),
            "rss_peak_mib": round(peak / 1024, 1),
            "rss_growth_mib": round((peak - rss_before) / 1024, 1),
            "cpu_during_s": None if cpu_during is None else round(cpu_during, 2),
        },
        # Per cent of one core during the disturbance; the machine's of 100 x its cores.
        "cpu_pct_during": cpu_shares(cpu_before, cpu_after),
        "loadavg_before": round(load_before, 2),
        "records": records,
    }


def _span_bound(name: str, config: dict[str, Any]) -> float:
    """The longest a disturbance may take before the run is abandoned."""
    own = config[name]
    return (
        own.get("seconds", 0)
        + own.get("hold_s", 0)
        + own.get("timeout_s", 0) * own.get("uploads", own.get("rounds", 1))
        + 2 * STEP_TIMEOUT_S
    )


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` of 1) of ``values``."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def summarize(records: list[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    """The requests due in [start, end): how many, how they ended, how long they waited
    (one that timed out counts with its timeout, one never sent with the end of the run:
    lower bounds)."""
    chosen = [r for r in records if start <= r["due"] < end]

    def figures(group: list[dict[str, Any]]) -> dict[str, Any]:
        waits = [(r["done"] - r["due"]) * 1000 for r in group]
        responses = [(r["done"] - r["sent"]) * 1000 for r in group if r["sent"] is not None]
        statuses = [r["status"] for r in group]
        return {
            "requests": len(group),
            "ok": statuses.count("ok"),
            "errors": statuses.count("error"),
            "timeouts": statuses.count("timeout"),
            "closed": statuses.count("closed"),
            # Due, but never sent before the end: the lane was still waiting for an answer.
            "unsent": statuses.count("unsent"),
            # From when the request was due: what the user waited.
            "p50_ms": _round(percentile(waits, 0.5)),
            "p99_ms": _round(percentile(waits, 0.99)),
            "max_ms": _round(max(waits, default=None)),
            # From when it was sent (later than due when the one before it was late).
            "response_p50_ms": _round(percentile(responses, 0.5)),
            "response_p99_ms": _round(percentile(responses, 0.99)),
        }

    kinds = sorted({r["kind"] for r in chosen})
    errors = sorted({str(r["error"]) for r in chosen if r.get("error") is not None})
    return {
        **figures(chosen),
        "error_texts": errors[:5],
        "by_kind": {kind: figures([r for r in chosen if r["kind"] == kind]) for kind in kinds},
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def check_order(records: list[dict[str, Any]], database_path: Path | None) -> dict[str, Any]:
    """Whether each innocent user's acknowledged messages got increasing ids in the order
    sent, and are stored under those ids."""
    sends = [r for r in records if r["kind"] == "message_sent" and r["status"] == "ok"]
    in_order = True
    for user in {r["user"] for r in sends}:
        ids = [r["message_id"] for r in sorted(sends, key=lambda r: r["due"]) if r["user"] == user]
        in_order = in_order and all(a < b for a, b in zip(ids, ids[1:], strict=False))
    stored: dict[str, int] = {}
    if database_path is not None:
        with contextlib.closing(
            sqlite3.connect(f"file:{database_path}?mode=ro", uri=True, timeout=30)
        ) as db:
            stored = dict(
                db.execute("SELECT client_id, id FROM messages WHERE client_id LIKE 'inn-%'")
            )
    kept = sum(stored.get(r["client_id"]) == r["message_id"] for r in sends)
    return {
        "acked_messages": len(sends),
        "stored_as_acked": kept,
        "in_order": in_order and kept == len(sends),
        "all_requests_ok": all(r["status"] == "ok" for r in records),
    }


# The settings that put a benchmarked chat's data in the benchmark's folder: kept.
DATA_SETTINGS = {"DATABASE_URL", "SECRET_KEY", "SESSION_FILE_DIR", "UPLOAD_FOLDER"}
SHIPPED_DEFAULTS = (
    "import json, settings; "
    "print(json.dumps({k: v for k, v in settings.DEFAULTS.items() if v is not None}))"
)


def shipped_settings(checkout: Path, folder: Path) -> dict[str, str]:
    """What the benchmarks' servers change (a cheap password hash, every limit out of the
    way...) set back to the checkout's own defaults: the chat as it ships, its data kept
    under ``folder``."""
    found = subprocess.run(
        [sys.executable, "-c", SHIPPED_DEFAULTS],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        check=False,
    )
    if found.returncode != 0:
        raise RuntimeError(f"cannot read the defaults of {checkout}: {found.stderr[-500:]}")
    defaults = json.loads(found.stdout)
    changed = servers.chat_settings(folder, checkout)
    return {
        name: _environment_value(defaults[name])
        for name in changed
        if name in defaults and name not in DATA_SETTINGS
    }


def _environment_value(value: Any) -> str:
    """A setting's value as its environment variable spells it (settings.from_env)."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def run_one(name: str, config: dict[str, Any], checkout: Path, folder: Path) -> dict[str, Any]:
    """One disturbance on a fresh server of ``checkout``, with the chat's own settings but
    for the disturbance's."""
    where = folder / name
    settings = {
        **shipped_settings(checkout, where),
        **config["server_settings"],
        **config[name].get("settings", {}),
    }
    server = servers.start_chat(where, checkout, **settings)
    try:
        result = asyncio.run(_disturb(name, server, config, where))
    except Exception as error:
        raise RuntimeError(f"{name}: {error}\nserver output:\n{server.log_tail()}") from error
    finally:
        server.stop()
    result["server_settings"] = settings
    return result


def run(checkout: Path, names: list[str], config: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Each named disturbance in turn, ``quiet`` first as the baseline. One that cannot be
    measured (its server did not start, a step overran its bound) is reported as failed,
    and the others still run."""
    runs: dict[str, Any] = {}
    for name in names:
        started = time.monotonic()
        try:
            runs[name] = run_one(name, config, checkout, folder)
        except (RuntimeError, OSError, TimeoutError) as error:
            runs[name] = {"disturbance": name, "failed": str(error) or type(error).__name__}
        runs[name]["seconds"] = round(time.monotonic() - started, 1)
        print(f"[disturbance] {name}: {runs[name]['seconds']} s", file=sys.stderr, flush=True)
    return {"config": config, "runs": runs}


# -- the table -------------------------------------------------------------------------------


def _what(result: dict[str, Any]) -> str:
    facts, name = result["facts"], result["disturbance"]
    if name == "quiet":
        return f"nothing ({result['span_s']:.1f} s)"
    if name == "lock":
        return f"BEGIN IMMEDIATE held {facts['lock_held_s']:.1f} s"
    if name == "burst":
        return (
            f"{facts['frames']:,} join_chat frames; through in {facts['through_s']:.1f} s "
            f"({facts['after_the_burst']})"
        )
    if name == "picture":
        statuses = ", ".join(str(u["status"]) for u in facts["uploads"])
        return f"{len(facts['uploads'])} uploads of {facts['picture']} ({statuses})"
    if name == "logins":
        done = sum(r["logged_in"] for r in facts["rounds"])
        rounds, parallel = len(facts["rounds"]), facts["parallel"]
        return f"{rounds} rounds of {parallel} parallel logins ({done} logged in)"
    if name == "idle":
        return (
            f"{facts['opened']:,} of {facts['connections']:,} opened, "
            f"held {facts['hold_s']:g} s; "
            f"{facts['closed_by_server_within_hold']:,} closed by the server"
        )
    if name == "nonreader":
        mib = (facts["page_bytes"] or 0) / 2**20
        kept = "still connected" if facts["connected_at_end_of_hold"] else "disconnected"
        return (
            f"{facts['requests']} x a {facts['page_messages']}-message page "
            f"({mib:.1f} MiB), held {facts['hold_s']:g} s ({kept})"
        )
    return ""


def table(results: dict[str, Any]) -> str:
    """The markdown table: the innocent users during each disturbance."""
    runs = results["runs"]
    base = runs.get("quiet", {}).get("windows", {}).get("during", {})

    def ratio(value: float | None, key: str) -> str:
        if value is None or not base.get(key):
            return "–"
        times = value / base[key]
        return f"{times:,.0f}×" if times >= 10 else f"{times:.1f}×"

    def ms(value: float | None) -> str:
        return "–" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.1f}"

    def yes(flag: bool) -> str:
        return "yes" if flag else "**no**"

    rows = [
        "| disturbance | what it did | requests due during it | waited p50 (ms) | p99 (ms) "
        "| max (ms) | p50 / quiet | p99 / quiet | response p50 (ms) | response p99 (ms) "
        "| errors / timeouts / closed / not sent | all answered ok | messages in order "
        "| server RSS growth (MiB) | server CPU during it (s) | other work (% of a core) |",
        "|" + "---|" * 16,
    ]
    for name, result in runs.items():
        if "failed" in result:
            reason = result["failed"].splitlines()[0].replace("|", "/")
            rows.append(f"| {name} | not measured: {reason} |" + " |" * 14)
            continue
        during, server, order = result["windows"]["during"], result["server"], result["order"]
        failed = " / ".join(str(during[key]) for key in ("errors", "timeouts", "closed", "unsent"))
        cpu = "–" if server["cpu_during_s"] is None else f"{server['cpu_during_s']:.1f}"
        rows.append(
            f"| {name} | {_what(result)} | {during['requests']} | {ms(during['p50_ms'])} "
            f"| {ms(during['p99_ms'])} | {ms(during['max_ms'])} "
            f"| {ratio(during['p50_ms'], 'p50_ms')} | {ratio(during['p99_ms'], 'p99_ms')} "
            f"| {ms(during['response_p50_ms'])} "
            f"| {ms(during['response_p99_ms'])} | {failed} | {yes(order['all_requests_ok'])} "
            f"| {yes(order['in_order'])} | {server['rss_growth_mib']:+,.0f} | {cpu} "
            f"| {result.get('cpu_pct_during', {}).get('others', '–')} |"
        )
    return "\n".join(rows)


def compare(labelled: dict[str, dict[str, Any]]) -> str:
    """Runs side by side (e.g. before and after): for each disturbance and run, what the
    innocent users waited (p50, p99, max, in ms), how many requests failed of how many due,
    and the server's memory growth."""
    names = [name for name in NAMES if any(name in r["runs"] for r in labelled.values())]
    head = "| disturbance |" + "".join(
        f" {label}: p50 / p99 / max (ms) | {label}: failed of due | {label}: RSS growth (MiB) |"
        for label in labelled
    )
    rows = [head, "|---|" + "---|---|---|" * len(labelled)]
    for name in names:
        cells = []
        for results in labelled.values():
            result = results["runs"].get(name)
            if result is None or "failed" in result:
                cells.append(" not measured | | |" if result else " not run | | |")
                continue
            during = result["windows"]["during"]
            failed = sum(during.get(key, 0) for key in ("errors", "timeouts", "closed", "unsent"))
            waits = " / ".join(
                f"{during[key]:,.0f}" if during[key] is not None else "–"
                for key in ("p50_ms", "p99_ms", "max_ms")
            )
            growth = result["server"]["rss_growth_mib"]
            cells.append(f" {waits} | {failed} of {during['requests']} | {growth:+,.0f} |")
        rows.append(f"| {name} |" + "".join(cells))
    return "\n".join(rows)


def main() -> None:
    """Parse the command line, run the disturbances, write the JSON, print the table."""
    if sys.argv[1:2] == ["--innocents"]:
        innocents_main()
        return
    if sys.argv[1:2] == ["--compare"]:
        # --compare label=results.json ...: the runs side by side.
        pairs = [item.split("=", 1) for item in sys.argv[2:]]
        print(compare({label: json.loads(Path(path).read_text()) for label, path in pairs}))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, default=servers.ROOT, help="checkout to measure")
    parser.add_argument("--only", help=f"comma-separated, of {', '.join(NAMES)} (default all)")
    parser.add_argument("--out", type=Path, help="results file (JSON)")
    parser.add_argument("--label", default="main", help="name of this run")
    parser.add_argument("--tiny", action="store_true", help="the smoke test's size")
    servers.add_nice_option(parser, "the servers, the users and this process")
    args = parser.parse_args()
    servers.NICE = args.nice
    servers.set_niceness()
    names = [n.strip() for n in (args.only or ",".join(NAMES)).split(",") if n.strip()]
    unknown = set(names) - set(NAMES)
    if unknown:
        parser.error(f"unknown disturbance: {', '.join(sorted(unknown))}")
    config = copy.deepcopy(TINY if args.tiny else FULL)
    checkout = args.checkout.resolve()
    from bench.run import commit_of, machine

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-disturbance-") as folder:
        results = run(checkout, names, config, Path(folder))
    results.update(
        label=args.label,
        commit=commit_of(checkout),
        machine=machine(),
        loadavg_end=os.getloadavg(),
        nice=args.nice,
        total_seconds=round(time.monotonic() - started, 1),
    )
    out = args.out or servers.ROOT / "bench" / "results" / f"disturbance-{args.label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
