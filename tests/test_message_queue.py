"""The queue between workers on a Redis of the test's own, in-process: after Redis comes
back, a worker's listener subscribes again within seconds and tells its own sockets to
``resync``; an emit
that could not be published makes the worker tell the other workers' sockets too, once
publishing works again. (Real workers and real clients: tests/test_queue_outage.py.)"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from message_queue import RESYNC_EVENT, RESYNC_MARGIN_MS, ResyncingRedisManager
from tests.own_redis import OwnRedis, own_redis

WAIT_S = 20.0


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[OwnRedis]:
    with own_redis(tmp_path / "redis") as server:
        yield server


def wait_until(check: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"Within {WAIT_S:.0f} s, never: {what}", pytrace=False)
        time.sleep(0.05)


def subscribers(queue: OwnRedis, channel: str) -> int:
    client = redis.Redis.from_url(queue.url)
    try:
        return dict(client.pubsub_numsub(channel))[channel.encode()]
    finally:
        client.close()


class Sockets:
    """What the listener emits to this worker's own sockets (the Socket.IO server's part)."""

    def __init__(self) -> None:
        self.emitted: list[tuple[str, Any, dict[str, Any]]] = []

    def emit(self, event: str, data: Any, **options: Any) -> None:
        self.emitted.append((event, data, options))


def test_the_listener_comes_back_after_a_redis_restart_and_tells_its_sockets_to_resync(queue):
    manager = ResyncingRedisManager(queue.url, channel="resync-test")
    sockets = Sockets()
    manager.server = sockets
    heard: list[bytes] = []
    threading.Thread(target=lambda: heard.extend(manager._listen()), daemon=True).start()
    wait_until(lambda: subscribers(queue, "resync-test") == 1, "the listener subscribes")
    assert sockets.emitted == []  # the first subscription is no comeback

    lost_after = int(time.time() * 1000)
    queue.kill()
    time.sleep(1)
    queue.start()
    wait_until(lambda: sockets.emitted, "the listener subscribes again")
    back_at = int(time.time() * 1000)
    ((event, data, options),) = sockets.emitted
    assert event == RESYNC_EVENT
    assert options == {"namespace": "/", "ignore_queue": True}  # this worker's sockets only
    assert lost_after - RESYNC_MARGIN_MS <= data["since"] <= back_at - RESYNC_MARGIN_MS

    publisher = redis.Redis.from_url(queue.url)
    publisher.publish("resync-test", b"after the restart")
    publisher.close()
    wait_until(lambda: heard == [b"after the restart"], "the listener hears the queue again")
    # The listener never ends: once this Redis is gone, let it knock where nothing will ever
    # listen, rather than on a port that a later test may be given.
    manager.redis_url = f"unix://{queue.folder / 'gone.sock'}"


def test_an_emit_that_could_not_be_published_makes_a_resync_for_the_other_workers(queue):
    """Publishing fails while Redis is away; the first publish that works is followed by
    a resync to every socket of every worker, marked from the first failure."""
    manager = ResyncingRedisManager(queue.url, channel="resync-test")
    emit = {"method": "emit", "event": "x", "data": [{}], "namespace": "/", "room": "r"}
    queue.kill()
    failed_at = int(time.time() * 1000)
    manager._publish(emit)  # Redis is down: not published
    assert manager.unpublished_since is not None and manager.unpublished_since >= failed_at
    queue.start()
    listener = redis.Redis.from_url(queue.url).pubsub()
    listener.subscribe("resync-test")
    assert listener.get_message(timeout=5)["type"] == "subscribe"
    manager._publish(emit)
    published_at = int(time.time() * 1000)
    first = json.loads(listener.get_message(timeout=5)["data"])
    second = json.loads(listener.get_message(timeout=5)["data"])
    assert first["event"] == "x"
    assert second["event"] == RESYNC_EVENT
    assert second["room"] is None and second["namespace"] == "/"  # every socket
    (payload,) = second["data"]
    assert failed_at - RESYNC_MARGIN_MS <= payload["since"] <= published_at - RESYNC_MARGIN_MS
    assert manager.unpublished_since is None
    manager._publish(emit)  # and only once
    assert json.loads(listener.get_message(timeout=5)["data"])["event"] == "x"
    assert listener.get_message(timeout=0.5) is None
    listener.close()


def listen_in_background(manager: ResyncingRedisManager) -> list[bytes]:
    """Run the manager's listener in a thread; what it hears is appended to the list."""
    heard: list[bytes] = []
    threading.Thread(target=lambda: heard.extend(manager._listen()), daemon=True).start()
    return heard


