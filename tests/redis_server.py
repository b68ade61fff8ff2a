"""The Redis server named by TEST_REDIS_URL, with a key prefix of one's own per test.

Without a reachable server these tests are skipped with the reason, except under
``CI=true``, where they fail: CI must run every test.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_client():
    """A client of the test Redis, or a skipped (or, under CI, failed) test."""
    import redis

    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        reason = f"Redis not reachable at {TEST_REDIS_URL} ({error}); set TEST_REDIS_URL"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"{reason} (CI=true: the Redis tests may not be skipped)", pytrace=False)
        pytest.skip(reason)
    return client


@contextlib.contextmanager
def redis_prefix() -> Iterator[str]:
    """A fresh key prefix; every key under it is deleted afterwards."""
    client = redis_client()
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
