"""Who is online: distinct users with at least one open socket.

``Presence`` is the small interface the handlers use. ``LocalPresence`` keeps it in this
process for one worker; ``RedisPresence`` shares it between workers. Every entry carries an
expiry that the worker holding the socket pushes forward (``refresh``); a worker that dies
stops refreshing, and its sockets' entries expire (``sweep``), so nobody stays "online"
forever. ``PresenceTracker`` is one worker's side: the sockets it holds.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from flask import Flask

import broadcast
from settings import DEFAULTS


class Presence(Protocol):
    """The presence store every worker talks to."""

    def add(self, user_id: int, sid: str, session_key: str | None = None) -> bool:
        """Record an open socket (and the login session it was opened with); True if the
        user just came online."""

    def remove(self, user_id: int, sid: str, session_key: str | None = None) -> bool:
        """Forget a closed socket (opened with ``session_key``); True if the user just went
        offline."""

    def refresh(self, sids: Iterable[tuple[int, str]]) -> None:
        """Push the expiry of these (user_id, sid) sockets forward: they are still open."""

    def sweep(self) -> list[int]:
        """Drop expired sockets; return the users who went offline because of it."""

    def online_count(self) -> int:
        """How many distinct users have at least one open socket."""

    def online_among(self, user_ids: Iterable[int]) -> set[int]:
        """Which of these users are online."""

    def sockets_of_session(self, session_key: str) -> list[str]:
        """The open sockets of one login session, on any worker."""

    def sockets_of_user(self, user_id: int) -> list[str]:
        """The open sockets of one user, on any worker."""


class LocalPresence:
    """Presence kept in this process's memory, for a single worker."""

    def __init__(self, ttl: float, clock: Callable[[], float] | None = None):
        self.ttl = ttl
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._sockets: dict[int, dict[str, float]] = {}  # user_id -> {sid: expires_at}
        self._session_of: dict[str, str] = {}  # sid -> login session key

    def add(self, user_id: int, sid: str, session_key: str | None = None) -> bool:
        """Record an open socket; True if the user just came online."""
        with self._lock:
            sockets = self._sockets.setdefault(user_id, {})
            came_online = not sockets
            sockets[sid] = self._clock() + self.ttl
            if session_key:
                self._session_of[sid] = session_key
            return came_online

    def remove(self, user_id: int, sid: str, session_key: str | None = None) -> bool:
        """Forget a closed socket; True if the user just went offline."""
        with self._lock:
            self._session_of.pop(sid, None)
            sockets = self._sockets.get(user_id)
            if not sockets or sockets.pop(sid, None) is None:
                return False
            if sockets:
                return False
            del self._sockets[user_id]
            return True

    def refresh(self, sids: Iterable[tuple[int, str]]) -> None:
        """Push the expiry of these sockets forward."""
        expires_at = self._clock() + self.ttl
        with self._lock:
            for user_id, sid in sids:
                sockets = self._sockets.get(user_id)
                if sockets is not None and sid in sockets:
                    sockets[sid] = expires_at

    def sweep(self) -> list[int]:
        """Drop expired sockets; return the users who went offline because of it."""
        now = self._clock()
        gone = []
        with self._lock:
            for user_id in list(self._sockets):
                sockets = self._sockets[user_id]
                for sid in [sid for sid, expires_at in sockets.items() if expires_at <= now]:
                    del sockets[sid]
                    self._session_of.pop(sid, None)
                if not sockets:
                    del self._sockets[user_id]
                    gone.append(user_id)
        return gone

    def online_count(self) -> int:
        """How many distinct users have at least one open socket."""
        with self._lock:
            return len(self._sockets)

    def online_among(self, user_ids: Iterable[int]) -> set[int]:
        """Which of these users are online."""
        with self._lock:
            return {user_id for user_id in user_ids if user_id in self._sockets}

    def sockets_of_session(self, session_key: str) -> list[str]:
        """The open sockets of one login session."""
        with self._lock:
            return [sid for sid, key in self._session_of.items() if key == session_key]

    def sockets_of_user(self, user_id: int) -> list[str]:
        """The open sockets of one user."""
        with self._lock:
            return list(self._sockets.get(user_id, {}))


