"""The message queue between workers (Redis), and the catch-up after it was lost.

python-socketio's ``RedisManager`` publishes every emit on a Redis channel and listens to
it in one background task per worker. When Redis goes away (a restart, a network cut), two
things go wrong with it as it is: its listener tries again after 1, 2, 4 … 60 s, so a
worker can stay deaf for a minute after Redis is back; and nobody is told what was missed
meanwhile, so messages stored and acknowledged while a worker was deaf never reach its
sockets until a reload.

``ResyncingRedisManager`` tries again within ``RETRY_CAP_SECONDS``, and once its listener is
subscribed again it emits ``resync {since}`` to every socket of its own worker (locally,
not through the queue): the browser then runs its reconnect catch-up (``list_chats``, then
``join_chat {after_id}`` for the open chat) from the newest message it shows that is older
than ``since``. Messages from this worker's own senders reached its sockets during the
outage (an emit is handled locally before it is published), so the newest message shown
can be newer than one that was missed: hence a time rather than "after the newest".

An emit that cannot be published (Redis down between the sender's rate check and the
publish) was still stored, acknowledged and delivered to this worker's sockets; the other
workers learn of it by the ``resync`` that their own listeners announce when Redis is
back, and, should their listeners never have noticed the outage (a cut only between this
worker and Redis), by a ``resync`` this worker publishes once publishing works again.

The manager makes its Redis client once, for the worker's life, on a blocking connection
pool: a burst of publishes (a group commit wakes up to 32 senders at once) waits for a
connection instead of failing with "Too many connections". python-socketio's manager made a
new client after any publish that failed, and the client it dropped closed its pool as it
was collected, with every connection in use: the listener's subscription ("I/O operation on
closed file") and the publishes of other senders, whose failures made new clients in turn.
The listener now has a connection of its own, outside the publishers' pool.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from socketio import RedisManager

from helpers import now_ms

RESYNC_EVENT = "resync"
# The listener's first wait after losing Redis, doubled after each failure up to the cap.
RETRY_FIRST_SECONDS = 0.5
RETRY_CAP_SECONDS = 2.0
# A connection attempt to an unreachable Redis gives up after this long. The publish of an
# emit (the sender's ack follows it) waits at most for a free connection of the pool, then
# for two such attempts.
CONNECT_TIMEOUT_SECONDS = 2.0
# How far before the moment the queue was lost the catch-up starts: a message is stamped
# when its insert starts and published after its commit, which may wait for the database.
RESYNC_MARGIN_MS = 60_000

log = logging.getLogger("chat")


class ResyncingRedisManager(RedisManager):
    """python-socketio's Redis manager, with a capped retry and a resync after an outage,
    and one client on a blocking pool of ``pool_size`` connections (a publish waits up to
    ``pool_wait_seconds`` for one)."""

    def __init__(
        self, url: str, channel: str, pool_size: int = 50, pool_wait_seconds: float = 5.0
    ) -> None:
        super().__init__(url, channel=channel)
        # A publish that meets a connection Redis closed (a restart) tries once more on a
        # new one; waiting for a free connection is outside that retry.
        self.pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=pool_size,
            timeout=pool_wait_seconds,
            retry=Retry(NoBackoff(), 1),
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        )
        self.unpublished_since: int | None = None  # ms, the first emit that was not published

    def _redis_connect(self) -> None:
        """The publishers' client, made once: it never closes the pool (a client made with
        ``from_url`` closes its pool, connections in use and all, when it is collected)."""
        if self.redis is None:
            self.redis = redis.Redis(connection_pool=self.pool)
        self.connected = True

    def _listener_client(self) -> redis.Redis:
        """A client of the listener's own, one connection, for one subscription. No retry
        inside redis-py: its pubsub would reconnect and resubscribe silently, and the outage,
        with what it hid, would go unnoticed."""
        return redis.Redis.from_url(
            self.redis_url,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        )

    def _listen(self) -> Iterator[bytes]:
        """Every message published on the channel, across reconnections, forever."""
        channel = self.channel.encode()
        delay = RETRY_FIRST_SECONDS
        lost_at: int | None = None
        while True:
            client = pubsub = None
            try:
                client = self._listener_client()
                pubsub = client.pubsub()
                pubsub.subscribe(self.channel)
                for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        # Redis confirmed the subscription: from now on nothing is missed.
                        delay = RETRY_FIRST_SECONDS
                        if lost_at is not None:
                            self.announce_resync(lost_at)
                            lost_at = None
                    elif message["type"] == "message" and message["channel"] == channel:
                        yield message["data"]
            except Exception as error:  # redis-py's errors, or anything a reconnect raises
                for part in (pubsub, client):
                    if part is not None:
                        with contextlib.suppress(Exception):
                            part.close()  # its socket, broken or half-open, goes now
                if lost_at is None:
                    lost_at = now_ms()
                    log.error(
                        "Lost the message queue (%s: %s); trying again every %.1f s at most",
                        type(error).__name__,
                        error,
                        RETRY_CAP_SECONDS,
                    )
                time.sleep(delay)
                delay = min(delay * 2, RETRY_CAP_SECONDS)

    def announce_resync(self, lost_at: int) -> None:
        """Tell every socket of this worker to catch up with what came since ``lost_at``."""
        since = lost_at - RESYNC_MARGIN_MS
        log.warning("The message queue is back: this worker's sockets catch up")
        self.server.emit(RESYNC_EVENT, {"since": since}, namespace="/", ignore_queue=True)

    def _publish(self, data: dict[str, Any]) -> None:
        """Publish ``data``; after a publish that failed, also tell the other workers'
        sockets to catch up once publishing works again."""
        error = self._try_publish(data)
        if error is not None:
            if self.unpublished_since is None:
                self.unpublished_since = now_ms()
                log.error(
                    "Could not publish on the message queue (%s: %s); "
                    "the other workers' sockets catch up later",
                    type(error).__name__,
                    error,
                )
            return
        if self.unpublished_since is not None:
            since, self.unpublished_since = self.unpublished_since, None
            resync = {
                "method": "emit",
                "event": RESYNC_EVENT,
                "data": [{"since": since - RESYNC_MARGIN_MS}],
                "binary": False,
                "namespace": "/",
                "room": None,
                "skip_sid": None,
                "callback": None,
                "host_id": self.host_id,
            }
            if self._try_publish(resync) is not None:
                self.unpublished_since = since

    def _try_publish(self, data: dict[str, Any]) -> Exception | None:
        """One publish (redis-py tries once more on a new connection if Redis had closed
        the one it took); None if it was sent, else what failed."""
        try:
            self._redis_connect()
            self.redis.publish(self.channel, self.json.dumps(data))
        except Exception as error:  # redis-py's errors: the caller logs and resyncs
            return error
        return None
