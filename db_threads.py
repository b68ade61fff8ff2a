"""Where SQLite work runs: never anywhere it could hold the event loop.

SQLite blocks the thread that calls it: a write waits inside C for another process's lock
(``busy_timeout``), a checkpoint syncs files, and even a read does file I/O. Under
eventlet every socket of a worker shares one OS thread, so each ``db_commands`` call (one
unit of work) runs where it cannot hold the others:

- **The writer thread** owns the one connection that writes. It takes every write waiting
  at that moment and commits them together (a group commit): ``BEGIN IMMEDIATE``, each job
  in its own ``SAVEPOINT`` (a job that fails is rolled back alone and gets its own
  exception), one ``COMMIT``, then each caller gets its result. A caller hears of its write
  only after that COMMIT returned, so an acknowledged message is stored. When another
  process holds the lock, the writer thread retries it; a write still waiting when its
  timeout (``DB_WRITE_TIMEOUT_SECONDS``) runs out fails with ``database.DatabaseBusy``.
  It also checkpoints the WAL (the connection's automatic checkpoints are off), and adds
  new messages to the search index in batches (``db_commands.index_new_messages``), after
  ``SEARCH_INDEX_EVERY`` writes or when writes pause for ``SEARCH_INDEX_IDLE_S``, in a
  transaction of its own after the writes' callers have their answers.
- **A write that comes on its own** (not within ``BURST_GAP_S`` of the previous one,
  nothing queued for the writer thread) runs where it is called, on the same connection,
  if the lock can be taken at once: the connection's busy timeout is 0 and it never
  checkpoints, so this cannot wait, and it spares the trip to a thread. If the lock is
  taken, the write goes to the writer thread like the others.
- **Reader threads** each own a read-only connection; WAL lets them read while a write
  lock is held elsewhere, so pages keep answering during a lock.

The caller waits cooperatively: under eventlet (``python app.py``) the greenlet gives way
to the hub, which resumes it when a byte arrives on a socket pair (as ``eventlet.tpool``
does), one byte for all the jobs finished at once; in threading mode (tests, ``flask
run``) the calling thread waits on a lock.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from greenlet import getcurrent

import database

log = logging.getLogger("chat")

# Writes committed together at most: bounds what one failed COMMIT takes back.
MAX_GROUP = 256
# The writer thread's waits between two tries of a lock another process holds (as
# SQLite's own busy handler), the last repeated until the write's timeout.
BUSY_WAITS_S = (0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.025, 0.025, 0.05, 0.05, 0.1)
# The writer thread checkpoints the WAL after this many COMMITs (about SQLite's automatic
# 1,000 pages for single messages), never the loop.
CHECKPOINT_EVERY = 250
# A write that follows the previous one this closely is part of a burst: it goes to the
# writer thread, where the writes of a burst share one COMMIT. A write on its own runs
# where it is called if the lock is free right now (it never waits there).
BURST_GAP_S = 0.0002
# The writer thread indexes the new messages for search after this many writes, or once
# writes pause this long. A search matches the messages not indexed yet itself, so this
# only bounds how many it has to (db_commands.list_messages_matching).
SEARCH_INDEX_EVERY = 100
SEARCH_INDEX_IDLE_S = 0.5
_STOP = object()
_CHECKPOINT = object()
_INDEX = object()


def is_green() -> bool:
    """Whether eventlet has monkey-patched threads (``python app.py``)."""
    if "eventlet" not in sys.modules:
        return False
    from eventlet import patcher

    return patcher.is_monkey_patched("thread")


def real_modules() -> tuple[Any, Any, Any]:
    """The standard ``threading``, ``queue`` and ``time`` modules, unpatched even under
    eventlet."""
    if is_green():
        from eventlet import patcher

        return patcher.original("threading"), patcher.original("queue"), patcher.original("time")
    import queue
    import threading

    return threading, queue, time


class Job:
    """One db_commands call on its way through a database thread."""

    __slots__ = ("fn", "args", "kwargs", "deadline", "value", "error", "waiter", "finished")

    def __init__(
        self,
        fn: Callable[..., Any],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        deadline: float,
        waiter: Any,
    ):
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.deadline = deadline
        self.value: Any = None
        self.error: BaseException | None = None
        self.waiter = waiter
        self.finished = False

    def run(self, conn: database.Connection) -> None:
        """Call the function on ``conn``, keeping its result or its exception."""
        try:
            self.value = database.call_on(conn, self.fn, self.args, self.kwargs)
        except BaseException as error:  # handed to the caller, raised there
            self.error = error

    def fail(self, error: BaseException) -> None:
        """Drop the result: the job's transaction did not commit."""
        self.value = None
        self.error = error

    def outcome(self) -> Any:
        """The result, or raise the job's exception in the caller."""
        if self.error is not None:
            raise self.error
        return self.value


