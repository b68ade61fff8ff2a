"""A crash mid-stream loses nothing acknowledged: the server is killed with SIGKILL while a
client sends as fast as acks come back, then restarted on the same database."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid

import pytest
import socketio

from tests.live_server import RealClient, start_server

# It starts real servers: `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

GENERAL = 1


def test_every_acknowledged_message_survives_a_sigkill(tmp_path):
    folder = tmp_path / "crash"
    server = start_server(folder, SEND_RATE_LIMIT="1000 per second")
    alice = RealClient(server, "alice").register()
    alice.connect()
    acked: list[dict] = []
    stopped = threading.Event()

    def send_until_it_fails() -> None:
        n = 0
        while not stopped.is_set():
            try:
                ack = alice.call(
                    "message_sent",
                    {"chat_id": GENERAL, "body": f"burst {n}", "client_id": uuid.uuid4().hex},
                    timeout=3,
                )
            except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
                return
            if ack and ack.get("ok"):
                acked.append(ack["message"])
            n += 1

    sender = threading.Thread(target=send_until_it_fails)
    sender.start()
    deadline = time.monotonic() + 20
    while len(acked) < 150 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(acked) >= 150, f"only {len(acked)} acks before the crash: {server.describe()}"
    server.crash()  # mid-stream: the sender is still sending
    stopped.set()
    sender.join(10)
    alice.disconnect()

    restarted = start_server(folder)
    try:
        conn = sqlite3.connect(restarted.database_path)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            stored = {
                row[0]: (row[1], row[2])
                for row in conn.execute("SELECT id, client_id, body FROM messages")
            }
        finally:
            conn.close()
        for message in acked:
            assert stored.get(message["id"]) == (message["client_id"], message["body"])
        again = RealClient(restarted, "alice").login()
        again.connect()
        history = again.call("join_chat", {"chat_id": GENERAL})["messages"]
        assert acked[-1]["id"] in [m["id"] for m in history]
        again.disconnect()
    finally:
        restarted.stop()
