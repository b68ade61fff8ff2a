"""The connection layer under db_commands: one interface over SQLite and PostgreSQL.

Queries are written once, with ``?`` placeholders, in SQL both databases understand; this
module turns the placeholders into the driver's, hands rows back as dicts, runs write
transactions, and applies the versioned schema (``query.sql`` for SQLite,
``query_postgresql.sql`` for PostgreSQL, kept side by side with the same version numbers).

What differs between the two lives in two pairs of small classes: ``SQLiteConnection`` /
``PostgresConnection`` (placeholders, transactions) and ``SQLiteDatabase`` /
``PostgresDatabase`` (opening, pooling, the schema's bookkeeping, and where a unit of work
runs: SQLite's as db_threads decides, never where it could hold the event loop;
PostgreSQL's in the caller's greenlet, its driver being cooperative).
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from helpers import ValidationError

ROOT = Path(__file__).resolve().parent
SCHEMA_FILES = {"sqlite": ROOT / "query.sql", "postgresql": ROOT / "query_postgresql.sql"}
_VERSION_MARK = re.compile(r"^-- version: (\d+)\s*$", re.MULTILINE)
# Any constant: on PostgreSQL one process at a time creates or upgrades the schema.
SCHEMA_LOCK_KEY = 7_201_001
# How long a caller waits for one of the DB_POOL_SIZE PostgreSQL connections to come back.
POSTGRES_WAIT_S = 10.0
DEFAULT_WRITE_TIMEOUT_S = 5.0
DEFAULT_READ_THREADS = 4
BUSY_MESSAGE = "The database is busy; try again in a moment."

# The connection of the unit of work running in this thread (or greenlet), if any: a
# db_commands function called from inside another runs on its caller's connection.
_current: contextvars.ContextVar[Connection | None] = contextvars.ContextVar(
    "database_connection", default=None
)


class IntegrityError(Exception):
    """A write broke a constraint (a name already taken, say), whatever the database."""


class DatabaseBusy(sqlite3.OperationalError, ValidationError):
    """The database stayed busy for longer than the caller may wait: SQLite's write lock
    taken by another process past the write timeout, or every pooled PostgreSQL connection
    in use for ``POSTGRES_WAIT_S``.

    Nothing was stored; the same request can simply be sent again. It is an
    ``OperationalError`` (what a busy SQLite raises) and a ``ValidationError``, so a
    Socket.IO handler answers its sentence through the ack like any other refusal, marked
    retryable.
    """

    def __init__(self, message: str = BUSY_MESSAGE):
        super().__init__(message)

    def details(self) -> dict[str, Any]:
        """Tell the client it may send the same request again."""
        return {"code": "unavailable", "retryable": True}


def current_connection() -> Connection | None:
    """The connection of the unit of work running here, or None outside one."""
    return _current.get()


@contextlib.contextmanager
def bound(conn: Connection) -> Iterator[Connection]:
    """Run db_commands functions in this block directly on ``conn`` (benchmarks, tools)."""
    token = _current.set(conn)
    try:
        yield conn
    finally:
        _current.reset(token)


def call_on(conn: Connection, fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping) -> Any:
    """Run ``fn`` with ``conn`` as its connection (and that of the functions it calls)."""
    # bound()'s work without a generator: this runs for every unit of work.
    token = _current.set(conn)
    try:
        return fn(*args, **kwargs)
    finally:
        _current.reset(token)


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


def is_busy(error: BaseException) -> bool:
    """Whether a SQLite error means another connection holds the lock."""
    if isinstance(error, DatabaseBusy):
        return True
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


def _has_statements(sql: str) -> bool:
    """Whether a schema section holds more than comments."""
    return any(line.strip() and not line.strip().startswith("--") for line in sql.splitlines())


# -- connections ---------------------------------------------------------------------


class Connection:
    """One open connection; rows come back as dicts."""

    dialect = ""

    def __init__(self, raw: Any):
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; return the driver's cursor (``rowcount``, ``fetch*``)."""
        raise NotImplementedError

    def execute_prepared(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run a statement the chat runs all the time, planned once per connection.

        Every ``?`` must stand in a ``CAST(? AS type)`` (or where PostgreSQL infers the
        type), as PostgreSQL types the parameters when it prepares the statement."""
        return self.execute(sql, params)

    def transaction(self) -> contextlib.AbstractContextManager[Connection]:
        """Run a block as one write transaction (or, inside one, as a savepoint of it)."""
        raise NotImplementedError

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """The first row as a dict, or None."""
        return _as_dict(self.execute(sql, params), first=True)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Every row as a dict."""
        return _as_dict(self.execute(sql, params), first=False)

    def all_prepared(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Every row as a dict, from ``execute_prepared``."""
        return _as_dict(self.execute_prepared(sql, params), first=False)

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row, or None."""
        row = self.execute(sql, params).fetchone()
        return None if row is None else row[0]


class SQLiteConnection(Connection):
    """A sqlite3 connection in autocommit mode: transactions are begun explicitly."""

    dialect = "sqlite"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; a constraint error becomes ``IntegrityError``."""
        try:
            return self.raw.execute(sql, params)
        except sqlite3.IntegrityError as error:
            raise IntegrityError(str(error)) from error

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """BEGIN IMMEDIATE (writers queue for the lock instead of failing halfway), or a
        savepoint when the database thread already opened the group's transaction."""
        if self.raw.in_transaction:
            # Undone, a savepoint must still be released to leave the outer transaction whole.
            begin, end = "SAVEPOINT nested", "RELEASE nested"
            undo: tuple[str, ...] = ("ROLLBACK TO nested", "RELEASE nested")
        else:
            begin, end, undo = "BEGIN IMMEDIATE", "COMMIT", ("ROLLBACK",)
        self.raw.execute(begin)
        try:
            yield self
        except BaseException:
            if self.raw.in_transaction:
                for statement in undo:
                    self.raw.execute(statement)
            raise
        self.raw.execute(end)


class PostgresConnection(Connection):
    """A psycopg2 connection in autocommit mode, with ``?`` turned into ``%s``."""

    dialect = "postgresql"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; a constraint error becomes ``IntegrityError``."""
        import psycopg2

        cursor = self.raw.cursor()
        try:
            cursor.execute(sql.replace("?", "%s"), params)
        except psycopg2.IntegrityError as error:
            raise IntegrityError(str(error)) from error
        return cursor

    def execute_prepared(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """``PREPARE`` the statement on this connection the first time, then ``EXECUTE`` it:
        PostgreSQL plans each statement psycopg2 sends anew, which cost the message's
        INSERT about as much CPU as running it."""
        name = _prepared_name(sql)
        prepared = getattr(self.raw, "prepared", None)
        if prepared is None:
            return self.execute(sql, params)
        if name not in prepared:
            self.execute(f"PREPARE {name} AS {_numbered_placeholders(sql)}")
            prepared.add(name)
        marks = ", ".join("?" * len(params))
        return self.execute(f"EXECUTE {name} ({marks})" if params else f"EXECUTE {name}", params)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """BEGIN ... COMMIT, rolled back if the block raises; inside a transaction already
        (a group commit's), a savepoint of it."""
        if self.raw.get_transaction_status() != _PG_IDLE:
            begin, end = "SAVEPOINT nested", "RELEASE nested"
            undo: tuple[str, ...] = ("ROLLBACK TO nested", "RELEASE nested")
        else:
            begin, end, undo = "BEGIN", "COMMIT", ("ROLLBACK",)
        self.execute(begin)
        try:
            yield self
        except BaseException:
            for statement in undo:
                self.execute(statement)
            raise
        self.execute(end)


# psycopg2.extensions.TRANSACTION_STATUS_IDLE and _INERROR, without importing psycopg2 here.
_PG_IDLE, _PG_IN_ERROR = 0, 3
_prepared_names: dict[str, str] = {}


def _prepared_name(sql: str) -> str:
    """One name per statement text, the same on every connection of the process."""
    name = _prepared_names.get(sql)
    if name is None:
        name = _prepared_names.setdefault(sql, f"chat_statement_{len(_prepared_names) + 1}")
    return name


def _numbered_placeholders(sql: str) -> str:
    """``?`` as PostgreSQL's ``$1``, ``$2`` ... (the statement holds no other ``?``)."""
    parts = sql.split("?")
    return "".join(part + (f"${n}" if n < len(parts) else "") for n, part in enumerate(parts, 1))


def _as_dict(cursor: Any, first: bool) -> Any:
    columns = [column[0] for column in cursor.description] if cursor.description else []
    if first:
        row = cursor.fetchone()
        return None if row is None else dict(zip(columns, row, strict=True))
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


# -- databases -----------------------------------------------------------------------


class Database:
    """Where the data lives, how to get a connection to it, and where its work runs.

    ``Database(url, root)`` answers the class for the URL's database (``SQLiteDatabase`` or
    ``PostgresDatabase``), so callers never choose a dialect themselves.
    """

    dialect = ""
    path: str | None = None

    def __new__(cls, database_url: str, *args: Any, **kwargs: Any) -> Database:
        if cls is Database:
            is_sqlite = dialect_of(database_url) == "sqlite"
            cls = SQLiteDatabase if is_sqlite else PostgresDatabase
        return super().__new__(cls)

    def __init__(
        self,
        database_url: str,
        root: str,
        pool_size: int = 20,
        write_timeout: float = DEFAULT_WRITE_TIMEOUT_S,
        read_threads: int = DEFAULT_READ_THREADS,
    ):
        self.url = database_url
        self.pool_size = pool_size
        self.write_timeout = write_timeout
        self.read_threads = read_threads
        self._lock = threading.Lock()
        # Connections kept open between uses: opening one per Socket.IO event and closing
        # it took a third of the server's time per message on SQLite (the last close of a
        # WAL database also checkpoints it); on PostgreSQL each open is a server process.
        self._idle: list[Any] = []

    def run(self, kind: str, fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping) -> Any:
        """Run one db_commands call as a unit of work: ``kind`` is ``read``, ``write``, or
        ``write_soon`` (queued; the caller does not wait for it)."""
        raise NotImplementedError

    def connect(self) -> Connection:
        """A connection for direct use on the calling thread (schema, tools, tests)."""
        raise NotImplementedError

    def release(self, conn: Connection) -> None:
        """Give a connection back to the pool (closed if it is broken or the pool is full)."""
        raise NotImplementedError

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
        conn = self.connect()
        try:
            with self._schema_lock(conn):
                current = self._schema_version(conn)
                for version, statements in schema_versions(SCHEMA_FILES[self.dialect].read_text()):
                    if version > current:
                        self._apply(conn, version, statements)
                        current = version
                return current
        finally:
            self.release(conn)

    def _schema_lock(self, conn: Connection) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def _schema_version(self, conn: Connection) -> int:
        raise NotImplementedError

    def _apply(self, conn: Connection, version: int, statements: str) -> None:
        raise NotImplementedError


class SQLiteDatabase(Database):
    """A SQLite file. Units of work go through db_threads: one writer thread that commits
    the writes waiting together (a write that comes alone runs on the caller's thread if
    the lock is free at once), a few reader threads."""

    dialect = "sqlite"

    def __init__(self, database_url: str, root: str, *args: Any, **kwargs: Any):
        super().__init__(database_url, root, *args, **kwargs)
        self.path = sqlite_path(database_url, root)
        self._threads: Any = None

    def open_raw(self, read_only: bool = False) -> sqlite3.Connection:
        """A new sqlite3 connection with the settings every connection of the chat relies on."""
        # One thread at a time uses a connection, but the next may be another thread.
        raw = sqlite3.connect(
            self.path, timeout=self.write_timeout, isolation_level=None, check_same_thread=False
        )
        raw.execute("PRAGMA foreign_keys = ON")
        # WAL + NORMAL: a committed transaction survives a crash of the process; only a
        # power loss or an OS crash may take the last few back (docs/architecture.md).
        raw.execute("PRAGMA synchronous = NORMAL")
        if read_only:
            # A function marked as a read that writes fails at once instead of taking the
            # write lock on a reader thread.
            raw.execute("PRAGMA query_only = ON")
        return raw

    @property
    def threads(self) -> Any:
        """The database threads (``db_threads.DatabaseThreads``), started on first use."""
        if self._threads is None:
            with self._lock:
                if self._threads is None:
                    import db_threads

                    self._threads = db_threads.DatabaseThreads(self)
        return self._threads

    def run(self, kind: str, fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping) -> Any:
        """Run the call through db_threads, waiting for it without blocking the loop."""
        return (self._threads or self.threads).run(kind, fn, args, kwargs)

    def connect(self) -> Connection:
        with self._lock:
            if self._idle:
                return SQLiteConnection(self._idle.pop())
        return SQLiteConnection(self.open_raw())

    def release(self, conn: Connection) -> None:
        with self._lock:
            if not conn.raw.in_transaction and len(self._idle) < self.pool_size:
                self._idle.append(conn.raw)
                return
        conn.raw.close()

    def close(self) -> None:
        """Stop the database threads (after the work queued so far) and close connections."""
        threads, self._threads = self._threads, None
        if threads is not None:
            threads.stop()
        super().close()

    def init_schema(self) -> int:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        return super().init_schema()

    def _schema_version(self, conn: Connection) -> int:
        conn.execute("PRAGMA journal_mode = WAL")
        return conn.scalar("PRAGMA user_version")

    def _apply(self, conn: Connection, version: int, statements: str) -> None:
        # executescript commits as it goes, so the version bump rides in the same script.
        conn.raw.executescript(
            f"BEGIN IMMEDIATE;\n{statements}\nPRAGMA user_version = {version:d};\nCOMMIT;"
        )


class PostgresDatabase(Database):
    """A PostgreSQL server. Units of work run in the callers' greenlets: under eventlet
    psycopg2 waits on its socket through the hub, so no thread is needed. Writes waiting
    together share one transaction (``_GroupCommit``)."""

    dialect = "postgresql"

    def __init__(self, database_url: str, root: str, *args: Any, **kwargs: Any):
        super().__init__(database_url, root, *args, **kwargs)
        # At most pool_size connections in use at once; one more caller waits (a greenlet
        # under eventlet) for one to come back instead of failing.
        self._slots = threading.BoundedSemaphore(self.pool_size)
        self.group_commit = _GroupCommit(self)

    def run(self, kind: str, fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping) -> Any:
        """Run the call here, on a pooled connection; a write with the writes waiting
        beside it, in one transaction."""
        if _current.get() is not None:
            return fn(*args, **kwargs)
        if kind != "read":
            return self.group_commit.run(fn, args, kwargs)
        conn = self.connect()
        try:
            return call_on(conn, fn, args, kwargs)
        finally:
            self.release(conn)

    def connect(self) -> Connection:
        if not self._slots.acquire(timeout=POSTGRES_WAIT_S):
            raise DatabaseBusy()
        try:
            with self._lock:
                raw = self._idle.pop() if self._idle else None
            if raw is None:
                import psycopg2

                raw = psycopg2.connect(self.url, connection_factory=_pg_connection_class())
            raw.autocommit = True
        except BaseException:
            self._slots.release()
            raise
        return PostgresConnection(raw)

    def release(self, conn: Connection) -> None:
        try:
            broken = conn.raw.closed or conn.raw.get_transaction_status() != _PG_IDLE
            if not broken:
                with self._lock:
                    if len(self._idle) < self.pool_size:
                        self._idle.append(conn.raw)
                        return
            conn.raw.close()
        finally:
            self._slots.release()

    @contextlib.contextmanager
    def _schema_lock(self, conn: Connection) -> Iterator[None]:
        # Workers starting together on a fresh database: one applies, the others wait.
        conn.execute("SELECT pg_advisory_lock(?)", (SCHEMA_LOCK_KEY,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(?)", (SCHEMA_LOCK_KEY,))

    def _schema_version(self, conn: Connection) -> int:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        return conn.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_version")

    def _apply(self, conn: Connection, version: int, statements: str) -> None:
        with conn.transaction():
            if _has_statements(statements):
                conn.raw.cursor().execute(statements)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))


def _pg_connection_class() -> type:
    """psycopg2's connection with the names of the statements prepared on it."""
    global _PG_CONNECTION
    if _PG_CONNECTION is None:
        import psycopg2.extensions

        class ChatConnection(psycopg2.extensions.connection):
            def __init__(self, *args: Any, **kwargs: Any):
                super().__init__(*args, **kwargs)
                self.prepared: set[str] = set()

        _PG_CONNECTION = ChatConnection
    return _PG_CONNECTION


_PG_CONNECTION: type | None = None


class _Write:
    """One write waiting for its group: the call, then its result or its error."""

    __slots__ = ("fn", "args", "kwargs", "result", "error", "settled", "done", "leads")

    def __init__(self, fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping):
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.result: Any = None
        self.error: BaseException | None = None
        self.settled = False
        self.done = threading.Event()
        self.leads = False

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.settled = result, error, True

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


class _GroupCommit:
    """PostgreSQL's writes of one process, committed by groups: the writes that arrive
    while a group is being written wait, then go together in one transaction (one COMMIT,
    one flush of the WAL) on one connection.

    No thread is added: the first write of an idle moment runs in its caller's greenlet after
    one turn of the hub (alone, a one-statement write is one round trip, its own commit).
    The caller that finds a group underway queues its write and waits; when the group has
    committed, the first write waiting leads the next group, running every write queued by
    then (up to ``MAX_GROUP``) in its own greenlet. A write that fails is taken out: the
    transaction is rolled back, its caller gets its exception, and the rest are written
    again without it (no savepoint per write: a savepoint is a subtransaction on the server,
    and a round trip). A write that swallowed an error of its own (the transaction then
    refuses every statement) is run again alone.
    """

    # Each write of a group wakes its caller at once, and each caller then publishes its
    # emits on Redis: with 256 a burst took more than the 100 connections of redis-py's
    # default pool at once ("Too many connections"; the chat's pools now make a burst wait,
    # REDIS_POOL_SIZE). Groups here are a few writes till overload.
    MAX_GROUP = 32

    def __init__(self, database: PostgresDatabase):
        self.database = database
        self._lock = threading.Lock()
        self._queue: list[_Write] = []
        self._leading = False
        self.groups_committed = 0
        self.writes_committed = 0

    def pending_writes(self) -> int:
        """How many writes wait for the group underway to commit."""
        with self._lock:
            return len(self._queue)

    def run(self, fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping) -> Any:
        """Run ``fn`` in the next group and return its result (or raise its error)."""
        write = _Write(fn, args, kwargs)
        with self._lock:
            self._queue.append(write)
            write.leads = not self._leading
            self._leading = True
        if not write.leads:
            write.done.wait()
            if not write.leads:
                return write.outcome()
        else:
            # Under eventlet: let the greenlets already woken (sockets read in the same
            # turn of the hub) queue their writes first, to go in this group.
            time.sleep(0)
        with self._lock:
            group, self._queue = self._queue[: self.MAX_GROUP], self._queue[self.MAX_GROUP :]
        try:
            self._write(group)
        except BaseException as error:
            for other in group:
                if not other.settled:
                    other.settle(error=error)
            raise
        finally:
            with self._lock:
                successor = self._queue[0] if self._queue else None
                self._leading = successor is not None
            if successor is not None:
                successor.leads = True
                successor.done.set()
            for other in group:
                other.done.set()
        return write.outcome()

    def _write(self, group: list[_Write]) -> None:
        conn = self.database.connect()
        try:
            if len(group) == 1:
                self._write_alone(conn, group[0])
            else:
                self._write_together(conn, list(group))
        finally:
            self.database.release(conn)

    def _write_alone(self, conn: Connection, write: _Write) -> None:
        try:
            write.settle(call_on(conn, write.fn, write.args, write.kwargs))
        except Exception as error:
            write.settle(error=error)
        self.groups_committed += 1
        self.writes_committed += 1

    def _write_together(self, conn: Connection, pending: list[_Write]) -> None:
        # The writes of a group were all waiting at once, so any order is theirs; in the
        # order of the rows they lock, two groups (of two workers) never wait on each other
        # in a circle.
        pending.sort(key=_lock_order)
        while len(pending) > 1:
            conn.execute("BEGIN")
            results = []
            failed, error = None, None
            for write in pending:
                try:
                    results.append(call_on(conn, write.fn, write.args, write.kwargs))
                except Exception as raised:
                    failed, error = write, raised
                    break
                if conn.raw.get_transaction_status() == _PG_IN_ERROR:
                    failed = write
                    break
            if failed is None:
                conn.execute("COMMIT")
                for write, result in zip(pending, results, strict=True):
                    write.settle(result)
                self.groups_committed += 1
                self.writes_committed += len(pending)
                return
            conn.execute("ROLLBACK")
            if getattr(error, "pgcode", None) in _ROLLED_BACK_BY_SERVER:
                # A deadlock or a conflict with another session: nobody's fault, and a
                # write alone holds too few locks to meet it again.
                for write in pending:
                    self._write_alone(conn, write)
                return
            pending.remove(failed)
            if error is not None:
                failed.settle(error=error)
            else:
                self._write_alone(conn, failed)
        if pending:
            self._write_alone(conn, pending[0])


# deadlock_detected, serialization_failure: PostgreSQL rolled the transaction back.
_ROLLED_BACK_BY_SERVER = ("40P01", "40001")


def orders_group_by(key: Callable[..., int]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a write that locks one row of a table (a message: its chat's row) with the key
    of that row, ``key(*args, **kwargs)``: in a group commit such writes go in the order of
    their keys, before the others, so that groups lock rows in one order."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.group_order = key  # type: ignore[attr-defined]
        return fn

    return mark


def _lock_order(write: _Write) -> tuple[int, int]:
    key = getattr(write.fn, "group_order", None)
    if key is None:
        return (1, 0)
    try:
        return (0, int(key(*write.args, **write.kwargs)))
    except (TypeError, ValueError):  # arguments the write itself will refuse
        return (1, 0)
