"""Who is online: distinct users with at least one open socket.

``Presence`` is the small interface the handlers use. ``LocalPresence`` keeps it in this
process for one worker. Every entry carries an expiry that the worker holding the socket
pushes forward (``refresh``); a worker that dies stops refreshing, and its sockets' entries
expire (``sweep``), so nobody stays "online" forever. A store shared by several workers
implements the same interface.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

DEFAULT_TTL_SECONDS = 60.0


class Presence(Protocol):
    """The presence store every worker talks to."""

    def add(self, user_id: int, sid: str, session_key: str | None = None) -> bool:
        """Record an open socket (and the login session it was opened with); True if the
        user just came online."""

    def remove(self, user_id: int, sid: str) -> bool:
        """Forget a closed socket; True if the user just went offline."""

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


class LocalPresence:
    """Presence kept in this process's memory, for a single worker."""

    def __init__(self, ttl: float = DEFAULT_TTL_SECONDS, clock: Callable[[], float] | None = None):
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

    def remove(self, user_id: int, sid: str) -> bool:
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


class PresenceTracker:
    """One worker's side of presence: the sockets it holds, kept alive in a shared store."""

    def __init__(self, store: Presence):
        self.store = store
        self._lock = threading.Lock()
        self._local: dict[str, int] = {}  # sid -> user_id, for the sockets of this worker

    def connected(self, user_id: int, sid: str, session_key: str | None = None) -> bool:
        """A socket of this worker opened; True if its user just came online."""
        with self._lock:
            self._local[sid] = user_id
        return self.store.add(user_id, sid, session_key)

    def disconnected(self, user_id: int, sid: str) -> bool:
        """A socket of this worker closed; True if its user just went offline."""
        with self._lock:
            self._local.pop(sid, None)
        return self.store.remove(user_id, sid)

    def heartbeat(self) -> list[int]:
        """Keep this worker's sockets alive; return users whose last socket expired."""
        with self._lock:
            alive = [(user_id, sid) for sid, user_id in self._local.items()]
        self.store.refresh(alive)
        return self.store.sweep()
