"""Which failures are passing ones (a locked or full database, a restarting PostgreSQL or
Redis), and how the server answers them: "try again", never "Something went wrong".

A client that hears ``retryable: true`` waits and sends the same request again by itself
(the browser's outbox keeps the message's ``client_id``, so a retry never stores a second
row); any other unexpected error keeps the generic answer, which retrying would not fix.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
import time
from typing import Any

import redis.exceptions
from limits.errors import StorageError

UNAVAILABLE = "The server is briefly unavailable. Please try again in a moment."
# SQLite's primary result codes (the low byte of an extended code) that name a passing
# state of the file or the machine, not a mistake in the statement.
SQLITE_TRANSIENT_CODES = frozenset(
    {
        5,  # SQLITE_BUSY: another connection holds the write lock
        6,  # SQLITE_LOCKED
        7,  # SQLITE_NOMEM
        10,  # SQLITE_IOERR
        13,  # SQLITE_FULL: the disk is full
        14,  # SQLITE_CANTOPEN
        15,  # SQLITE_PROTOCOL
    }
)
# One line per kind of failure at most this often, with the count of those left unsaid:
# during an outage every client retries, and each retry fails the same way.
LOG_EVERY_SECONDS = 10.0

log = logging.getLogger("chat")


@functools.cache
def _transient_types() -> tuple[type[BaseException], ...]:
    # Imported here, not at the top: database.py's errors are helpers.ValidationErrors, and
    # helpers imports this module.
    from database import DatabaseBusy

    types: list[type[BaseException]] = [
        DatabaseBusy,
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
    ]
    try:
        import psycopg2
    except ImportError:  # SQLite-only installs need no PostgreSQL driver
        return tuple(types)
    return (*types, psycopg2.OperationalError, psycopg2.InterfaceError)


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is a passing failure that the same request may not meet again."""
    if isinstance(error, StorageError):  # the rate limiter's storage, wrapped
        return is_transient(error.storage_error)
    if isinstance(error, sqlite3.OperationalError):
        code = getattr(error, "sqlite_errorcode", None)
        # No code: raised by our own database layer (a write that waited its full time
        # for the lock), never by a faulty statement, which always carries SQLite's code.
        return code is None or code & 0xFF in SQLITE_TRANSIENT_CODES
    return isinstance(error, _transient_types())


def unavailable_answer() -> dict[str, Any]:
    """The answer to a request that met a passing failure: the client may send it again."""
    return {"ok": False, "error": UNAVAILABLE, "code": "unavailable", "retryable": True}


class _Throttle:
    """Counts failures per kind and lets a line through at most every LOG_EVERY_SECONDS."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._unsaid: dict[str, int] = {}

    def check(self, kind: str) -> int | None:
        """None to stay quiet; else how many of this kind went unlogged since the last line."""
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(kind, -LOG_EVERY_SECONDS) < LOG_EVERY_SECONDS:
                self._unsaid[kind] = self._unsaid.get(kind, 0) + 1
                return None
            self._last[kind] = now
            return self._unsaid.pop(kind, 0)


_throttle = _Throttle()


def log_transient(where: str, error: BaseException) -> None:
    """One line, without a traceback, for a passing failure (and seldom more than one)."""
    kind = f"{where}:{type(error).__name__}"
    unsaid = _throttle.check(kind)
    if unsaid is None:
        return
    more = f" ({unsaid} more like it since the last report)" if unsaid else ""
    log.warning(
        "%s failed for now, answered 'try again': %s: %s%s",
        where,
        type(error).__name__,
        error,
        more,
    )
