"""The Redis server named by TEST_REDIS_URL, with a key prefix of one's own per test.

Without a reachable server these tests are skipped with the reason, except under
``CI=true``, where they fail: CI must run every test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bench import servers
from tests.skips import skip_or_fail

TEST_REDIS_URL = servers.REDIS_URL


def redis_client():
    """A client of the test Redis, or a skipped (or, under CI, failed) test."""
    import redis

    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        skip_or_fail(f"Redis not reachable at {TEST_REDIS_URL} ({error}); set TEST_REDIS_URL")
    return client


@contextlib.contextmanager
def redis_prefix() -> Iterator[str]:
    """A fresh key prefix; every key under it is deleted afterwards."""
    redis_client().close()  # skip (or fail) here when Redis is not there
    with servers.redis_prefix("test") as prefix:
        yield prefix