class PresenceTracker:
    """One worker's side of presence: the sockets it holds, kept alive in a shared store."""

    def __init__(self, store: Presence):
        self.store = store
        self._lock = threading.Lock()
        # sid -> (user_id, login session key), for the sockets of this worker
        self._local: dict[str, tuple[int, str | None]] = {}

    # The lock spans the store calls: a heartbeat never refreshes a socket that is closing.

    def connected(self, user_id: int, sid: str, session_key: str | None = None) -> bool:
        """A socket of this worker opened; True if its user just came online."""
        with self._lock:
            self._local[sid] = (user_id, session_key)
            return self.store.add(user_id, sid, session_key)

    def disconnected(self, user_id: int, sid: str) -> bool:
        """A socket of this worker closed; True if its user just went offline."""
        with self._lock:
            _, session_key = self._local.pop(sid, (user_id, None))
            return self.store.remove(user_id, sid, session_key)

    def heartbeat(self) -> list[int]:
        """Keep this worker's sockets alive; return users whose last socket expired."""
        with self._lock:
            self.store.refresh([(user_id, sid) for sid, (user_id, _) in self._local.items()])
        return self.store.sweep()


# Redis scripts: each change of one user's sockets happens atomically, so two workers
# never both announce the same user coming online or going offline.
_ADD = """
local user_key, online_key, session_key = KEYS[1], KEYS[2], KEYS[3]
local now, expires_at, user_id, sid = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local session_lifetime = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', user_key, '-inf', now)
local before = redis.call('ZCARD', user_key)
redis.call('ZADD', user_key, expires_at, sid)
redis.call('ZADD', online_key, 'GT', expires_at, user_id)
if session_key ~= '' then
  redis.call('HSET', session_key, sid, user_id)
  redis.call('EXPIRE', session_key, session_lifetime)
end
return before == 0 and 1 or 0
"""
_REMOVE = """
local user_key, online_key, session_key = KEYS[1], KEYS[2], KEYS[3]
local now, user_id, sid = tonumber(ARGV[1]), ARGV[2], ARGV[3]
if session_key ~= '' then redis.call('HDEL', session_key, sid) end
local removed = redis.call('ZREM', user_key, sid)
redis.call('ZREMRANGEBYSCORE', user_key, '-inf', now)
if redis.call('ZCARD', user_key) > 0 then return 0 end
local was_online = redis.call('ZREM', online_key, user_id)
return (removed == 1 and was_online == 1) and 1 or 0
"""
# Drop one user's expired sockets; 1 if this call took them offline.
_EXPIRE_USER = """
local user_key, online_key = KEYS[1], KEYS[2]
local now, user_id = tonumber(ARGV[1]), ARGV[2]
redis.call('ZREMRANGEBYSCORE', user_key, '-inf', now)
local newest = redis.call('ZRANGE', user_key, -1, -1, 'WITHSCORES')
if newest[2] then
  redis.call('ZADD', online_key, newest[2], user_id)
  return 0
end
return redis.call('ZREM', online_key, user_id)
"""


