"""A passing failure (a locked or full database, PostgreSQL or Redis restarting, every pooled
connection busy) answers "try again" with ``retryable: true``, logged in one line; any other
unexpected error keeps the generic answer, which retrying would not fix. Each failure here
is a real exception of its driver, made by meeting the condition."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psycopg2
import pytest
import redis
from limits.errors import StorageError

import db_commands
import transient
from bench.servers import free_port
from database import BUSY_MESSAGE, DatabaseBusy
from tests.test_attachments import PNG, stored_files, upload
from transient import UNAVAILABLE, is_transient, unavailable_answer

GENERIC = {"ok": False, "error": "Something went wrong on the server. Please try again."}
RETRYABLE = {"ok": False, "error": UNAVAILABLE, "code": "unavailable", "retryable": True}

E = TypeVar("E", bound=BaseException)


def caught(kind: type[E], attempt: Callable[[], object], otherwise: str) -> E:
    """The error of ``kind`` that ``attempt`` raises; fail saying ``otherwise`` if none."""
    try:
        attempt()
    except kind as error:
        return error
    raise AssertionError(otherwise)


def sqlite_locked(tmp_path: Path) -> sqlite3.OperationalError:
    """SQLITE_BUSY: another connection holds the write lock and nobody waits for it."""
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    with contextlib.closing(holder), contextlib.closing(other):
        return caught(
            sqlite3.OperationalError,
            lambda: other.execute("BEGIN IMMEDIATE"),
            "the second writer got the lock",
        )


def sqlite_full(tmp_path: Path) -> sqlite3.OperationalError:
    """SQLITE_FULL: the database may not grow (as on a full disk)."""
    conn = sqlite3.connect(tmp_path / "full.db", isolation_level=None)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("PRAGMA max_page_count = 3")
    with contextlib.closing(conn):
        return caught(
            sqlite3.OperationalError,
            lambda: conn.execute("INSERT INTO t VALUES (?)", (b"x" * 100_000,)),
            "the database grew past its limit",
        )


def sqlite_lock_timeout(_tmp_path: Path) -> sqlite3.OperationalError:
    """What a database layer raises itself after waiting its full time for the lock."""

    class LockTimeout(sqlite3.OperationalError):
        pass

    return LockTimeout("The database stayed locked; the write can be tried again.")


def postgres_refused(_tmp_path: Path) -> psycopg2.OperationalError:
    """PostgreSQL down: nothing listens where it should."""
    return caught(
        psycopg2.OperationalError,
        lambda: psycopg2.connect(host="127.0.0.1", port=free_port(), dbname="x", connect_timeout=2),
        "a connection opened to a closed port",
    )


def postgres_closed(_tmp_path: Path) -> psycopg2.InterfaceError:
    """A pooled connection that the server closed (a restart) is used again."""
    from tests.postgres import postgres_schema

    with postgres_schema() as url:
        conn = psycopg2.connect(url)
        conn.close()
    return caught(psycopg2.InterfaceError, conn.cursor, "a closed connection gave a cursor")


def redis_down(_tmp_path: Path) -> redis.exceptions.ConnectionError:
    """Redis down: nothing listens where it should."""
    client = redis.Redis(port=free_port(), socket_connect_timeout=2, retry=None)
    return caught(redis.exceptions.ConnectionError, client.ping, "a closed port answered PING")


def redis_slow(_tmp_path: Path) -> redis.exceptions.TimeoutError:
    return redis.exceptions.TimeoutError("Timeout reading from socket")


def limiter_storage_down(tmp_path: Path) -> StorageError:
    """The rate limiter's storage (Redis) failing, wrapped by the limits library."""
    return StorageError(redis_down(tmp_path))


def pool_busy(_tmp_path: Path) -> DatabaseBusy:
    """What the database layer raises when every pooled connection stayed in use."""
    return DatabaseBusy()


TRANSIENT: dict[str, Callable[[Path], BaseException]] = {
    "sqlite locked": sqlite_locked,
    "sqlite disk full": sqlite_full,
    "sqlite lock timeout": sqlite_lock_timeout,
    "postgresql down": postgres_refused,
    "postgresql connection closed": postgres_closed,
    "redis down": redis_down,
    "redis timeout": redis_slow,
    "limiter storage down": limiter_storage_down,
    "every pooled connection busy": pool_busy,
}


def sqlite_no_table(tmp_path: Path) -> sqlite3.OperationalError:
    """A faulty statement: the same request would fail the same way forever."""
    with contextlib.closing(sqlite3.connect(tmp_path / "empty.db")) as conn:
        return caught(
            sqlite3.OperationalError,
            lambda: conn.execute("SELECT x FROM missing"),
            "a missing table answered",
        )


