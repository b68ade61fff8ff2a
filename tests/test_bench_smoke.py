"""The benchmark code runs on a tiny load and accounts for every message.

These tests check that the load generator, the relay and the history measurements work
end to end (real ``python app.py``, real Socket.IO clients); they assert no timings: the
figures belong in bench/README.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import history, report, scenarios, servers

# It starts real servers: `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

TINY_CAPACITY = {
    "users": 4,
    "group_size": 2,
    "rates": [10, 20],
    "step_seconds": 1,
    "max_connections": 200,
    "timeout_seconds": 60,
}


def assert_each_message_acked_delivered_once_and_stored(kind: str, step: dict) -> None:
    """One step of a sweep: every message acknowledged, stored, and delivered to each other
    member once, with nothing lost, doubled or refused."""
    assert step["sent"] == step["acked"] == step["stored_ids"] > 0, (kind, step)
    assert step["delivered"] == step["expected_deliveries"] == step["sent"], (kind, step)
    assert step["lost"] == step["duplicates"] == step["ack_errors"] == 0, (kind, step)


def test_pairs_of_users_get_every_message_from_chat_and_relay(tmp_path: Path) -> None:
    """Each message reaches the other member once, and the chat stores every one."""
    results = {
        kind: scenarios.capacity(kind, tmp_path, servers.ROOT, TINY_CAPACITY)
        for kind in ("chat", "relay")
    }
    for kind, result in results.items():
        assert [step["offered_rate"] for step in result["steps"]] == [10, 20], kind
        for step in result["steps"]:
            assert_each_message_acked_delivered_once_and_stored(kind, step)
            assert step["latency_ms"]["count"] == step["delivered"]
    assert results["chat"]["stored_messages"] == results["chat"]["sent"]
    assert results["chat"]["every_message_stored"] is True
    assert "| main |" in report.capacity_table([{"label": "main", "capacity": results}])


def test_one_message_reaches_every_member_of_a_channel(tmp_path: Path) -> None:
    """Fan-out: every member of General Talk receives each message from the sender."""
    config = {"members": 5, "messages": 2, "max_connections": 200, "timeout_seconds": 60}
    for kind in ("chat", "relay"):
        result = scenarios.fanout(kind, tmp_path, servers.ROOT, config)
        assert result["receivers"] == 4
        assert [m["delivered"] for m in result["per_message"]] == [4, 4], kind
        assert result["lost"] == result["duplicates"] == 0, kind


def test_open_connections_are_counted_and_stay_alive(tmp_path: Path) -> None:
    """Connections: every socket opened is still open, and a message reaches each one."""
    config = {
        "users": 2,
        "stages": [3, 6],
        "concurrency": 4,
        "max_connections": 200,
        "timeout_seconds": 60,
    }
    for kind in ("chat", "relay"):
        result = scenarios.connections(kind, tmp_path, servers.ROOT, config)
        assert [(s["connections"], s["open"]) for s in result["stages"]] == [(3, 3), (6, 6)]
        assert result["broadcast"]["delivered"] == 5, kind
        assert result["stages"][-1]["server_rss_kib"] > 0


def test_history_pages_match_offset_pages_and_the_chat_list_is_one_query(tmp_path: Path) -> None:
    """Keyset pages hold the same messages as OFFSET pages; 200 chats cost one statement."""
    result = history.run(300, tmp_path, servers.ROOT, budget_s=0.01)
    assert [page["depth"] for page in result["pages"]] == [0, 290]
    assert result["chat_list"]["chats"] == 200
    assert result["chat_list"]["one_query"]["statements"] == 1
    assert result["chat_list"]["query_per_chat"]["statements"] == 201
    assert "| main |" in report.history_table([{"label": "main", "history": result}])


def websocket_extensions_answered(port: int) -> str | None:
    """The ``Sec-WebSocket-Extensions`` a server answers to an offer of permessage-deflate
    (None when it declines), from a raw handshake on 127.0.0.1:``port``."""
    import socket

    offer = (
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(offer.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                break
            head += chunk
    lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 101"), lines
    headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    answers = {name.strip().lower(): value.strip() for name, value in headers.items()}
    return answers.get("sec-websocket-extensions")


def test_the_relay_declines_websocket_compression_like_the_chat(tmp_path: Path) -> None:
    """A fair ceiling: neither server compresses its frames (the chat refuses an anonymous
    socket only after the handshake, so both answer the offer)."""
    from urllib.parse import urlsplit

    from tests.live_server import start_server

    for server in (
        servers.start_relay(tmp_path / "relay", max_connections=200),
        start_server(tmp_path / "chat"),
    ):
        try:
            assert websocket_extensions_answered(urlsplit(server.url).port) is None
        finally:
            server.stop()