class ThreadWaiter:
    """Threading mode: the caller's thread sleeps on a lock the database thread releases."""

    __slots__ = ("_lock",)

    def __init__(self, threading: Any):
        self._lock = threading.Lock()
        self._lock.acquire()

    def done(self) -> None:
        """Called in the database thread: wake the caller."""
        self._lock.release()

    def wait(self, _job: Job) -> None:
        """Called by the caller: sleep until ``done``."""
        self._lock.acquire()


class GreenHandoff:
    """Eventlet: wakes the hub when database threads finish jobs.

    A finished job's waiter goes on a deque and, unless a byte is already on its way, one
    byte goes down a socket pair whose other end the hub watches; the hub then resumes
    every waiting greenlet on the deque. Jobs finished together cost one wake-up.
    """

    def __init__(self, threading: Any):
        from eventlet import hubs, patcher

        socket = patcher.original("socket")
        self._finished: collections.deque[GreenWaiter] = collections.deque()
        self._lock = threading.Lock()
        self._signalled = False
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self.hub = hubs.get_hub()
        self.hub.add(self.hub.READ, self._reader.fileno(), self._dispatch, _closed, _closed)

    def finished(self, waiter: GreenWaiter) -> None:
        """Called in a database thread: queue the waiter and wake the hub once."""
        self._finished.append(waiter)
        with self._lock:
            if self._signalled:
                return
            self._signalled = True
        self._writer.send(b"x")

    def _dispatch(self, _fileno: int) -> None:
        """Runs in the hub's greenlet when the byte arrives."""
        with contextlib.suppress(BlockingIOError):  # another dispatch read it first
            self._reader.recv(4096)
        # Cleared before the deque is emptied: a job appended after this line sends a
        # byte of its own; one appended before it is emptied below.
        with self._lock:
            self._signalled = False
        while self._finished:
            waiter = self._finished.popleft()
            if waiter.greenlet is None:
                continue
            try:
                waiter.greenlet.switch()
            except Exception:  # a greenlet that died of it: the others still wake
                log.exception("A greenlet waiting for the database failed")

    def close(self) -> None:
        """Stop watching the socket pair and close it."""
        self.hub.remove_descriptor(self._reader.fileno())
        self._reader.close()
        self._writer.close()


def _closed(*_args: Any) -> None:
    """The hub's callbacks for a closed descriptor: nothing to undo."""


class GreenWaiter:
    """Eventlet: the caller's greenlet gives way to the hub until its job is finished."""

    __slots__ = ("_handoff", "greenlet")

    def __init__(self, handoff: GreenHandoff):
        self._handoff = handoff
        self.greenlet: Any = None

    def done(self) -> None:
        """Called in the database thread."""
        self._handoff.finished(self)

    def wait(self, job: Job) -> None:
        """Called by the caller's greenlet (never the hub's): give way until ``job`` is
        finished."""
        self.greenlet = getcurrent()
        try:
            while not job.finished:
                self._handoff.hub.switch()
        finally:
            # A greenlet woken by anything else (a kill) is not switched into later.
            self.greenlet = None


