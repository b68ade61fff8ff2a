"""History and chat-list costs on a large database, through the app's own db_commands.

A SQLite database made by the app's own schema code (``database.Database.init_schema``)
is filled straight through sqlite3 (one
transaction of executemany): one channel with ``--messages`` messages, and a reader with
200 chats (that channel, General Talk and direct chats), some of them unread. Then, inside
an app context, it times a page of history at several depths cut by message id (the app's
``list_messages_before`` / ``list_messages_after``) beside the same page cut with OFFSET,
and the reader's chat list (``list_chats_for_member``) beside one query per chat.

Run: ``python -m bench.history --messages 1000000 --out history.json [--app-dir DIR]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

PAGE_SIZE = 10  # MESSAGES_ON_SCROLL
CHATS_OF_READER = 200
MESSAGES_PER_DIRECT_CHAT = 20
MIN_REPEATS = 5
MAX_REPEATS = 200
TIME_PER_CASE_S = 1.0
BODY = "The quick brown fox jumps over the lazy dog; message number {:d} of the benchmark."


def seed(path: str, messages: int, database: Any) -> dict[str, Any]:
    """Create the database and fill it; return the ids the measurements need."""
    schema = database.Database(f"sqlite:///{path}", str(Path(path).parent))
    schema.init_schema()
    schema.close()
    db = sqlite3.connect(path, isolation_level=None)
    now = int(time.time() * 1000)
    db.execute("BEGIN")
    users = ["alice", "bob", "reader"] + [f"partner{n}" for n in range(CHATS_OF_READER - 2)]
    db.executemany(
        "INSERT INTO users (username, password_hash, created_at) VALUES (?, 'x', ?)",
        [(name, now) for name in users],
    )
    ids = dict(db.execute("SELECT username, id FROM users").fetchall())
    alice, bob, reader = ids["alice"], ids["bob"], ids["reader"]
    general = db.execute("SELECT id FROM chats WHERE name = 'General Talk'").fetchone()[0]
    history = db.execute(
        "INSERT INTO chats (kind, name, created_by, created_at) "
        "VALUES ('channel', 'History', ?, ?)",
        (alice, now),
    ).lastrowid
    db.executemany(
        "INSERT INTO chat_members (chat_id, user_id, joined_at) VALUES (?, ?, ?)",
        [(general, user_id, now) for user_id in ids.values()]
        + [(history, user_id, now) for user_id in (alice, bob, reader)],
    )
    db.executemany(
        "INSERT INTO messages (chat_id, sender_id, body, created_at, client_id) "
        "VALUES (?, ?, ?, ?, ?)",
        (
            (history, alice if n % 2 else bob, BODY.format(n), now - messages + n, f"h{n}")
            for n in range(messages)
        ),
    )
    first_id, last_id = db.execute(
        "SELECT MIN(id), MAX(id) FROM messages WHERE chat_id = ?", (history,)
    ).fetchone()
    # The reader has 200 chats: History, General Talk and direct chats, each with a few
    # messages of which 0 to 19 are unread.
    for n in range(CHATS_OF_READER - 2):
        partner = ids[f"partner{n}"]
        low, high = sorted((reader, partner))
        chat_id = db.execute(
            "INSERT INTO chats (kind, direct_key, created_by, created_at) "
            "VALUES ('direct', ?, ?, ?)",
            (f"{low}:{high}", reader, now),
        ).lastrowid
        rows = [
            (chat_id, partner if m % 3 else reader, BODY.format(m), now + m, f"d{n}x{m}")
            for m in range(MESSAGES_PER_DIRECT_CHAT)
        ]
        db.executemany(
            "INSERT INTO messages (chat_id, sender_id, body, created_at, client_id) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        newest = db.execute("SELECT MAX(id) FROM messages WHERE chat_id = ?", (chat_id,)).fetchone()
        read_up_to = newest[0] - n % MESSAGES_PER_DIRECT_CHAT
        db.executemany(
            "INSERT INTO chat_members (chat_id, user_id, last_read_message_id, joined_at) "
            "VALUES (?, ?, ?, ?)",
            [(chat_id, reader, read_up_to, now), (chat_id, partner, newest[0], now)],
        )
    db.execute(
        "UPDATE chats SET last_message_id = "
        "(SELECT MAX(id) FROM messages WHERE messages.chat_id = chats.id)"
    )
    db.execute(
        "UPDATE chat_members SET last_read_message_id = ? WHERE chat_id = ? AND user_id = ?",
        (last_id - 50, history, reader),
    )
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.close()
    return {"chat_id": history, "first_id": first_id, "last_id": last_id, "reader_id": reader}


def measure(call: Callable[[], Any], budget_s: float = TIME_PER_CASE_S) -> dict[str, float]:
    """Median and p95 time of ``call`` in microseconds (warm cache), repeated for about
    ``budget_s`` seconds (at least MIN_REPEATS, at most MAX_REPEATS times)."""
    for _ in range(2):
        call()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < MAX_REPEATS and (
        len(times) < MIN_REPEATS or time.perf_counter() - started < budget_s
    ):
        begin = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - begin) / 1000)
    times.sort()
    return {
        "median_us": round(statistics.median(times), 1),
        "p95_us": round(times[min(len(times) - 1, int(0.95 * len(times)))], 1),
        "repeats": len(times),
    }


def offset_page_before(db_commands: Any, chat_id: int, skip: int) -> list[dict[str, Any]]:
    """The page ``skip`` messages below the newest, cut with OFFSET (for comparison only)."""
    rows = db_commands.get_db().all(
        db_commands._MESSAGE_SELECT + " WHERE m.chat_id = ? ORDER BY m.id DESC LIMIT ? OFFSET ?",
        (chat_id, PAGE_SIZE, skip),
    )
    # With their reactions, as the keyset pages have them.
    return db_commands._with_reactions(chat_id, list(reversed(rows)))


def offset_page_after(db_commands: Any, chat_id: int, skip: int) -> list[dict[str, Any]]:
    """The page ``skip`` messages above the oldest, cut with OFFSET (for comparison only)."""
    rows = db_commands.get_db().all(
        db_commands._MESSAGE_SELECT + " WHERE m.chat_id = ? ORDER BY m.id LIMIT ? OFFSET ?",
        (chat_id, PAGE_SIZE, skip),
    )
    return db_commands._with_reactions(chat_id, rows)


def depths_for(messages: int) -> list[int]:
    """First page, 10k deep, 100k deep (when there is room), and the deepest page."""
    deepest = messages - PAGE_SIZE
    return sorted({0, *[d for d in (10_000, 100_000) if d < deepest], deepest})


def page_costs(
    db_commands: Any, ids: dict[str, Any], messages: int, budget_s: float = TIME_PER_CASE_S
) -> list[dict[str, Any]]:
    """Keyset and OFFSET pages at each depth, scrolling up and scrolling down."""
    chat_id, first_id, last_id = ids["chat_id"], ids["first_id"], ids["last_id"]
    rows = []
    for depth in depths_for(messages):
        before_id = None if depth == 0 else last_id - depth + 1
        after_id = first_id - 1 + depth
        keyset_up = db_commands.list_messages_before(chat_id, before_id, PAGE_SIZE)
        offset_up = offset_page_before(db_commands, chat_id, depth)
        keyset_down = db_commands.list_messages_after(chat_id, after_id, PAGE_SIZE)
        offset_down = offset_page_after(db_commands, chat_id, depth)
        assert keyset_up == offset_up and keyset_down == offset_down, "pages differ"
        cases = {
            "keyset_before": partial(
                db_commands.list_messages_before, chat_id, before_id, PAGE_SIZE
            ),
            "offset_before": partial(offset_page_before, db_commands, chat_id, depth),
            "keyset_after": partial(db_commands.list_messages_after, chat_id, after_id, PAGE_SIZE),
            "offset_after": partial(offset_page_after, db_commands, chat_id, depth),
        }
        row: dict[str, Any] = {"depth": depth}
        for name, call in cases.items():
            row[name] = measure(call, budget_s)
        rows.append(row)
    return rows


def count_statements(db_commands: Any, call: Callable[[], Any]) -> int:
    """How many SQL statements ``call`` runs on the app context's connection."""
    statements: list[str] = []
    raw = db_commands.get_db().raw  # the sqlite3 connection under the app's wrapper
    raw.set_trace_callback(statements.append)
    try:
        call()
    finally:
        raw.set_trace_callback(None)
    return len(statements)


