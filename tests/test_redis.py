"""Several workers share one Redis: a login made on one is valid on the others, and limit
counters add up across them; every Redis client of a worker waits for a free connection of
its pool rather than failing. (Messages, presence and typing across real worker processes
are in tests/test_cluster.py.)"""

from __future__ import annotations

import threading

import pytest
import redis

from tests.conftest import PASSWORD, register
from tests.redis_server import TEST_REDIS_URL, redis_client, redis_prefix


@pytest.fixture
def workers(make_app):
    """Two apps on the same database and the same Redis, like two worker processes."""
    with redis_prefix() as prefix:
        shared = {"REDIS_URL": TEST_REDIS_URL, "REDIS_PREFIX": prefix, "SECRET_KEY": "shared"}
        yield (
            prefix,
            make_app(**shared, LOGIN_RATE_LIMIT="3 per minute"),
            make_app(**shared, LOGIN_RATE_LIMIT="3 per minute"),
        )


def test_a_login_on_one_worker_is_valid_on_another(workers):
    prefix, first, second = workers
    browser = first.test_client()
    assert register(browser, "alice").status_code == 303
    cookie = browser.get_cookie("session").value
    assert list(redis_client().scan_iter(f"{prefix}:session:*"))
    elsewhere = second.test_client()
    elsewhere.set_cookie("session", cookie)
    assert elsewhere.get("/chats").status_code == 200
    assert elsewhere.post("/logout").status_code == 303
    browser_again = first.test_client()
    browser_again.set_cookie("session", cookie)
    assert browser_again.get("/chats").status_code == 302  # logged out everywhere


def test_limit_counters_add_up_across_workers(workers):
    _, first, second = workers
    register(first.test_client(), "alice")
    attempts = [
        (first, "guess 1"),
        (second, "guess 2"),
        (first, "guess 3"),
        (second, PASSWORD),
    ]
    codes = [
        worker.test_client().post("/login", data={"username": "alice", "password": password})
        for worker, password in attempts
    ]
    assert [r.status_code for r in codes] == [400, 400, 400, 429]


def test_presence_is_shared(workers):
    _, first, second = workers
    first_store = first.extensions["presence"].store
    second_store = second.extensions["presence"].store
    first.extensions["presence"].connected(1, "sid-on-first")
    assert second_store.online_count() == 1
    assert second_store.online_among([1, 2]) == {1}
    assert second.extensions["presence"].disconnected(1, "sid-on-first") is True
    assert first_store.online_count() == 0


def test_every_redis_client_of_a_worker_waits_for_a_connection_of_a_bounded_pool(make_app):
    """Sessions, limit counters, presence and the message queue's publishers each draw on a
    blocking pool of REDIS_POOL_SIZE connections (redis-py's default pool fails a burst
    with "Too many connections")."""
    with redis_prefix() as prefix:
        app = make_app(
            REDIS_URL=TEST_REDIS_URL,
            REDIS_PREFIX=prefix,
            REDIS_POOL_SIZE=3,
            REDIS_POOL_WAIT_SECONDS=7.5,
        )
        shared = app.config["SESSION_REDIS"].connection_pool
        pools = {
            "sessions": shared,
            "presence": app.extensions["presence"].store.redis.connection_pool,
            "limits": app.extensions["rate_limiter"].storage.storage.connection_pool,
            "message queue": app.extensions["socketio"].server.manager.pool,
        }
        for name, pool in pools.items():
            assert isinstance(pool, redis.BlockingConnectionPool), name
            assert (pool.max_connections, pool.timeout) == (3, 7.5), name
        assert pools["presence"] is shared and pools["limits"] is shared


def test_a_login_waits_while_every_connection_of_the_pool_is_in_use(make_app):
    """The only connection is taken for a moment: the login (its limit counters, then its
    session) waits for it and succeeds."""
    with redis_prefix() as prefix:
        app = make_app(
            REDIS_URL=TEST_REDIS_URL,
            REDIS_PREFIX=prefix,
            REDIS_POOL_SIZE=1,
            REDIS_POOL_WAIT_SECONDS=10.0,
        )
        register(app.test_client(), "alice")
        pool = app.config["SESSION_REDIS"].connection_pool
        taken = pool.get_connection()
        released = threading.Event()

        def release() -> None:
            released.set()
            pool.release(taken)

        threading.Timer(0.5, release).start()
        answer = app.test_client().post("/login", data={"username": "alice", "password": PASSWORD})
        assert answer.status_code == 303
        assert released.is_set()  # it could only have gone on once the connection was free


def test_limit_counters_in_another_redis_get_a_blocking_pool_of_their_own(make_app):
    with redis_prefix() as prefix:
        app = make_app(
            REDIS_URL=TEST_REDIS_URL,
            REDIS_PREFIX=prefix,
            RATELIMIT_STORAGE_URI=f"{TEST_REDIS_URL}?client_name={prefix}-limits",
            REDIS_POOL_SIZE=4,
        )
        pool = app.extensions["rate_limiter"].storage.storage.connection_pool
        assert isinstance(pool, redis.BlockingConnectionPool)
        assert pool.max_connections == 4
        assert pool is not app.config["SESSION_REDIS"].connection_pool
        assert pool.connection_kwargs["client_name"] == f"{prefix}-limits"
