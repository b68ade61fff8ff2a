"""Where SQLite work runs: one writer thread, a few reader threads, never the event loop.

SQLite blocks the thread that calls it: a write waits inside C for another process's lock
(``busy_timeout``), and even a read does file I/O. Under eventlet every socket of a worker
shares one OS thread, so each ``db_commands`` call (one unit of work) runs here instead:

- **The writer thread** owns the one connection that writes. It takes every write waiting
  at that moment and commits them together (a group commit): ``BEGIN IMMEDIATE``, each job
  in its own ``SAVEPOINT`` (a job that fails is rolled back alone and gets its own
  exception), one ``COMMIT``, then each caller gets its result. A caller hears of its write
  only after that COMMIT returned, so an acknowledged message is stored. When another
  process holds the lock, only writes wait; a write still waiting when its timeout
  (``DB_WRITE_TIMEOUT_SECONDS``) runs out fails with ``database.DatabaseBusy``.
- **Reader threads** each own a read-only connection; WAL lets them read while a write
  lock is held elsewhere, so pages keep answering during a lock.

The caller waits cooperatively: under eventlet (``python app.py``) the greenlet sleeps on
an event that the hub sets when a byte arrives on a socket pair (as ``eventlet.tpool``
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
# A new wait for the lock is set only when it differs this much from the one in force.
BUSY_SLACK_S = 0.05
_STOP = object()


def is_green() -> bool:
    """Whether eventlet has monkey-patched threads (``python app.py``)."""
    if "eventlet" not in sys.modules:
        return False
    from eventlet import patcher

    return patcher.is_monkey_patched("thread")


def real_modules() -> tuple[Any, Any]:
    """The standard ``threading`` and ``queue`` modules, unpatched even under eventlet."""
    if is_green():
        from eventlet import patcher

        return patcher.original("threading"), patcher.original("queue")
    import queue
    import threading

    return threading, queue


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
        self.threading, queue_module = real_modules()
        self.green = is_green()
        self._handoff = GreenHandoff(self.threading) if self.green else None
        self._writes: Any = queue_module.SimpleQueue()
        self._reads: Any = queue_module.SimpleQueue()
        self._empty = queue_module.Empty
        # The writer thread's state: the group being committed, the lock wait in force.
        self._group: list[Job] = []
        self._busy_timeout = db.write_timeout
        self._stopping = False
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
        """Run ``fn(*args, **kwargs)`` in a database thread; wait for it unless ``kind`` is
        ``write_soon``. Inside a unit of work, run it right here on the same connection."""
        if database.current_connection() is not None:
            return fn(*args, **kwargs)
        deadline = time.monotonic() + self.db.write_timeout
        if kind == "write_soon":
            self._writes.put(Job(fn, args, kwargs, deadline, None))
            return None
        waiter = GreenWaiter(self._handoff) if self._handoff else ThreadWaiter(self.threading)
        job = Job(fn, args, kwargs, deadline, waiter)
        (self._reads if kind == "read" else self._writes).put(job)
        waiter.wait(job)
        return job.outcome()

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
        raw: sqlite3.Connection | None = None
        while True:
            first = self._writes.get()
            if first is _STOP:
                break
            self._group = [first]
            try:
                if raw is None:
                    raw = self.db.open_raw()
                    self._busy_timeout = self.db.write_timeout
                self._commit_group(raw)
            except BaseException as error:  # nothing of this group committed
                log.exception("The database thread failed a group of writes")
                if raw is not None and raw.in_transaction:
                    raw.execute("ROLLBACK")
                for job in self._group:
                    if not job.finished:
                        job.fail(error)
                self._finish(self._group)
            self._group = []
            if self._stopping:
                break
        if raw is not None:
            raw.close()

    def _commit_group(self, raw: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE, every write waiting by then in its own savepoint, one COMMIT,
        then each caller gets its result (or its own exception)."""
        if not self._begin(raw):
            return
        group = self._group
        conn = database.SQLiteConnection(raw)
        if len(group) == 1:
            # Alone in its transaction: no savepoint needed to undo it alone.
            job = group[0]
            job.run(conn)
            if job.error is not None:
                if raw.in_transaction:
                    raw.execute("ROLLBACK")
                self._finish(group)
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
                    self._finish(self._group)
                    return
        try:
            raw.execute("COMMIT")
            self.groups_committed += 1
        except sqlite3.Error as error:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            for job in group:
                job.fail(database.DatabaseBusy() if database.is_busy(error) else error)
        self._finish(group)

    def _begin(self, raw: sqlite3.Connection) -> bool:
        """BEGIN IMMEDIATE within the time left to the first job; if the lock stays taken,
        that job fails with DatabaseBusy. Then add the writes waiting by now to the group
        (up to MAX_GROUP). False when nothing is left to run."""
        job = self._group[0]
        while True:
            wait = job.deadline - time.monotonic()
            if wait <= 0:
                job.fail(database.DatabaseBusy())
                self._finish(self._group)
                return False
            if abs(wait - self._busy_timeout) > BUSY_SLACK_S:
                self._busy_timeout = wait
                raw.execute(f"PRAGMA busy_timeout = {max(1, int(wait * 1000)):d}")
            try:
                raw.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as error:
                if not database.is_busy(error):
                    job.fail(error)
                    self._finish(self._group)
                    return False
        group = self._group
        while len(group) < MAX_GROUP:
            try:
                later = self._writes.get_nowait()
            except self._empty:
                break
            if later is _STOP:
                self._stopping = True
                break
            group.append(later)
        return True

    @staticmethod
    def _finish(jobs: list[Job]) -> None:
        for job in jobs:
            if job.finished:
                continue
            job.finished = True
            if job.waiter is not None:
                job.waiter.done()
            elif job.error is not None:
                log.warning("A queued write (%s) was not stored: %s", job.fn.__name__, job.error)