class DatabaseThreads:
    """The writer thread and the reader threads of one SQLite database."""

    def __init__(self, db: database.SQLiteDatabase):
        self.db = db
        self.threading, queue_module, real_time = real_modules()
        self._sleep = real_time.sleep
        self.green = is_green()
        self._handoff = GreenHandoff(self.threading) if self.green else None
        self._writes: Any = queue_module.SimpleQueue()
        self._reads: Any = queue_module.SimpleQueue()
        self._empty = queue_module.Empty
        # The one writing connection. It never waits inside SQLite (busy timeout 0, no
        # automatic checkpoint): the writer thread retries the lock and checkpoints itself.
        self._raw = db.open_raw()
        self._raw.execute("PRAGMA busy_timeout = 0")
        self._raw.execute("PRAGMA wal_autocheckpoint = 0")
        self._conn = database.SQLiteConnection(self._raw)
        # Held by whoever uses the connection; the loop only ever tries it, never waits.
        self._conn_lock = self.threading.Lock()
        # Writes handed to the writer thread and not finished yet.
        self._queued = 0
        self._count_lock = self.threading.Lock()
        self._last_write = 0.0
        self._group: list[Job] = []
        self._stopping = False
        # Writes committed since the search index last caught up; 1 at start, so messages a
        # crash left unindexed are indexed at the first pause.
        self._unindexed = 1
        self._index_queued = False
        self.groups_committed = 0
        self._threads = [self.threading.Thread(target=self._write_loop, name="db-writer")]
        self._threads += [
            self.threading.Thread(target=self._read_loop, name=f"db-reader-{n}")
            for n in range(max(1, db.read_threads))
        ]
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    # -- the caller's side -----------------------------------------------------------

    def run(self, kind: str, fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping) -> Any:
        """Run ``fn(*args, **kwargs)`` in a database thread and wait for it (not for a
        ``write_soon``); a write that comes alone and finds the lock free runs right here.
        Inside a unit of work, run it right here on the same connection."""
        if database.current_connection() is not None:
            return fn(*args, **kwargs)
        if kind == "read":
            return self._wait_for(self._reads, fn, args, kwargs)
        now = time.monotonic()
        alone, self._last_write = now - self._last_write > BURST_GAP_S, now
        if alone and self._queued == 0 and self._conn_lock.acquire(blocking=False):
            try:
                job = Job(fn, args, kwargs, 0.0, None)
                ran = self._queued == 0 and self._run_here(job)
            finally:
                self._conn_lock.release()
            if ran and kind == "write_soon":
                if job.error is not None:
                    log.warning("A write (%s) was not stored: %s", fn.__name__, job.error)
                return None
            if ran:
                return job.outcome()
        with self._count_lock:
            self._queued += 1
        if kind == "write_soon":
            deadline = time.monotonic() + self.db.write_timeout
            self._writes.put(Job(fn, args, kwargs, deadline, None))
            return None
        return self._wait_for(self._writes, fn, args, kwargs)

    def _wait_for(
        self, queue: Any, fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping
    ) -> Any:
        deadline = time.monotonic() + self.db.write_timeout
        waiter = GreenWaiter(self._handoff) if self._handoff else ThreadWaiter(self.threading)
        job = Job(fn, args, kwargs, deadline, waiter)
        queue.put(job)
        waiter.wait(job)
        return job.outcome()

    def _run_here(self, job: Job) -> bool:
        """Run a write on the caller's thread when that cannot wait: nothing is queued
        before it and the lock is free right now (tried, not awaited). False when the lock
        is taken: the write then goes to the writer thread. The caller holds _conn_lock."""
        raw = self._raw
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if database.is_busy(error):
                return False
            job.fail(error)
            return True
        job.run(self._conn)
        if job.error is not None:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            return True
        self._commit([job])
        return True

    def pending_writes(self) -> int:
        """Writes queued or in the group being committed (for tests and diagnostics)."""
        return self._writes.qsize() + len(self._group)

    def stop(self) -> None:
        """Finish the work queued so far, then end the threads."""
        self._writes.put(_STOP)
        for _ in self._threads[1:]:
            self._reads.put(_STOP)
        for thread in self._threads:
            thread.join(self.db.write_timeout + 5)
        if self._handoff is not None:
            self._handoff.close()

    # -- readers -----------------------------------------------------------------------

    def _read_loop(self) -> None:
        raw = None
        while True:
            job = self._reads.get()
            if job is _STOP:
                break
            try:
                if raw is None:
                    raw = self.db.open_raw(read_only=True)
                job.run(database.SQLiteConnection(raw))
                if job.error is not None and database.is_busy(job.error):
                    job.fail(database.DatabaseBusy())
            except BaseException as error:  # opening failed: this caller hears why
                job.fail(error)
            self._finish([job])
        if raw is not None:
            raw.close()

    # -- the writer --------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            try:
                first = self._writes.get(timeout=SEARCH_INDEX_IDLE_S if self._unindexed else None)
            except self._empty:
                first = _INDEX
            if first is _STOP:
                break
            with self._conn_lock:
                if first is _CHECKPOINT:
                    self._checkpoint()
                    continue
                if first is _INDEX:
                    self._index_queued = False
                    self._index_search()
                    continue
                self._group = [first]
                try:
                    self._commit_group(self._raw)
                except BaseException as error:  # nothing of this group committed
                    log.exception("The database thread failed a group of writes")
                    if self._raw.in_transaction:
                        self._raw.execute("ROLLBACK")
                    for job in self._group:
                        if not job.finished:
                            job.fail(error)
                    self._settle(self._group)
                self._group = []
                if self._unindexed >= SEARCH_INDEX_EVERY:
                    self._index_search()
            if self._stopping:
                break
        self._raw.close()

    def _commit_group(self, raw: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE, every write waiting by then in its own savepoint, one COMMIT,
        then each caller gets its result (or its own exception)."""
        if not self._begin(raw):
            return
        group = self._group
        conn = self._conn
        if len(group) == 1:
            # Alone in its transaction: no savepoint needed to undo it alone.
            job = group[0]
            job.run(conn)
            if job.error is not None:
                if raw.in_transaction:
                    raw.execute("ROLLBACK")
                self._settle(group)
                return
        else:
            for index, job in enumerate(group):
                raw.execute("SAVEPOINT job")
                job.run(conn)
                if job.error is None:
                    raw.execute("RELEASE job")
                elif raw.in_transaction:
                    raw.execute("ROLLBACK TO job")
                    raw.execute("RELEASE job")
                else:
                    # Some errors (disk full, I/O) roll the whole transaction back: the
                    # jobs before this one lost their work too; the rest go round again.
                    for earlier in group[:index]:
                        earlier.fail(job.error)
                    for later in group[index + 1 :]:
                        self._writes.put(later)
                    self._group = group[: index + 1]
                    self._settle(self._group)
                    return
        self._commit(group)
        self._settle(group)

    def _commit(self, jobs: list[Job]) -> None:
        """COMMIT; if it fails, every job of the transaction fails with it."""
        raw = self._raw
        try:
            raw.execute("COMMIT")
        except sqlite3.Error as error:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            for job in jobs:
                job.fail(database.DatabaseBusy() if database.is_busy(error) else error)
            return
        self.groups_committed += 1
        if self.groups_committed % CHECKPOINT_EVERY == 0:
            self._writes.put(_CHECKPOINT)
        self._unindexed += len(jobs)
        if self._unindexed >= SEARCH_INDEX_EVERY and not self._index_queued:
            # Committed on the caller's thread: the writer thread may be waiting for work.
            self._index_queued = True
            self._writes.put(_INDEX)

    def _index_search(self) -> None:
        """Add the messages stored since the last time to the search index, in a
        transaction of their own (tried once: if another process holds the lock, the next
        pause tries again)."""
        import db_commands

        raw = self._raw
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if not database.is_busy(error):
                log.error("Indexing messages for search failed: %s", error)
            return
        try:
            count = database.call_on(self._conn, db_commands.index_new_messages, (), {})
            raw.execute("COMMIT")
        except sqlite3.Error:
            log.exception("Indexing messages for search failed")
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            return
        if count < db_commands.INDEX_BATCH_MAX:
            self._unindexed = 0
        elif not self._index_queued:
            # More are waiting (stored by another program): the next batch comes after the
            # writes queued meanwhile.
            self._index_queued = True
            self._writes.put(_INDEX)

    def _checkpoint(self) -> None:
        try:
            self._raw.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            log.exception("A checkpoint of the database failed")

    def _begin(self, raw: sqlite3.Connection) -> bool:
        """BEGIN IMMEDIATE, retried until the first job's timeout if another process holds
        the lock (that job then fails with DatabaseBusy). Then add the writes waiting by now
        to the group (up to MAX_GROUP). False when nothing is left to run."""
        job = self._group[0]
        tries = 0
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as error:
                if not database.is_busy(error):
                    job.fail(error)
                    self._settle(self._group)
                    return False
            left = job.deadline - time.monotonic()
            if left <= 0:
                job.fail(database.DatabaseBusy())
                self._settle(self._group)
                return False
            self._sleep(min(left, BUSY_WAITS_S[min(tries, len(BUSY_WAITS_S) - 1)]))
            tries += 1
        group = self._group
        while len(group) < MAX_GROUP:
            try:
                later = self._writes.get_nowait()
            except self._empty:
                break
            if later is _STOP:
                self._stopping = True
                break
            if later is _INDEX:
                # Done after this group: it has enough writes by now.
                self._index_queued = False
            elif later is not _CHECKPOINT:
                group.append(later)
        return True

    def _settle(self, jobs: list[Job]) -> None:
        """Finish writes the writer thread had in hand: their callers hear the outcome."""
        finished = self._finish(jobs)
        with self._count_lock:
            self._queued -= finished

    @staticmethod
    def _finish(jobs: list[Job]) -> int:
        count = 0
        for job in jobs:
            if job.finished:
                continue
            job.finished = True
            count += 1
            if job.waiter is not None:
                job.waiter.done()
            elif job.error is not None:
                log.warning("A queued write (%s) was not stored: %s", job.fn.__name__, job.error)
        return count
