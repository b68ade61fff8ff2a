"""Another process holds SQLite's write lock for about 8 seconds (a sqlite3 shell, a backup)
while the real server (``python app.py``, eventlet) runs: an innocent user's reads all
answer in order during the lock, a send that outlasts its timeout fails with a sentence
saying to try again, and afterwards sends succeed with nothing acknowledged missing."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.live_server import RealClient, start_server

GENERAL = 1
LOCK_HELD_S = 8.0
WRITE_TIMEOUT_S = 3
BUSY = "The database is busy; try again in a moment."

# A process of its own: BEGIN IMMEDIATE, say so, hold the lock until told (or stdin closes).
LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""


@contextlib.contextmanager
def write_lock_in_another_process(path: Path, hold_s: float) -> Iterator[subprocess.Popen]:
    """Hold the write lock on ``path`` from another process for at least ``hold_s``."""
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    started = time.monotonic()
    try:
        assert locker.stdout.readline().strip() == "locked"
        yield locker
        time.sleep(max(0.0, started + hold_s - time.monotonic()))
    finally:
        locker.stdin.close()
        locker.wait(10)


def lock_is_held(path: Path) -> bool:
    """Whether a write lock is taken on ``path`` right now (tried without waiting)."""
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        return "locked" in str(error)
    finally:
        probe.close()
    return False


def send(client: RealClient, chat_id: int, body: str, client_id: str | None = None) -> Any:
    return client.call(
        "message_sent",
        {"chat_id": chat_id, "body": body, "client_id": client_id or uuid.uuid4().hex},
        timeout=30,
    )


def test_a_write_lock_held_elsewhere_delays_only_the_writes(tmp_path):
    server = start_server(
        tmp_path / "lock",
        SEND_RATE_LIMIT="1000 per second",
        DB_WRITE_TIMEOUT_SECONDS=str(WRITE_TIMEOUT_S),
    )
    alice = bob = None
    try:
        alice = RealClient(server, "alice").register()
        bob = RealClient(server, "bob").register()
        alice.connect()
        bob.connect()
        channel = alice.call("create_channel", {"name": "ops"})["chat"]["id"]
        assert bob.call("join_channel", {"chat_id": channel})["ok"]
        acked = [send(bob, GENERAL, f"before {n}")["message"] for n in range(30)]
        acked.append(send(alice, channel, "in ops")["message"])

        with write_lock_in_another_process(server.database_path, LOCK_HELD_S):
            waiting: dict[str, Any] = {}
            writer = threading.Thread(
                target=lambda: waiting.update(ack=send(alice, GENERAL, "during", "during"))
            )
            writer.start()
            answers = [
                bob.call("join_chat", {"chat_id": GENERAL}),
                bob.call("list_chats"),
                bob.call("join_chat", {"chat_id": channel}),
            ]
            answers.append(
                bob.call(
                    "message_history_is_scrolled_to_the_top",
                    {"chat_id": GENERAL, "before_id": answers[0]["messages"][0]["id"]},
                )
            )
            answers.append(
                bob.call(
                    "message_history_is_scrolled_to_the_bottom",
                    {"chat_id": GENERAL, "after_id": answers[3]["messages"][-1]["id"]},
                )
            )
            # Bob was answered while alice's write still waited for the lock: the server's
            # loop was free the whole time.
            assert "ack" not in waiting, waiting
            writer.join(30)
            assert lock_is_held(server.database_path)

        assert [a["ok"] for a in answers] == [True] * 5, answers
        opened, listed, ops, older, newer = answers
        in_general = [m["id"] for m in acked if m["chat_id"] == GENERAL]
        assert [m["id"] for m in opened["messages"]] == in_general[-20:]
        assert {c["id"] for c in listed["chats"]} == {GENERAL, channel}
        assert [m["body"] for m in ops["messages"]] == ["in ops"]
        assert [m["id"] for m in older["messages"]] == in_general[-30:-20]
        assert [m["id"] for m in newer["messages"]] == in_general[-20:]
        assert waiting["ack"] == {
            "ok": False,
            "error": BUSY,
            "code": "unavailable",
            "retryable": True,
        }

        retried = send(alice, GENERAL, "during", "during")
        assert retried["ok"], retried
        acked.append(retried["message"])
        for n in range(5):
            ack = send(bob, GENERAL, f"after {n}")
            assert ack["ok"], ack
            acked.append(ack["message"])
        stored = {
            row["id"]: (row["client_id"], row["body"])
            for row in server.query("SELECT id, client_id, body FROM messages")
        }
        assert len(stored) == len(acked)
        for message in acked:
            assert stored[message["id"]] == (message["client_id"], message["body"])
    finally:
        for client in (alice, bob):
            if client is not None:
                client.disconnect()
        server.stop()
