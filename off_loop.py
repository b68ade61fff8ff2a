"""Work that computes or waits, run on a real OS thread when the server is eventlet's.

eventlet runs every socket of a worker on one OS thread: a password hash (scrypt, about
0.1 s), a picture's decoding or a scan of the session files run there would stop every user
for that long. ``run`` hands such work to eventlet's pool of native threads
(``eventlet.tpool``) and lets the loop serve everyone else meanwhile; a ``Lane`` does the
same for at most so many pieces of one kind at once. Without eventlet (the threading server
of the tests, or a script) each request already has its own thread, and ``run`` is a plain
call.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def on_event_loop() -> bool:
    """Whether this process runs on eventlet's loop (``python app.py`` monkey-patches)."""
    eventlet = sys.modules.get("eventlet")
    return eventlet is not None and eventlet.patcher.is_monkey_patched("thread")


def run(work: Callable[..., T], *args: object, **kwargs: object) -> T:
    """``work(*args, **kwargs)``, on a native thread when on eventlet, else here.

    Only for work that touches no green socket (hashing, decoding, local files): a native
    thread must not use the connections that belong to eventlet's loop.
    """
    if on_event_loop():
        from eventlet import tpool

        return tpool.execute(work, *args, **kwargs)
    return work(*args, **kwargs)


class Lane:
    """``run``, with at most ``width`` pieces of work at once; the others wait their turn.

    Under eventlet the semaphore is a green one (``threading`` is monkey-patched): a caller
    waiting for a place blocks nobody else.
    """

    def __init__(self, width: int) -> None:
        self.width = width
        self._places = threading.BoundedSemaphore(width)

    def run(self, work: Callable[..., T], *args: object, **kwargs: object) -> T:
        """``work(*args, **kwargs)`` off the loop, once a place is free."""
        with self._places:
            return run(work, *args, **kwargs)
