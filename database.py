"""The connection layer under db_commands: one small interface over SQLite and PostgreSQL.

Queries are written once, with ``?`` placeholders, in SQL both databases understand; this
module turns the placeholders into the driver's, hands rows back as dicts, runs write
transactions, and applies the versioned schema (``query.sql`` for SQLite,
``query_postgresql.sql`` for PostgreSQL, kept side by side with the same version numbers).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
SCHEMA_FILES = {"sqlite": ROOT / "query.sql", "postgresql": ROOT / "query_postgresql.sql"}
_VERSION_MARK = re.compile(r"^-- version: (\d+)\s*$", re.MULTILINE)
# Any constant: on PostgreSQL one process at a time creates or upgrades the schema.
SCHEMA_LOCK_KEY = 7_201_001
# How long a caller waits for one of the DB_POOL_SIZE PostgreSQL connections to come back.
POSTGRES_WAIT_S = 10.0


class IntegrityError(Exception):
    """A write broke a constraint (a name already taken, say), whatever the database."""


class DatabaseBusy(RuntimeError):
    """Every pooled PostgreSQL connection stayed in use for POSTGRES_WAIT_S: try again."""


def schema_versions(sql: str) -> list[tuple[int, str]]:
    """Split a schema file into its ``(version, statements)`` sections, in order."""
    marks = list(_VERSION_MARK.finditer(sql))
    sections = []
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(sql)
        sections.append((int(mark.group(1)), sql[mark.end() : end]))
    return sections


def sqlite_path(database_url: str, root: str) -> str:
    """Turn ``sqlite:///relative/path`` or ``sqlite:////absolute/path`` into a file path."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix):
        raise ValueError(f"DATABASE_URL must start with {prefix!r}, got {database_url!r}")
    path = database_url[len(prefix) :]
    if path == ":memory:":
        raise ValueError("An in-memory database would vanish between connections; use a file.")
    return str(Path(root, path)) if not Path(path).is_absolute() else path


def dialect_of(database_url: str) -> str:
    """``sqlite`` or ``postgresql``, from a DATABASE_URL."""
    if database_url.startswith("sqlite:"):
        return "sqlite"
    if database_url.startswith(("postgresql://", "postgres://")):
        return "postgresql"
    raise ValueError(
        f"DATABASE_URL must be sqlite:///path or postgresql://..., got {database_url!r}"
    )


def _has_statements(sql: str) -> bool:
    """Whether a schema section holds more than comments."""
    return any(line.strip() and not line.strip().startswith("--") for line in sql.splitlines())


