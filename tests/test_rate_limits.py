"""The counters behind the per-user limits on Socket.IO events."""

from __future__ import annotations

from limits import parse
from limits.storage import MemoryStorage, RedisStorage

import rate_limits
from rate_limits import LocalWindows, event_limiter
from tests.conftest import Clock


def test_a_window_counts_hits_until_it_ends_then_starts_again(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(rate_limits.time, "time", clock)
    limiter = event_limiter(MemoryStorage())
    three_per_2s = parse("3 per 2 seconds")
    assert [limiter.hit(three_per_2s, "send", "7") for _ in range(4)] == [True] * 3 + [False]
    assert limiter.hit(three_per_2s, "send", "8"), "another user has a count of their own"
    reset_at, remaining = limiter.get_window_stats(three_per_2s, "send", "7")
    assert remaining == 0 and reset_at == clock.now + 2
    clock.now += 1.9
    assert not limiter.hit(three_per_2s, "send", "7")
    clock.now += 0.1
    assert limiter.hit(three_per_2s, "send", "7"), "a new window"
    assert limiter.get_window_stats(three_per_2s, "send", "7")[1] == 2


def test_expired_windows_are_swept_so_memory_follows_active_users(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(rate_limits.time, "time", clock)
    monkeypatch.setattr(rate_limits, "SWEEP_EVERY", 100)
    storage = LocalWindows()
    for user in range(99):
        storage.incr(f"send/{user}", expiry=1)
    clock.now += 5
    storage.incr("send/late", expiry=1)  # the 100th key: a sweep
    assert len(storage._windows) == 1
    assert storage.get("send/0") == 0
    assert storage.get_expiry("send/late") == clock.now + 1


def test_events_share_redis_counters_when_the_http_limits_do():
    redis_storage = RedisStorage("redis://127.0.0.1:1")  # not connected until used
    assert event_limiter(redis_storage).storage is redis_storage
    assert isinstance(event_limiter(MemoryStorage()).storage, LocalWindows)