def chat_list_costs(
    db_commands: Any, reader_id: int, budget_s: float = TIME_PER_CASE_S
) -> dict[str, Any]:
    """The reader's chat list in one query, beside one query per chat."""

    def one_query() -> list[dict[str, Any]]:
        return db_commands.list_chats_for_member(reader_id)

    def query_per_chat() -> list[dict[str, Any]]:
        return [
            db_commands.get_chat_for_member(chat_id, reader_id)
            for chat_id in db_commands.list_chat_ids_for_member(reader_id)
        ]

    chats = one_query()
    return {
        "chats": len(chats),
        "unread_total": sum(chat["unread_count"] for chat in chats),
        "one_query": {
            **measure(one_query, budget_s),
            "statements": count_statements(db_commands, one_query),
        },
        "query_per_chat": {
            **measure(query_per_chat, budget_s),
            "statements": count_statements(db_commands, query_per_chat),
        },
        "channels_to_join": measure(lambda: db_commands.list_channels_to_join(reader_id), budget_s),
    }


def run(
    messages: int, folder: Path, app_dir: Path, budget_s: float = TIME_PER_CASE_S
) -> dict[str, Any]:
    """Seed a database under ``folder`` and measure it with the db_commands of ``app_dir``."""
    sys.path.insert(0, str(app_dir))
    from flask import Flask

    import database
    import db_commands

    path = str(folder / "history.db")
    started = time.perf_counter()
    ids = seed(path, messages, database)
    seed_seconds = time.perf_counter() - started
    app = Flask("bench_history")
    app.config.update(DATABASE_URL=f"sqlite:///{path}", DB_POOL_SIZE=4)
    db_commands.init_app(app)
    # The queries themselves, on the app context's connection: without this, each call
    # would also count a trip to a database thread (checkouts that have them).
    bound = getattr(database, "bound", None)
    with app.app_context(), bound(db_commands.get_db()) if bound else contextlib.nullcontext():
        pages = page_costs(db_commands, ids, messages, budget_s)
        chats = chat_list_costs(db_commands, ids["reader_id"], budget_s)
    return {
        "messages": messages,
        "page_size": PAGE_SIZE,
        "seed_seconds": round(seed_seconds, 1),
        "database_mib": round(Path(path).stat().st_size / 2**20, 1),
        "pages": pages,
        "chat_list": chats,
    }


def main() -> None:
    """Measure and write the results as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--app-dir", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-history-") as folder:
        result = run(args.messages, Path(folder), args.app_dir.resolve())
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