class Connection:
    """One open connection; rows come back as dicts."""

    def __init__(self, raw: Any, dialect: str):
        self.raw = raw
        self.dialect = dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; return the driver's cursor (``rowcount``, ``fetch*``)."""
        try:
            if self.dialect == "sqlite":
                return self.raw.execute(sql, params)
            cursor = self.raw.cursor()
            cursor.execute(sql.replace("?", "%s"), params)
            return cursor
        except (sqlite3.IntegrityError, _pg_integrity_error()) as error:
            raise IntegrityError(str(error)) from error

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """The first row as a dict, or None."""
        return _as_dict(self.execute(sql, params), first=True)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Every row as a dict."""
        return _as_dict(self.execute(sql, params), first=False)

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row, or None."""
        row = self.execute(sql, params).fetchone()
        return None if row is None else row[0]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Run a block as one write transaction (SQLite: IMMEDIATE, so writers queue)."""
        self.raw.execute("BEGIN IMMEDIATE") if self.dialect == "sqlite" else self.execute("BEGIN")
        try:
            yield self
        except BaseException:
            self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")


def _as_dict(cursor: Any, first: bool) -> Any:
    columns = [column[0] for column in cursor.description] if cursor.description else []
    if first:
        row = cursor.fetchone()
        return None if row is None else dict(zip(columns, row, strict=True))
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _pg_integrity_error() -> type[Exception]:
    try:
        import psycopg2
    except ImportError:  # SQLite-only installs need no PostgreSQL driver
        return sqlite3.IntegrityError
    return psycopg2.IntegrityError


class Database:
    """Where the data lives, and how to get a connection to it."""

    def __init__(self, database_url: str, root: str, pool_size: int = 20):
        self.url = database_url
        self.dialect = dialect_of(database_url)
        self.path = sqlite_path(database_url, root) if self.dialect == "sqlite" else None
        self.pool_size = pool_size
        self._lock = threading.Lock()
        # Connections kept open between app contexts: opening one per Socket.IO event and
        # closing it took a third of the server's time per message on SQLite (the last
        # close of a WAL database also checkpoints it); on PostgreSQL each open is a new
        # server process.
        self._idle: list[Any] = []
        # PostgreSQL: at most pool_size connections in use at once; one more caller waits
        # (a greenlet under eventlet) for one to come back instead of failing.
        self._slots = threading.BoundedSemaphore(pool_size)

    def connect(self) -> Connection:
        """A connection with the settings every connection of the chat relies on."""
        if self.dialect == "sqlite":
            with self._lock:
                if self._idle:
                    return Connection(self._idle.pop(), "sqlite")
            # One thread at a time uses a connection, but the next may be another thread.
            raw = sqlite3.connect(
                self.path, timeout=5.0, isolation_level=None, check_same_thread=False
            )
            raw.execute("PRAGMA foreign_keys = ON")
            raw.execute("PRAGMA busy_timeout = 5000")
            # WAL + NORMAL: a committed transaction survives a crash of the process; only a
            # power loss or an OS crash may take the last few back (docs/architecture.md).
            raw.execute("PRAGMA synchronous = NORMAL")
            return Connection(raw, "sqlite")
        if not self._slots.acquire(timeout=POSTGRES_WAIT_S):
            raise DatabaseBusy(f"all {self.pool_size} database connections stayed busy")
        try:
            with self._lock:
                raw = self._idle.pop() if self._idle else None
            if raw is None:
                import psycopg2

                raw = psycopg2.connect(self.url)
            raw.autocommit = True
        except BaseException:
            self._slots.release()
            raise
        return Connection(raw, "postgresql")

    def release(self, conn: Connection) -> None:
        """Give a connection back to the pool (closed if it is broken or the pool is full)."""
        if self.dialect == "sqlite":
            with self._lock:
                if not conn.raw.in_transaction and len(self._idle) < self.pool_size:
                    self._idle.append(conn.raw)
                    return
            conn.raw.close()
            return
        try:
            broken = conn.raw.closed or conn.raw.get_transaction_status() != 0
            if not broken:
                with self._lock:
                    if len(self._idle) < self.pool_size:
                        self._idle.append(conn.raw)
                        return
            conn.raw.close()
        finally:
            self._slots.release()

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for raw in idle:
            raw.close()

    def init_schema(self) -> int:
        """Create or upgrade the schema to the newest version; return that version.

        Each missing section of the schema file runs in one transaction with its version
        bump, so an old database upgrades in place and a failed upgrade changes nothing.
        """
        if self.path:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = self.connect()
        try:
            if self.dialect == "postgresql":
                # Workers starting together on a fresh database: one applies, the others wait.
                conn.execute("SELECT pg_advisory_lock(?)", (SCHEMA_LOCK_KEY,))
            current = self._schema_version(conn)
            for version, statements in schema_versions(SCHEMA_FILES[self.dialect].read_text()):
                if version > current:
                    self._apply(conn, version, statements)
                    current = version
            return current
        finally:
            if self.dialect == "postgresql":
                conn.execute("SELECT pg_advisory_unlock(?)", (SCHEMA_LOCK_KEY,))
            self.release(conn)

    def _schema_version(self, conn: Connection) -> int:
        if self.dialect == "sqlite":
            conn.execute("PRAGMA journal_mode = WAL")
            return conn.scalar("PRAGMA user_version")
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        return conn.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_version")

    def _apply(self, conn: Connection, version: int, statements: str) -> None:
        if self.dialect == "sqlite":
            # executescript commits as it goes, so the version bump rides in the same script.
            conn.raw.executescript(
                f"BEGIN IMMEDIATE;\n{statements}\nPRAGMA user_version = {version:d};\nCOMMIT;"
            )
            return
        with conn.transaction():
            if _has_statements(statements):
                conn.raw.cursor().execute(statements)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