def stop_knocking(manager: ResyncingRedisManager, queue: OwnRedis) -> None:
    """The listener never ends: once this Redis is gone, let it knock where nothing will
    ever listen, rather than on a port that a later test may be given."""
    manager.redis_url = f"unix://{queue.folder / 'gone.sock'}"


def test_a_publish_on_a_connection_redis_closed_leaves_the_listener_subscribed(queue):
    """Redis closes the publishers' connection (a client timeout, a CLIENT KILL): the next
    publish goes out on a new connection of the same pool, and the listener, on its own
    connection, hears on without a break."""
    manager = ResyncingRedisManager(queue.url, channel="closed-publisher")
    sockets = Sockets()
    manager.server = sockets
    heard = listen_in_background(manager)
    wait_until(lambda: subscribers(queue, "closed-publisher") == 1, "the listener subscribes")
    emit = {"method": "emit", "event": "x", "data": [{}], "namespace": "/", "room": "r"}
    manager._publish({**emit, "event": "before"})
    wait_until(lambda: len(heard) == 1, "the listener hears the first publish")

    admin = redis.Redis.from_url(queue.url)
    assert admin.client_kill_filter(_type="normal", skipme=True) >= 1  # the publisher's
    admin.close()
    manager._publish({**emit, "event": "after"})
    manager._publish({**emit, "event": "later"})

    wait_until(lambda: len(heard) == 3, "the listener hears every publish")
    assert [json.loads(data)["event"] for data in heard] == ["before", "after", "later"]
    time.sleep(1)  # a listener that lost its connection would say so within this
    assert sockets.emitted == []
    assert manager.unpublished_since is None
    stop_knocking(manager, queue)


def test_a_publish_that_fails_leaves_the_listener_subscribed(queue):
    """Every connection of the publishers' pool is taken: a publish fails, and the listener
    hears on regardless (it used to lose its subscription, "I/O operation on closed file",
    when the failed publish made a new client and the old one closed its pool)."""
    manager = ResyncingRedisManager(
        queue.url, channel="failed-publish", pool_size=1, pool_wait_seconds=0.2
    )
    sockets = Sockets()
    manager.server = sockets
    heard = listen_in_background(manager)
    wait_until(lambda: subscribers(queue, "failed-publish") == 1, "the listener subscribes")
    emit = {"method": "emit", "event": "x", "data": [{}], "namespace": "/", "room": "r"}

    taken = manager.pool.get_connection()
    manager._publish({**emit, "event": "not published"})
    assert manager.unpublished_since is not None
    manager.pool.release(taken)
    manager._publish(emit)

    wait_until(lambda: len(heard) == 2, "the listener hears the publish and the resync")
    assert [json.loads(data)["event"] for data in heard] == ["x", RESYNC_EVENT]
    assert sockets.emitted == []  # the listener itself never lost the queue
    assert subscribers(queue, "failed-publish") == 1
    stop_knocking(manager, queue)


def test_a_burst_of_publishes_larger_than_the_pool_waits_for_connections(queue):
    """Sixteen senders at once publish through a pool of two connections: each waits for a
    free connection, none fails, and every publish is heard once."""
    manager = ResyncingRedisManager(queue.url, channel="burst", pool_size=2, pool_wait_seconds=5)
    manager.server = Sockets()
    heard = listen_in_background(manager)
    wait_until(lambda: subscribers(queue, "burst") == 1, "the listener subscribes")
    start = threading.Barrier(16)

    def sender(number: int) -> None:
        start.wait()
        for turn in range(10):
            manager._publish({"method": "emit", "event": f"{number}-{turn}", "data": [{}]})

    senders = [threading.Thread(target=sender, args=(number,)) for number in range(16)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    wait_until(lambda: len(heard) >= 160, "the listener hears every publish")
    events = sorted(json.loads(data)["event"] for data in heard)
    assert events == sorted(f"{n}-{t}" for n in range(16) for t in range(10))
    assert manager.unpublished_since is None
    assert len(manager.pool._connections) <= 2
    stop_knocking(manager, queue)
