"""SQLite work runs in database threads: writes waiting together share one COMMIT, a write
the lock keeps waiting past its timeout fails with a sentence that says to try again, and
reads (opening a chat included) answer while another connection holds the write lock."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import database
import db_commands
from app import create_app
from tests.conftest import User, make_config, query, register

GENERAL = 1
WAIT_S = 10.0


@pytest.fixture
def make_sqlite_app(tmp_path: Path) -> Iterator[Any]:
    """``make_sqlite_app(SETTING=value)``: an app on a SQLite file of its own."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        built = create_app(make_config(tmp_path / f"app{len(apps)}", **overrides))
        apps.append(built)
        return built

    yield make
    for built in apps:
        built.extensions["database"].close()


def person(app: Flask, name: str) -> User:
    """A registered user with a connected tab."""
    http = app.test_client()
    assert register(http, name).status_code == 303
    with http.session_transaction() as session:
        user = User(app, name, session["user_id"], http)
    user.open_tab()
    return user


@contextlib.contextmanager
def write_lock(app: Flask) -> Iterator[sqlite3.Connection]:
    """Another connection (a backup, a sqlite3 shell) holds the write lock in the block."""
    holder = sqlite3.connect(app.extensions["database"].path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield holder
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_writes_waiting_together_share_one_commit_and_a_bad_one_fails_alone(make_sqlite_app):
    """Twelve people send while another connection holds the lock; when it is released,
    one COMMIT stores every message once, each sender's ack carries their own message, and
    a channel name already taken, queued among them, is refused without spoiling them."""
    app = make_sqlite_app(DB_WRITE_TIMEOUT_SECONDS=30.0)
    people = [person(app, f"user{n}") for n in range(12)]
    threads = app.extensions["database"].threads
    acks: dict[str, Any] = {}

    def send(user: User) -> None:
        acks[user.name] = user.call(
            "message_sent",
            {"chat_id": GENERAL, "body": f"hello from {user.name}", "client_id": user.name},
        )

    def taken_name() -> None:
        acks["channel"] = people[0].call("create_channel", {"name": "general talk"}, tab=extra)

    extra = people[0].open_tab()
    with write_lock(app):
        groups_before = threads.groups_committed
        workers = [threading.Thread(target=send, args=(user,)) for user in people]
        workers.append(threading.Thread(target=taken_name))
        for worker in workers:
            worker.start()
        wait_for(lambda: threads.pending_writes() == len(workers), "the writes never queued")
    for worker in workers:
        worker.join(WAIT_S)

    assert threads.groups_committed == groups_before + 1, "one COMMIT for the whole group"
    assert acks.pop("channel") == {
        "ok": False,
        "error": "A channel with this name already exists.",
    }
    for user in people:
        ack = acks[user.name]
        assert ack["ok"], ack
        assert (ack["message"]["body"], ack["message"]["sender_id"]) == (
            f"hello from {user.name}",
            user.id,
        )
    stored = query(app, "SELECT id, sender_id, body FROM messages ORDER BY id")
    assert sorted((row["id"], row["body"]) for row in stored) == sorted(
        (ack["message"]["id"], ack["message"]["body"]) for ack in acks.values()
    )
    assert len({row["sender_id"] for row in stored}) == len(people)


def test_a_write_the_lock_outlasts_fails_with_a_retryable_sentence_while_reads_answer(
    make_sqlite_app,
):
    """During another connection's write lock bob opens a chat, pages and lists his chats;
    alice's message fails after its timeout with a sentence saying to try again, and the
    same message sent again after the lock is stored once."""
    app = make_sqlite_app(DB_WRITE_TIMEOUT_SECONDS=0.5, SEND_RATE_LIMIT="1000 per second")
    alice, bob = person(app, "alice"), person(app, "bob")
    sent = [bob.send(GENERAL, f"message {n}") for n in range(25)]

    with write_lock(app):
        opened = bob.call("join_chat", {"chat_id": GENERAL})
        assert opened["ok"], opened
        assert [m["id"] for m in opened["messages"]] == [m["id"] for m in sent[-20:]]
        older = bob.call(
            "message_history_is_scrolled_to_the_top",
            {"chat_id": GENERAL, "before_id": opened["messages"][0]["id"]},
        )
        assert [m["id"] for m in older["messages"]] == [m["id"] for m in sent[-25:-20]]
        chats = bob.call("list_chats")
        assert [c["id"] for c in chats["chats"]] == [GENERAL]
        refused = alice.call(
            "message_sent", {"chat_id": GENERAL, "body": "during", "client_id": "during"}
        )
        assert refused == {
            "ok": False,
            "error": "The database is busy; try again in a moment.",
            "code": "unavailable",
            "retryable": True,
        }

    again = alice.send(GENERAL, "during", client_id="during")
    rows = query(app, "SELECT id FROM messages WHERE client_id = ?", ("during",))
    assert [row["id"] for row in rows] == [again["id"]]
    assert len(query(app, "SELECT id FROM messages")) == len(sent) + 1


def test_opening_a_chat_during_a_lock_answers_and_remembers_it_once_the_lock_is_gone(
    make_sqlite_app,
):
    """join_chat's write of the chat opened last is queued, not awaited: the chat opens
    during the lock, and the write lands when the lock is released."""
    app = make_sqlite_app(DB_WRITE_TIMEOUT_SECONDS=30.0)
    alice = person(app, "alice")
    channel = alice.call("create_channel", {"name": "ops"})["chat"]["id"]
    last_chat = "SELECT last_chat_id FROM users WHERE id = ?"
    with write_lock(app):
        assert alice.call("join_chat", {"chat_id": channel})["ok"]
        assert alice.call("join_chat", {"chat_id": GENERAL})["ok"]
        assert query(app, last_chat, (alice.id,)) == [{"last_chat_id": None}]
    wait_for(
        lambda: query(app, last_chat, (alice.id,)) == [{"last_chat_id": GENERAL}],
        "the chat opened last was never stored",
    )


def test_a_function_marked_as_a_read_cannot_write(make_sqlite_app):
    """Reader threads' connections are read-only: a write marked as a read fails loudly
    instead of taking the write lock outside the writer thread."""
    app = make_sqlite_app()

    @db_commands.read
    def misfiled_write() -> None:
        db_commands.get_db().execute("UPDATE users SET last_chat_id = 1")

    with app.app_context(), pytest.raises(sqlite3.OperationalError, match="readonly"):
        misfiled_write()


def test_the_busy_error_is_an_operational_error_with_a_sentence():
    """Callers that classify SQLite's errors see the busy error as one of them."""
    error = database.DatabaseBusy()
    assert isinstance(error, sqlite3.OperationalError)
    assert str(error) == "The database is busy; try again in a moment."
    assert database.is_busy(error)


def test_the_writer_thread_checkpoints_the_wal(make_sqlite_app):
    """The writing connection never checkpoints by itself (that would sync files where the
    loop may be running): the writer thread moves the WAL into the database file instead."""
    app = make_sqlite_app(SEND_RATE_LIMIT="1000 per second")
    alice = person(app, "alice")
    main_file = Path(app.extensions["database"].path)
    size_before = main_file.stat().st_size
    for n in range(300):
        alice.send(GENERAL, f"message {n} " + "x" * 200)
    wait_for(
        lambda: main_file.stat().st_size > size_before,
        "the messages never left the WAL for the database file",
    )
    assert len(query(app, "SELECT id FROM messages")) == 300