class RedisPresence:
    """Presence shared by every worker through Redis.

    ``<prefix>:presence:online`` is a sorted set of user ids scored by their newest socket's
    expiry; ``<prefix>:presence:user:<id>`` the user's sockets scored by expiry;
    ``<prefix>:presence:session:<key>`` the sockets of one login session. Times are wall-clock
    seconds, the same on every machine.
    """

    def __init__(
        self,
        client: Any,
        prefix: str,
        ttl: float,
        clock: Callable[[], float] | None = None,
        session_lifetime: int = DEFAULTS["PERMANENT_SESSION_LIFETIME"],
    ):
        """``session_lifetime``: how long a login session's list of sockets is kept, as long
        as the session itself (``PERMANENT_SESSION_LIFETIME``)."""
        self.redis = client
        self.prefix = f"{prefix}:presence"
        self.ttl = ttl
        self._clock = clock or time.time
        self.session_lifetime = session_lifetime
        self._add = client.register_script(_ADD)
        self._remove = client.register_script(_REMOVE)
        self._expire_user = client.register_script(_EXPIRE_USER)

    def _user_key(self, user_id: int | str) -> str:
        return f"{self.prefix}:user:{user_id}"

    def _session_key(self, session_key: str | None) -> str:
        return f"{self.prefix}:session:{session_key}" if session_key else ""

    @property
    def _online_key(self) -> str:
        return f"{self.prefix}:online"

    def add(self, user_id: int, sid: str, session_key: str | None = None) -> bool:
        """Record an open socket; True if the user just came online."""
        now = self._clock()
        keys = [self._user_key(user_id), self._online_key, self._session_key(session_key)]
        return bool(
            self._add(keys=keys, args=[now, now + self.ttl, user_id, sid, self.session_lifetime])
        )

    def remove(self, user_id: int, sid: str, session_key: str | None = None) -> bool:
        """Forget a closed socket; True if the user just went offline."""
        keys = [self._user_key(user_id), self._online_key, self._session_key(session_key)]
        return bool(self._remove(keys=keys, args=[self._clock(), user_id, sid]))

    def refresh(self, sids: Iterable[tuple[int, str]]) -> None:
        """Push the expiry of these sockets forward."""
        expires_at = self._clock() + self.ttl
        pipe = self.redis.pipeline(transaction=False)
        for user_id, sid in sids:
            # Not XX: after a Redis restart the live sockets come back with the next beat.
            pipe.zadd(self._user_key(user_id), {sid: expires_at})
            pipe.zadd(self._online_key, {str(user_id): expires_at}, gt=True)
        pipe.execute()

    def sweep(self) -> list[int]:
        """Drop expired sockets; return the users who went offline because of it."""
        now = self._clock()
        stale = self.redis.zrangebyscore(self._online_key, "-inf", now)
        gone = []
        for raw in stale:
            user_id = int(raw)
            if self._expire_user(
                keys=[self._user_key(user_id), self._online_key], args=[now, user_id]
            ):
                gone.append(user_id)
        return gone

    def online_count(self) -> int:
        """How many distinct users have at least one open socket."""
        return self.redis.zcount(self._online_key, f"({self._clock()}", "+inf")

    def online_among(self, user_ids: Iterable[int]) -> set[int]:
        """Which of these users are online."""
        ids = list(user_ids)
        if not ids:
            return set()
        now = self._clock()
        scores = self.redis.zmscore(self._online_key, [str(i) for i in ids])
        return {i for i, score in zip(ids, scores, strict=True) if score and score > now}

    def sockets_of_session(self, session_key: str) -> list[str]:
        """The open sockets of one login session, on any worker."""
        now = self._clock()
        found = self.redis.hgetall(self._session_key(session_key))
        open_sockets = []
        for raw_sid, raw_user in found.items():
            sid = raw_sid.decode()
            expires_at = self.redis.zscore(self._user_key(raw_user.decode()), sid)
            if expires_at is not None and expires_at > now:
                open_sockets.append(sid)
        return open_sockets

    def sockets_of_user(self, user_id: int) -> list[str]:
        """The open sockets of one user, on any worker."""
        found = self.redis.zrangebyscore(self._user_key(user_id), f"({self._clock()}", "+inf")
        return [raw.decode() for raw in found]


def session_key(session_id: str | None) -> str | None:
    """A name for a login session that does not reveal its id (the id is a credential)."""
    if not session_id:
        return None
    return hashlib.sha256(session_id.encode()).hexdigest()[:32]


def presence_heartbeat(app: Flask) -> None:
    """Keep this worker's sockets alive in the presence store and announce the users whose
    sockets expired elsewhere (a worker that died); close the sockets whose login session
    has ended. Runs for the server's lifetime."""
    tracker = app.extensions["presence"]
    socketio = app.extensions["socketio"]
    while True:
        socketio.sleep(tracker.store.ttl / 3)
        try:
            with app.app_context():
                for user_id in tracker.heartbeat():
                    broadcast.announce_presence(user_id, online=False)
        except Exception:
            app.logger.exception("Presence heartbeat failed")
        try:
            with app.app_context():
                broadcast.close_sockets_of_ended_sessions(app)
        except Exception:
            app.logger.exception("Closing the sockets of ended sessions failed")
