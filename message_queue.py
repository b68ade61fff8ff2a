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
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from redis.backoff import NoBackoff
from redis.retry import Retry
from socketio import RedisManager

from helpers import now_ms

RESYNC_EVENT = "resync"
# The listener's first wait after losing Redis, doubled after each failure up to the cap.
RETRY_FIRST_SECONDS = 0.5
RETRY_CAP_SECONDS = 2.0
# A connection attempt to an unreachable Redis gives up after this long (the publish of
# an emit waits that long at most; the sender's ack follows it).
CONNECT_TIMEOUT_SECONDS = 2.0
# How far before the moment the queue was lost the catch-up starts: a message is stamped
# when its insert starts and published after its commit, which may wait for the database.
RESYNC_MARGIN_MS = 60_000

log = logging.getLogger("chat")


class ResyncingRedisManager(RedisManager):
    """python-socketio's Redis manager, with a capped retry and a resync after an outage."""

    def __init__(self, url: str, channel: str) -> None:
        # No retry inside redis-py: its pubsub would reconnect and resubscribe silently, and
        # the outage, with what it hid, would go unnoticed.
        options = {
            "retry": Retry(NoBackoff(), 0),
            "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        }
        super().__init__(url, channel=channel, redis_options=options)
        self.unpublished_since: int | None = None  # ms, the first emit that was not published

    def _listen(self) -> Iterator[bytes]:
        """Every message published on the channel, across reconnections, forever."""
        channel = self.channel.encode()
        delay = RETRY_FIRST_SECONDS
        lost_at: int | None = None
        while True:
            pubsub = None
            try:
                self._redis_connect()
                # Its own pubsub: a publish that reconnects replaces ``self.pubsub``.
                pubsub = self.redis.pubsub()
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
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        pubsub.close()  # its socket, broken or half-open, goes now
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
        if not self._try_publish(data):
            if self.unpublished_since is None:
                self.unpublished_since = now_ms()
                log.error("Could not publish on the message queue; other workers catch up later")
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
            if not self._try_publish(resync):
                self.unpublished_since = since

    def _try_publish(self, data: dict[str, Any]) -> bool:
        """One publish, with one reconnection if the connection had gone; True if sent."""
        for _attempt in range(2):
            try:
                if not self.connected:
                    self._redis_connect()
                self.redis.publish(self.channel, self.json.dumps(data))
                return True
            except Exception:  # the next attempt reconnects; the caller hears False
                self.connected = False
        return False
