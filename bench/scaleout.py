"""What scaling out costs per message, measured in one process and one run.

- Database: the statement of one sent message (one INSERT ... SELECT from the sender's
  membership, whose trigger moves the chat's last message), on SQLite and on PostgreSQL,
  sent back to back from one thread (on PostgreSQL each its own commit: for messages
  sent together, see bench/group_commit.py).
- Redis: the two emits of one delivered message, through Redis's message queue (a publish
  each) versus in-process rooms.

    python -m bench.scaleout            # 2,000 messages per round, 5 rounds
    python -m bench.scaleout --messages 200 --rounds 1

Needs the PostgreSQL and Redis of the test suite (TEST_POSTGRES_URL, TEST_REDIS_URL).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask

import db_commands
from app import create_app, socketio
from bench.servers import REDIS_URL, in_process_settings, postgres_schema
from helpers import chat_room, view_room


def rounds_of(work: Callable[[int], None], messages: int, rounds: int) -> list[float]:
    """Microseconds per message of ``work(round)``, one figure per round."""
    figures = []
    for number in range(rounds):
        started = time.perf_counter()
        work(number)
        figures.append((time.perf_counter() - started) / messages * 1e6)
    return figures


def database_cost(app: Flask, messages: int, rounds: int) -> list[float]:
    """Per message: the insert that checks the sender's membership and stores it."""
    with app.app_context():
        user_id = db_commands.insert_user("bench", "x", app.config["DEFAULT_CHANNEL"])
        chat_id = db_commands.get_or_insert_direct_chat(user_id, user_id)[0]

    def send(round_number: int) -> None:
        with app.app_context():
            for n in range(messages):
                # What events.message_sent calls: the membership check and the insert in
                # one unit of work, one statement.
                db_commands.insert_message_for_member(
                    chat_id, user_id, "hello", f"r{round_number}-{n}"
                )

    return rounds_of(send, messages, rounds)


def emit_cost(app: Flask, messages: int, rounds: int) -> list[float]:
    """Per message: the two room emits of a delivered message."""
    payload = {"message": {"id": 1, "chat_id": 7, "body": "hello", "sender_name": "bench"}}

    def deliver(_round: int) -> None:
        with app.app_context():
            for _ in range(messages):
                socketio.emit("message_received_from_current_chat", payload, to=view_room(7))
                socketio.emit("message_received_from_another_chat", payload, to=chat_room(7))

    return rounds_of(deliver, messages, rounds)


def summary(figures: list[float]) -> str:
    return f"{statistics.median(figures):,.0f} µs (min {min(figures):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder, postgres_schema() as pg_url:
        base = Path(folder)
        for name, url in [("SQLite", f"sqlite:///{base / 'chat.db'}"), ("PostgreSQL", pg_url)]:
            app = create_app(in_process_settings(base / name, DATABASE_URL=url))
            results[f"database: {name}"] = database_cost(app, args.messages, args.rounds)
            app.extensions["database"].close()
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        for name, extra in [
            ("in-process rooms", {}),
            ("Redis message queue", {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": prefix}),
        ]:
            app = create_app(in_process_settings(base / name.replace(" ", "-"), **extra))
            results[f"emits: {name}"] = emit_cost(app, args.messages, args.rounds)
            app.extensions["database"].close()
    print(f"| per message ({args.messages:,} messages × {args.rounds} rounds) | median (min) |")
    print("|---|---|")
    for name, figures in results.items():
        print(f"| {name} | {summary(figures)} |")


if __name__ == "__main__":
    main()
