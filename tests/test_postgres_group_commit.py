"""PostgreSQL: writes waiting together share one transaction (one COMMIT), a write that
fails is refused alone and the others are kept, and a plain message is one statement."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from flask import Flask

import database
import db_commands
from app import create_app
from tests.conftest import User, make_config, query, register
from tests.postgres import postgres_schema

GENERAL = 1
WAIT_S = 10.0


@pytest.fixture
def pg_app(tmp_path: Path) -> Iterator[Flask]:
    """An app on a PostgreSQL schema of its own."""
    with postgres_schema() as url:
        app = create_app(make_config(tmp_path / "app", DATABASE_URL=url))
        try:
            yield app
        finally:
            app.extensions["database"].close()


def person(app: Flask, name: str) -> User:
    """A registered user with a connected tab."""
    http = app.test_client()
    assert register(http, name).status_code == 303
    with http.session_transaction() as session:
        user = User(app, name, session["user_id"], http)
    user.open_tab()
    return user


@contextlib.contextmanager
def chat_row_locked(app: Flask, chat_id: int) -> Iterator[None]:
    """Another session holds the chat's row: a message to it (whose trigger moves the
    chat's last message) waits until the block ends."""
    holder = psycopg2.connect(app.config["DATABASE_URL"])
    try:
        holder.cursor().execute("SELECT id FROM chats WHERE id = %s FOR UPDATE", (chat_id,))
        yield
    finally:
        holder.rollback()
        holder.close()


def started(group: Any) -> bool:
    """Whether a write leads a group that has taken every write queued (it is now being
    written), so the next writes queue for the group after it."""
    return group._leading and group.pending_writes() == 0


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_messages_sent_together_share_one_commit_and_a_bad_write_fails_alone(pg_app):
    """While one message waits on the server, eleven more and a channel whose name is
    taken queue behind it; they are then written in one transaction: one COMMIT stores the
    eleven messages, each sender's ack carries their own message, and the channel is
    refused without spoiling them."""
    people = [person(pg_app, f"user{n}") for n in range(12)]
    extra = people[0].open_tab()
    group = pg_app.extensions["database"].group_commit
    acks: dict[str, Any] = {}

    def send(user: User) -> None:
        acks[user.name] = user.call(
            "message_sent",
            {"chat_id": GENERAL, "body": f"hello from {user.name}", "client_id": user.name},
        )

    def taken_name() -> None:
        acks["channel"] = people[0].call("create_channel", {"name": "general talk"}, tab=extra)

    with chat_row_locked(pg_app, GENERAL):
        groups_before = group.groups_committed
        first = threading.Thread(target=send, args=(people[0],))
        first.start()
        wait_for(lambda: started(group), "the first message never started")
        workers = [threading.Thread(target=send, args=(user,)) for user in people[1:]]
        workers.append(threading.Thread(target=taken_name))
        for worker in workers:
            worker.start()
        wait_for(lambda: group.pending_writes() == len(workers), "the writes never queued")
    for worker in [first, *workers]:
        worker.join(WAIT_S)

    assert group.groups_committed == groups_before + 2, "the first alone, then one group"
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
    stored = query(pg_app, "SELECT id, sender_id, body FROM messages ORDER BY id")
    assert sorted((row["id"], row["body"]) for row in stored) == sorted(
        (ack["message"]["id"], ack["message"]["body"]) for ack in acks.values()
    )
    last = query(pg_app, "SELECT last_message_id FROM chats WHERE id = ?", (GENERAL,))
    assert last[0]["last_message_id"] == max(row["id"] for row in stored)


