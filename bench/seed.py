"""History written straight into a running chat's SQLite database, for tests and benchmarks
that need more messages, or older ones, than a person would type (the server limits how
fast anyone sends). People and chats are made through the real pages first; only messages
are seeded."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from bench.servers import Server


@contextmanager
def connect(server: Server) -> Iterator[sqlite3.Connection]:
    """A write connection to the server's database, committed on leaving."""
    conn = sqlite3.connect(server.database_path, timeout=10)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def user_id(server: Server, name: str) -> int:
    with connect(server) as conn:
        return conn.execute("SELECT id FROM users WHERE username = ?", (name,)).fetchone()[0]


def channel_id(server: Server, name: str) -> int:
    with connect(server) as conn:
        row = conn.execute("SELECT id FROM chats WHERE kind = 'channel' AND name = ?", (name,))
        return row.fetchone()[0]


def ms(moment: datetime) -> int:
    """A timezone-aware datetime as the server stores times: ms since the epoch."""
    return int(moment.timestamp() * 1000)


def add_messages(
    server: Server, chat_id: int, messages: Iterable[tuple[str, str, datetime]]
) -> list[int]:
    """Store ``(sender name, body, sent at)`` messages in order; return their ids."""
    ids = []
    with connect(server) as conn:
        senders = dict(conn.execute("SELECT username, id FROM users").fetchall())
        for sender, body, sent_at in messages:
            cursor = conn.execute(
                "INSERT INTO messages (chat_id, sender_id, body, created_at, client_id)"
                " VALUES (?, ?, ?, ?, ?)",
                (chat_id, senders[sender], body, ms(sent_at), uuid.uuid4().hex),
            )
            ids.append(cursor.lastrowid)
        if ids:
            conn.execute("UPDATE chats SET last_message_id = ? WHERE id = ?", (ids[-1], chat_id))
    return ids


def spread(
    senders: list[str], bodies: list[str], start: datetime, step: timedelta
) -> list[tuple[str, str, datetime]]:
    """Messages from ``senders`` in turn, one every ``step`` from ``start``."""
    return [(senders[i % len(senders)], body, start + i * step) for i, body in enumerate(bodies)]


def set_read_pointer(server: Server, chat_id: int, name: str, last_read_id: int) -> None:
    """Where ``name`` has read ``chat_id`` up to."""
    with connect(server) as conn:
        conn.execute(
            "UPDATE chat_members SET last_read_message_id = ? WHERE chat_id = ? AND user_id ="
            " (SELECT id FROM users WHERE username = ?)",
            (last_read_id, chat_id, name),
        )
