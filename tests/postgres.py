"""A throwaway PostgreSQL schema per test, on the server named by TEST_POSTGRES_URL.

Without a reachable server the PostgreSQL half of the suite is skipped with the reason,
except under ``CI=true``, where it fails: CI must run every test on both databases.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest

TEST_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason} (CI=true: the PostgreSQL tests may not be skipped)", pytrace=False)
    pytest.skip(reason)


def _admin_connection():
    try:
        import psycopg2
    except ImportError:
        _skip_or_fail("psycopg2 is not installed")
    try:
        conn = psycopg2.connect(TEST_POSTGRES_URL, connect_timeout=3)
    except psycopg2.OperationalError as error:
        _skip_or_fail(
            f"PostgreSQL not reachable at {TEST_POSTGRES_URL} ({str(error).strip()}); "
            "set TEST_POSTGRES_URL to run these tests"
        )
    conn.autocommit = True
    return conn


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A DATABASE_URL whose tables live in a new schema, dropped afterwards."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = _admin_connection()
    try:
        admin.cursor().execute(f'CREATE SCHEMA "{schema}"')
        separator = "&" if "?" in TEST_POSTGRES_URL else "?"
        yield f"{TEST_POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        admin.cursor().execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()
