"""Where a visitor's session lives: in a signed cookie until they log in, then on the server.

Before login a session holds only the CSRF token of the login and register forms. Kept in
the server's store, every cookieless request (a crawler, a flood) wrote one more session,
and past ``SESSION_FILE_THRESHOLD`` the store evicted the sessions nearest to expiry:
idle logged-in users. So an anonymous session is Flask's own cookie session, signed with
the secret key (HttpOnly, SameSite=Lax, Secure when configured), and a session moves to
the server's store, under a fresh random id, only when it holds a user. Logged-in sessions
stay on the server, where logout can end them for good. One cookie name serves both kinds:
a store id never holds a dot, a signed cookie always does.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask, Request, Response
from flask.sessions import SecureCookieSessionInterface, SessionInterface, SessionMixin
from flask_session.base import ServerSideSession, ServerSideSessionInterface
from flask_session.cachelib import CacheLibSessionInterface
from flask_session.redis import RedisSessionInterface

import off_loop

USER_KEY = "user_id"


def is_store_id(cookie: str) -> bool:
    """Whether a session cookie names a session in the server's store (else it is signed)."""
    return "." not in cookie


class LoginSessions(SessionInterface):
    """Anonymous sessions in a signed cookie, logged-in sessions in the server's store."""

    def __init__(self, server: ServerSideSessionInterface) -> None:
        self.server = server
        self.cookie = SecureCookieSessionInterface()

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        """The stored session of a logged-in visitor, else the cookie's anonymous one."""
        value = request.cookies.get(self.get_cookie_name(app))
        if value and is_store_id(value):
            stored = self.server.open_session(app, request)
            if stored.get(USER_KEY) is not None:
                return stored
            # An id the store no longer has (logged out, expired): an anonymous visitor,
            # whose stale cookie goes at the end of the request.
            anonymous = self.cookie.session_class()
            anonymous.modified = True
            return anonymous
        return self.cookie.open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Store a logged-in session (a fresh id for one that just logged in); sign the rest."""
        if isinstance(session, ServerSideSession):
            self.server.save_session(app, session, response)
        elif session.get(USER_KEY) is not None:
            stored = self.server.session_class(
                dict(session),
                sid=self.server._generate_sid(self.server.sid_length),
                permanent=self.server.permanent,
            )
            stored.modified = True
            self.server.save_session(app, stored, response)
        else:
            self.cookie.save_session(app, session, response)

    def regenerate(self, session: SessionMixin) -> None:
        """A new id for a stored session (the old one is deleted); an anonymous session
        gets its first id when it is stored."""
        if isinstance(session, ServerSideSession):
            self.server.regenerate(session)

    def list_ended(self, session_ids: Iterable[str]) -> set[str]:
        """Which of these stored sessions no longer exist (logged out, replaced, expired)."""
        ids = sorted(set(session_ids))
        server = self.server
        if isinstance(server, RedisSessionInterface):
            # One round trip for all of them, through the loop like every Redis call.
            pipe = server.client.pipeline(transaction=False)
            for sid in ids:
                pipe.exists(server._get_store_id(sid))
            return {sid for sid, found in zip(ids, pipe.execute(), strict=True) if not found}
        if isinstance(server, CacheLibSessionInterface):
            # Reads the expiry at the head of each file, on a native thread.
            return off_loop.run(
                lambda: {sid for sid in ids if not server.cache.has(server._get_store_id(sid))}
            )
        return {
            sid for sid in ids if server._retrieve_session_data(server._get_store_id(sid)) is None
        }
