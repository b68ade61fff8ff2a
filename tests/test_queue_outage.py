"""Two real workers (``python app.py``) on one SQLite database and one Redis of the test's
own: Redis is killed while people on both workers keep sending, then started again.

Sends during the outage are refused as retryable (``retryable: true``), never acknowledged
and lost; each worker's listener subscribes again within seconds and tells its own sockets
to ``resync``; the clients, catching up as the browser does, end with every acknowledged
message of the open conversation exactly once, in order.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import socketio

from tests.live_server import LiveServer, RealClient
from tests.own_redis import OwnRedis, workers_on_own_redis
from tests.test_cluster import wait_for

OUTAGE_S = 4
CALL_TIMEOUT_S = 15
RETRY_FIRST_S = 0.2
RETRY_CAP_S = 1.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[OwnRedis, list[LiveServer]]]:
    """Two workers sharing a SQLite file and a Redis that the test may kill."""
    with workers_on_own_redis(tmp_path) as running:
        yield running


class Follower:
    """A person's python-socketio client following one chat as the browser does
    (static/chat.js, conversation.js): it shows the first page, live messages and its own
    acknowledged messages; on ``resync {since}`` it calls list_chats, then join_chat with
    ``after_id`` the newest message shown older than ``since`` (else the oldest shown,
    else the chat opened afresh), and pages down while there is more."""

    def __init__(self, person: RealClient):
        self.person = person
        self.sio = socketio.Client(reconnection=False)
        self.lock = threading.Lock()
        self.chat_id = 0
        self.shown: dict[int, int] = {}  # id -> created_at
        self.live: list[int] = []
        self.resyncs: list[dict[str, Any]] = []
        self.catch_ups: list[list[int]] = []
        self.problems: list[BaseException] = []
        self.refused = 0  # sends answered retryable
        self.sio.on("message_received_from_current_chat", self._current)
        self.sio.on("resync", self._resync)

    @property
    def name(self) -> str:
        return self.person.name

    def connect(self) -> None:
        self.person.connect_socket(self.sio)

    def _show(self, messages: list[dict[str, Any]]) -> None:
        with self.lock:
            for message in messages:
                if message["chat_id"] == self.chat_id:
                    self.shown[message["id"]] = message["created_at"]

    def _current(self, data: dict[str, Any]) -> None:
        with self.lock:
            self.live.append(data["message"]["id"])
        self._show([data["message"]])

    def _resync(self, data: dict[str, Any]) -> None:
        with self.lock:
            self.resyncs.append(data)
        threading.Thread(target=self._catch_up, args=(data["since"],), daemon=True).start()

    def call(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A request, sent again while the answer says it may be."""
        delay = RETRY_FIRST_S
        while True:
            answer = self.sio.call(event, payload, timeout=CALL_TIMEOUT_S)
            if not answer.get("retryable"):
                return answer
            time.sleep(delay)
            delay = min(delay * 2, RETRY_CAP_S)

    def open(self, chat_id: int, after_id: int | None = None) -> list[int]:
        """join_chat (a catch-up with ``after_id``), then the pages below; the ids read."""
        self.chat_id = chat_id
        payload: dict[str, Any] = {"chat_id": chat_id}
        if after_id is not None:
            payload["after_id"] = after_id
        page = self.call("join_chat", payload)
        assert page["ok"], page
        messages = list(page["messages"])
        while page["has_more_after"]:
            page = self.call(
                "message_history_is_scrolled_to_the_bottom",
                {"chat_id": chat_id, "after_id": messages[-1]["id"]},
            )
            assert page["ok"], page
            messages += page["messages"]
        self._show(messages)
        return [message["id"] for message in messages]

    def _catch_up(self, since: int) -> None:
        try:
            listed = self.call("list_chats", {})
            assert any(chat["id"] == self.chat_id for chat in listed["chats"]), listed
            with self.lock:
                older = [i for i, created in self.shown.items() if created < since]
                oldest = min(self.shown, default=0)
            after = max(older) if older else (oldest or None)
            ids = self.open(self.chat_id, after)
            with self.lock:
                self.catch_ups.append(ids)
        except BaseException as error:  # reported by the test, not lost in the thread
            self.problems.append(error)

    def send_until_acknowledged(self, body: str) -> dict[str, Any]:
        """Send with one client_id until stored; only a retryable refusal is acceptable."""
        payload = {"chat_id": self.chat_id, "body": body, "client_id": uuid.uuid4().hex}
        delay = RETRY_FIRST_S
        while True:
            ack = self.sio.call("message_sent", payload, timeout=CALL_TIMEOUT_S)
            if ack.get("ok"):
                self._show([ack["message"]])
                return ack["message"]
            assert ack.get("retryable") is True, f"{self.name}'s {body!r} refused for good: {ack}"
            self.refused += 1
            time.sleep(delay)
            delay = min(delay * 2, RETRY_CAP_S)

    def view(self) -> list[int]:
        """The conversation as the browser draws it: every id shown, in id order."""
        with self.lock:
            return sorted(self.shown)


def test_after_a_redis_restart_every_open_conversation_has_every_acknowledged_message(cluster):
    queue, (first, second) = cluster
    people = [
        Follower(RealClient(worker, f"{name}-{uuid.uuid4().hex[:6]}").register())
        for worker, name in [(first, "alice"), (first, "bob"), (second, "carol"), (second, "dave")]
    ]
    for person in people:
        person.connect()
    carol = people[2]
    channel = carol.call("create_channel", {"name": "outage"})["chat"]["id"]
    for person in people:
        assert person.call("join_channel", {"chat_id": channel})["ok"]
        person.open(channel)

    acked: list[dict[str, Any]] = []
    acked_lock = threading.Lock()
    stop = threading.Event()

    def talk(person: Follower) -> None:
        try:
            n = 0
            while not stop.is_set():
                message = person.send_until_acknowledged(f"{person.name} {n}")
                with acked_lock:
                    acked.append(message)
                n += 1
                time.sleep(0.05)
        except BaseException as error:
            person.problems.append(error)

    talkers = [threading.Thread(target=talk, args=(person,)) for person in people]
    for talker in talkers:
        talker.start()
    try:
        wait_for(lambda: len(acked) >= 20, "the first messages are acknowledged", timeout=30)
        queue.kill()
        time.sleep(OUTAGE_S)  # people keep sending; their sends are refused as retryable
        queue.start()
        wait_for(
            lambda: all(person.catch_ups for person in people),
            "every socket is told to resync and catches up",
            timeout=30,
        )
        count = len(acked)
        wait_for(lambda: len(acked) >= count + 20, "messages flow again", timeout=30)
    finally:
        stop.set()
        for talker in talkers:
            talker.join(timeout=60)
    problems = [problem for person in people for problem in person.problems]
    assert not problems, problems

    stored = first.query("SELECT id FROM messages WHERE chat_id = ? ORDER BY id", (channel,))
    everything = [row["id"] for row in stored]
    assert sorted(message["id"] for message in acked) == everything, "nothing acked was lost"
    assert sum(person.refused for person in people) > 0, "sends met the outage"
    for person in people:
        wait_for(
            lambda p=person: p.view() == everything,
            f"{person.name} shows every acknowledged message once, in order",
            timeout=15,
        )
        assert person.resyncs and all(isinstance(r["since"], int) for r in person.resyncs)
        assert len(person.live) == len(set(person.live)), "no message came live twice"
        for page in person.catch_ups:
            assert page == sorted(set(page)), "a catch-up is in order, each message once"