PERMANENT: dict[str, Callable[[Path], BaseException]] = {
    "a bug": lambda _path: KeyError("sender_name"),
    "a runtime error": lambda _path: RuntimeError("boom"),
    "a faulty SQL statement": sqlite_no_table,
    "a redis reply error": lambda _path: redis.exceptions.ResponseError("WRONGTYPE"),
}


def failing(error: BaseException) -> Callable[..., None]:
    def fail(*_args: object, **_kwargs: object) -> None:
        raise error

    return fail


@pytest.mark.parametrize("kind", sorted(TRANSIENT))
def test_a_passing_failure_is_classified_transient(tmp_path, kind):
    assert is_transient(TRANSIENT[kind](tmp_path))


@pytest.mark.parametrize("kind", sorted(PERMANENT))
def test_other_failures_are_not_transient(tmp_path, kind):
    assert not is_transient(PERMANENT[kind](tmp_path))


@pytest.mark.parametrize("kind", sorted(TRANSIENT))
def test_a_message_meeting_a_passing_failure_is_answered_retryable(
    tmp_path, monkeypatch, alice, kind
):
    """The message is not stored, the ack says it may be sent again, and the same message
    (same client_id) is stored once when sent again after the failure passed."""
    monkeypatch.setattr(
        db_commands, "insert_message_for_member", failing(TRANSIENT[kind](tmp_path))
    )
    payload = {"chat_id": 1, "body": "hello", "client_id": "again-1"}
    # The database's own "busy" says so in its words; every other failure in the general ones.
    sentence = BUSY_MESSAGE if kind == "every pooled connection busy" else UNAVAILABLE
    assert alice.call("message_sent", payload) == {**RETRYABLE, "error": sentence}
    monkeypatch.undo()
    first = alice.call("message_sent", payload)
    assert first["ok"] and first["message"]["body"] == "hello"
    assert alice.call("message_sent", payload)["message"]["id"] == first["message"]["id"]


@pytest.mark.parametrize("kind", sorted(PERMANENT))
def test_an_unexpected_error_keeps_the_generic_answer(tmp_path, monkeypatch, alice, kind):
    monkeypatch.setattr(db_commands, "list_chats_for_member", failing(PERMANENT[kind](tmp_path)))
    assert alice.call("list_chats") == GENERIC


def test_every_event_answers_retryable_for_a_passing_failure(tmp_path, monkeypatch, alice):
    monkeypatch.setattr(db_commands, "list_chats_for_member", failing(sqlite_locked(tmp_path)))
    monkeypatch.setattr(db_commands, "get_chat_for_member", failing(redis_down(tmp_path)))
    assert alice.call("list_chats") == RETRYABLE
    assert alice.call("join_chat", {"chat_id": 1}) == RETRYABLE
    assert alice.tab.is_connected()


def test_a_passing_failure_is_logged_in_one_line_without_a_traceback(
    tmp_path, monkeypatch, alice, caplog
):
    """Many clients meeting the same outage make one line, not one traceback each."""
    monkeypatch.setattr(transient, "_throttle", transient._Throttle())
    monkeypatch.setattr(db_commands, "list_chats_for_member", failing(sqlite_locked(tmp_path)))
    with caplog.at_level(logging.WARNING, logger="chat"):
        for _ in range(5):
            assert alice.call("list_chats") == RETRYABLE
    lines = [r for r in caplog.records if "list_chats" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].exc_info is None
    assert "database is locked" in lines[0].getMessage()


def test_an_upload_meeting_a_passing_failure_is_503_retryable_and_keeps_no_file(
    tmp_path, monkeypatch, app, alice, bob
):
    chat = alice.direct_chat_with(bob)
    monkeypatch.setattr(db_commands, "insert_message", failing(sqlite_locked(tmp_path)))
    response = upload(alice, chat, "pic.png", PNG, client_id="up-1")
    assert response.status_code == 503
    assert response.get_json() == unavailable_answer()
    assert stored_files(app) == []
    monkeypatch.undo()
    again = upload(alice, chat, "pic.png", PNG, client_id="up-1")
    assert again.status_code == 201
    assert len(stored_files(app)) == 2  # the picture and its thumbnail, once


def test_a_page_meeting_a_passing_failure_is_a_503_page(tmp_path, monkeypatch, alice):
    monkeypatch.setattr(db_commands, "list_chats_for_member", failing(postgres_refused(tmp_path)))
    response = alice.http.get("/", headers={"Accept": "text/html"})
    assert response.status_code == 503
    assert UNAVAILABLE.encode() in response.data


def test_an_upload_meeting_an_unexpected_error_is_500(tmp_path, monkeypatch, alice, bob):
    chat = alice.direct_chat_with(bob)
    monkeypatch.setattr(db_commands, "insert_message", failing(RuntimeError("boom")))
    response = upload(alice, chat, "pic.png", PNG)
    assert response.status_code == 500
    assert "retryable" not in response.get_json()
