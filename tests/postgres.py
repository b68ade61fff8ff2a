"""A throwaway PostgreSQL schema per test, on the server named by TEST_POSTGRES_URL.

Without a reachable server the PostgreSQL half of the suite is skipped with the reason,
except under ``CI=true``, where it fails: CI must run every test on both databases.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bench import servers
from tests.skips import skip_or_fail

TEST_POSTGRES_URL = servers.POSTGRES_URL


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A DATABASE_URL whose tables live in a new schema, dropped afterwards."""
    try:
        import psycopg2
    except ImportError:
        skip_or_fail("psycopg2 is not installed")
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(servers.postgres_schema("test"))
        except psycopg2.OperationalError as error:
            skip_or_fail(
                f"PostgreSQL not reachable at {TEST_POSTGRES_URL} ({str(error).strip()}); "
                "set TEST_POSTGRES_URL to run these tests"
            )
        yield url
