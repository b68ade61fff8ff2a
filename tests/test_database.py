"""The connection layer: connections are kept open between uses, and a caller beyond the
pool's size waits for one instead of failing (both databases)."""

from __future__ import annotations

import threading
import time

import database


def test_a_released_connection_is_the_next_one_handed_out(database_url):
    db = database.Database(database_url, "/", pool_size=2)
    try:
        first = db.connect()
        raw = first.raw
        db.release(first)
        again = db.connect()
        assert again.raw is raw, "kept open, not opened again"
        db.release(again)
    finally:
        db.close()


def test_one_caller_more_than_the_pool_waits_for_a_connection(database_url):
    db = database.Database(database_url, "/", pool_size=2)
    held = [db.connect(), db.connect()]
    got: list[database.Connection] = []
    waiter = threading.Thread(target=lambda: got.append(db.connect()))
    try:
        waiter.start()
        time.sleep(0.2)
        if db.dialect == "postgresql":
            assert got == [], "a third PostgreSQL connection waits for one of the two"
        db.release(held.pop())
        waiter.join(5)
        assert len(got) == 1 and got[0].scalar("SELECT 1") == 1
    finally:
        for conn in held + got:
            db.release(conn)
        db.close()
