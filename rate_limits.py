"""Per-user limits on Socket.IO events (every event has one, see events.py): counted where
the HTTP routes' limits are counted (Flask-Limiter's storage) when workers share Redis, else
in this process without the timer that ``limits``' in-memory storage runs.

``limits.storage.MemoryStorage`` expires its counters with a ``threading.Timer`` that it
starts again 10 ms after the last one, on every hit. Under eventlet each timer is a new
green thread: in profiles of the message path at 600 messages/s that was 2 % of the
server's time, and the whole check 6 %. ``LocalWindows`` keeps the same fixed-window
counters and expires them when they are read, which is all that a fixed window needs, and
``LocalEventLimiter`` counts in them under tuple keys instead of the formatted strings (and
error-wrapping calls) a storage shared with other processes needs: a message's check costs
about 1 µs instead of 3.7.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from typing import Any

from flask import current_app
from limits import parse as parse_limit
from limits.limits import RateLimitItem
from limits.storage import MemoryStorage, Storage
from limits.strategies import FixedWindowRateLimiter
from limits.util import WindowStats

from helpers import TooFast

TOO_FAST = "You are sending too fast. Please wait a moment."
# Expired windows are dropped when the table has grown by this much since the last sweep,
# so memory stays proportional to the users active within one window.
SWEEP_EVERY = 10_000


class LocalWindows(Storage):
    """Fixed-window counters in one process, expired lazily (no timer, no thread)."""

    STORAGE_SCHEME = ["chat-local-windows"]

    def __init__(self, uri: str | None = None, **options: float | str | bool) -> None:
        super().__init__(uri, **options)
        self._windows: dict[str, tuple[int, float]] = {}  # key -> (count, expires at)
        self._next_sweep = SWEEP_EVERY
        self._lock = threading.Lock()  # for the threading server; uncontended on eventlet

    @property
    def base_exceptions(self) -> type[Exception]:
        return ValueError

    def _live(self, key: Any, now: float) -> tuple[int, float] | None:
        window = self._windows.get(key)
        if window is not None and window[1] <= now:
            self._windows.pop(key, None)
            return None
        return window

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        return self.count(key, expiry, amount)

    def count(self, key: Any, expiry: float, amount: int = 1) -> int:
        """``incr`` for a key of any hashable kind, without the storage interface's wrapper."""
        now = time.time()
        with self._lock:
            window = self._live(key, now)
            count, expires_at = window if window is not None else (0, now + expiry)
            self._windows[key] = (count + amount, expires_at)
            if len(self._windows) >= self._next_sweep:
                self._sweep(now)
        return count + amount

    def get(self, key: Any) -> int:
        window = self._live(key, time.time())
        return 0 if window is None else window[0]

    def get_expiry(self, key: Any) -> float:
        now = time.time()
        window = self._live(key, now)
        return now if window is None else window[1]

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        count = len(self._windows)
        self._windows.clear()
        return count

    def clear(self, key: str) -> None:
        self._windows.pop(key, None)

    def _sweep(self, now: float) -> None:
        self._windows = {key: w for key, w in self._windows.items() if w[1] > now}
        self._next_sweep = len(self._windows) + SWEEP_EVERY


class LocalEventLimiter(FixedWindowRateLimiter):
    """The fixed-window limiter over ``LocalWindows``, its keys tuples of the limit and the
    identifiers."""

    storage: LocalWindows

    @staticmethod
    def _key(item: RateLimitItem, identifiers: tuple[str, ...]) -> tuple[Any, ...]:
        return (item.amount, item.multiples, item.GRANULARITY.seconds, *identifiers)

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        key = self._key(item, identifiers)
        return self.storage.count(key, item.get_expiry(), cost) <= item.amount

    def test(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        return self.storage.get(self._key(item, identifiers)) < item.amount - cost + 1

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        key = self._key(item, identifiers)
        remaining = max(0, item.amount - self.storage.get(key))
        return WindowStats(self.storage.get_expiry(key), remaining)


def event_limiter(http_storage: Storage | None) -> FixedWindowRateLimiter:
    """The limiter for Socket.IO events: shared counters when the HTTP limits are shared
    (Redis), counters of this process when they are in this process's memory anyway
    (or when limits are off, ``None``)."""
    shared = http_storage is not None and not isinstance(http_storage, MemoryStorage)
    return FixedWindowRateLimiter(http_storage) if shared else LocalEventLimiter(LocalWindows())


# Parsing "20 per 2 seconds" on every message showed in profiles; settings rarely change.
_parsed_limit = functools.lru_cache(maxsize=64)(parse_limit)


def check_rate(setting: str, user_id: int) -> None:
    """Count one action of ``user_id`` against the limit named by ``setting``; refuse it
    when the user is over the limit, so a flood slows its sender and nobody else."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not app.extensions["rate_limiter"].enabled:
        return
    limiter = app.extensions["event_limiter"]
    limit = _parsed_limit(app.config[setting])
    if not limiter.hit(limit, setting, str(user_id)):
        reset_at, _remaining = limiter.get_window_stats(limit, setting, str(user_id))
        raise TooFast(TOO_FAST, retry_after=max(1, math.ceil(reset_at - time.time())))