def grouped_between_messages(pg_app: Any, user_id: int, name: str, fn: Any) -> dict[str, Any]:
    """Message "first" goes alone and waits (its chat's row is held elsewhere); messages
    "a" and "b" and ``fn`` (as ``name``) queue behind it and go as one group. Every
    caller's result, by name."""
    db: database.PostgresDatabase = pg_app.extensions["database"]

    def message(client_id: str) -> Any:
        return db_commands.insert_message_for_member(GENERAL, user_id, "hi", client_id)

    results: dict[str, Any] = {}

    def call(label: str, write: Any, *args: Any) -> None:
        with pg_app.app_context():
            results[label] = db.run("write", write, args, {})

    with chat_row_locked(pg_app, GENERAL):
        first = threading.Thread(target=call, args=("first", message, "first"))
        first.start()
        wait_for(lambda: started(db.group_commit), "the first message never started")
        others = [
            threading.Thread(target=call, args=("a", message, "a")),
            threading.Thread(target=call, args=(name, fn)),
            threading.Thread(target=call, args=("b", message, "b")),
        ]
        for other in others:
            other.start()
        wait_for(lambda: db.group_commit.pending_writes() == len(others), "the writes never queued")
    for thread in [first, *others]:
        thread.join(WAIT_S)
    return results


def test_a_write_that_swallows_its_error_is_written_alone_and_the_others_kept(pg_app):
    """A write that catches its own statement's error leaves the shared transaction
    refusing every statement: it is run again alone, and the writes beside it stay."""
    with pg_app.app_context():
        user_id = db_commands.insert_user("alice", "x", pg_app.config["DEFAULT_CHANNEL"])

    def swallow() -> str:
        conn = database.current_connection()
        try:
            conn.execute("INSERT INTO chats (kind, name, created_at) VALUES ('nonsense', 'x', 0)")
        except database.IntegrityError:
            return "refused"
        return "stored"

    results = grouped_between_messages(pg_app, user_id, "swallow", swallow)

    assert results["swallow"] == "refused"
    stored = query(pg_app, "SELECT client_id FROM messages ORDER BY id")
    assert sorted(row["client_id"] for row in stored) == ["a", "b", "first"]
    for name in ("first", "a", "b"):
        membership, row, created = results[name]
        assert created and row["client_id"] == name and membership["kind"] == "channel"


def test_a_plain_message_is_one_statement_and_a_resend_returns_the_first(pg_app):
    """The message's INSERT carries the membership; a resend of its client_id stores
    nothing and answers the stored message; a stranger stores nothing."""
    with pg_app.app_context():
        alice = db_commands.insert_user("alice", "x", pg_app.config["DEFAULT_CHANNEL"])
        bob = db_commands.insert_user("bob", "x", pg_app.config["DEFAULT_CHANNEL"])
        direct = db_commands.get_or_insert_direct_chat(alice, alice)[0]
        first = db_commands.insert_message_for_member(direct, alice, "one", "c1")
        second = db_commands.insert_message_for_member(direct, alice, "two", "c2")
        again = db_commands.insert_message_for_member(direct, alice, "one", "c1")
        stranger = db_commands.insert_message_for_member(direct, bob, "hey", "c3")

    assert first[0]["kind"] == "direct" and first[0]["last_message_id"] is None and first[2]
    assert second[0]["last_message_id"] == first[1]["id"] and second[2]
    assert again[1]["id"] == first[1]["id"] and again[1]["body"] == "one" and not again[2]
    assert stranger == (None, None, False)
    stored = query(pg_app, "SELECT client_id FROM messages WHERE chat_id = ?", (direct,))
    assert sorted(row["client_id"] for row in stored) == ["c1", "c2"]


class Deadlock(Exception):
    """What psycopg2 raises when PostgreSQL broke a deadlock by rolling this side back."""

    pgcode = "40P01"


