"""What reaches python-engineio: no JSONP, ``nosniff`` always, and a polling session that
only answers the login session it was opened with.

python-engineio checks the Origin only when a request carries one, and a ``<script src>``
carries none. With JSONP (``j=`` in the query) it answered such a script with a call
holding the Engine.IO session id, so a page of the same site (another port of the chat's
host, a sibling subdomain) could read the id of a logged-in visitor's new session and use
it, a bearer token, from anywhere. The browser client never asks for JSONP: it is refused.
``nosniff`` stops a browser from running any other answer as a script. And a request that
names an Engine.IO session must carry the session cookie that opened it, so an id that
leaks anyway is useless without the visitor's cookie.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from werkzeug.http import parse_cookie

SOCKETIO_PATH = "/socket.io/"
NOSNIFF = ("X-Content-Type-Options", "nosniff")

StartResponse = Callable[..., Any]


class SocketGuard:
    """WSGI middleware in front of Flask-SocketIO's, for the requests of ``/socket.io/``."""

    def __init__(self, app: Callable[..., Iterable[bytes]], cookie_name: str) -> None:
        self.app = app
        # Flask-SocketIO's middleware: its python-socketio server keeps the environ of
        # each connection's opening request.
        self.server = app.engineio_app  # type: ignore[attr-defined]
        self.cookie_name = cookie_name

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Refuse JSONP and strangers' requests; add ``nosniff`` to every answer."""
        if not environ.get("PATH_INFO", "").startswith(SOCKETIO_PATH):
            return self.app(environ, start_response)
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if "j" in query:
            return _refuse(start_response, "400 BAD REQUEST", "JSONP is not served.")
        sid = query.get("sid", [None])[0]
        if sid is not None:
            opened_with = self.server.environ.get(sid)
            if opened_with is not None and self._cookie(opened_with) != self._cookie(environ):
                return _refuse(
                    start_response, "403 FORBIDDEN", "This connection belongs to another login."
                )

        def with_nosniff(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            kept = [h for h in headers if h[0].lower() != NOSNIFF[0].lower()]
            return start_response(status, [*kept, NOSNIFF], *exc_info)

        return self.app(environ, with_nosniff)

    def _cookie(self, environ: dict[str, Any]) -> str | None:
        return parse_cookie(environ).get(self.cookie_name)


def _refuse(start_response: StartResponse, status: str, message: str) -> list[bytes]:
    body = message.encode()
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            NOSNIFF,
        ],
    )
    return [body]