def test_a_group_the_server_rolls_back_is_written_one_write_at_a_time(pg_app):
    """A deadlock is nobody's fault: every write of the group is written again alone, and
    each caller gets its own result."""
    with pg_app.app_context():
        user_id = db_commands.insert_user("alice", "x", pg_app.config["DEFAULT_CHANNEL"])
    in_group: list[bool] = []

    def deadlocked_once() -> str:
        conn = database.current_connection()
        in_group.append(conn.raw.get_transaction_status() != 0)
        if in_group[-1]:
            raise Deadlock("deadlock detected")
        return "written alone"

    results = grouped_between_messages(pg_app, user_id, "deadlocked", deadlocked_once)

    assert results["deadlocked"] == "written alone" and in_group == [True, False]
    stored = query(pg_app, "SELECT client_id FROM messages ORDER BY id")
    assert sorted(row["client_id"] for row in stored) == ["a", "b", "first"]
    assert all(results[name][2] for name in ("first", "a", "b"))


def test_a_groups_messages_are_written_in_the_order_of_their_chats(pg_app):
    """Messages queued for chats in any order are written in the order of the chats' ids,
    so that two workers' groups lock the chats' rows in one order (no deadlock)."""
    db: database.PostgresDatabase = pg_app.extensions["database"]
    with pg_app.app_context():
        names = ["alice", "bob", "carol"]
        users = [db_commands.insert_user(n, "x", pg_app.config["DEFAULT_CHANNEL"]) for n in names]
        chats = [db_commands.get_or_insert_direct_chat(u, u)[0] for u in users]
    group = db.group_commit

    def send(chat_id: int, user_id: int, client_id: str) -> None:
        with pg_app.app_context():
            db_commands.insert_message_for_member(chat_id, user_id, "hi", client_id)

    with chat_row_locked(pg_app, GENERAL):
        first = threading.Thread(target=send, args=(GENERAL, users[0], "first"))
        first.start()
        wait_for(lambda: started(group), "the first message never started")
        queued = []
        for index in (2, 0, 1):
            queued.append(
                threading.Thread(target=send, args=(chats[index], users[index], names[index]))
            )
            queued[-1].start()
            wait_for(lambda: group.pending_writes() == len(queued), "the write never queued")
    for thread in [first, *queued]:
        thread.join(WAIT_S)

    stored = query(pg_app, "SELECT client_id FROM messages WHERE client_id <> 'first' ORDER BY id")
    assert [row["client_id"] for row in stored] == names


def test_a_message_the_database_refuses_fails_alone_and_the_others_are_stored(pg_app):
    """A message whose INSERT fails on the server (an id out of BIGINT's range) among
    messages sent together: its caller gets the error, the others are stored and acked."""
    db: database.PostgresDatabase = pg_app.extensions["database"]
    with pg_app.app_context():
        user_id = db_commands.insert_user("alice", "x", pg_app.config["DEFAULT_CHANNEL"])
    group = db.group_commit
    results: dict[str, Any] = {}

    def send(client_id: str, reply_to_id: int | None = None) -> None:
        with pg_app.app_context():
            try:
                results[client_id] = db_commands.insert_message_for_member(
                    GENERAL, user_id, "hi", client_id, reply_to_id=reply_to_id
                )
            except psycopg2.DataError as error:
                results[client_id] = error

    with chat_row_locked(pg_app, GENERAL):
        first = threading.Thread(target=send, args=("first",))
        first.start()
        wait_for(lambda: started(group), "the first message never started")
        commits_before = group.groups_committed
        others = [
            threading.Thread(target=send, args=("a",)),
            threading.Thread(target=send, args=("bad", 2**70)),
            threading.Thread(target=send, args=("b",)),
        ]
        for other in others:
            other.start()
        wait_for(lambda: group.pending_writes() == len(others), "the writes never queued")
    for thread in [first, *others]:
        thread.join(WAIT_S)

    assert isinstance(results["bad"], psycopg2.DataError)
    assert all(results[name][2] for name in ("first", "a", "b"))
    assert group.groups_committed == commits_before + 2, "the first alone, then a and b"
    stored = query(pg_app, "SELECT client_id FROM messages ORDER BY id")
    assert sorted(row["client_id"] for row in stored) == ["a", "b", "first"]
