"""What a Socket.IO event costs inside Flask: the request context, without an HTTP request's work.

Flask-SocketIO runs every event inside ``app.request_context(environ)``, the environ being
the one of the request that opened the socket, so that handlers can use ``request.sid``,
``session`` and ``current_app``. Pushing a full HTTP request context for each event also
routes the URL ``/socket.io/`` (and fails, since no page serves it), reads the session from
its store, and runs the ``teardown_request`` functions of the HTTP extensions; in profiles
of the message path that was a fifth of the server's time. An event is not an HTTP request:
Flask-SocketIO already runs no ``before_request`` or ``after_request`` function for it, and
here none of that work is done either. The app context (``g``, the database connection and
its release by ``teardown_appcontext``) is untouched.

``ChatSocketIO`` goes further for every event after the socket's first: its request context
is made of the socket's own ``Request`` object, built once from the socket's environ, and
the socket's session (Flask-SocketIO's copy), with ``sid`` and ``namespace`` set on the
request directly rather than through the ``request`` proxy. Flask-SocketIO's own path
builds a ``Request`` per event, opens the session to throw it away, and reaches the
context through four proxies: an event's context cost 13 µs that way, 9 µs this way.

``LocalRooms`` is python-socketio's in-process room manager, which encodes an event before
it looks who is in the room: it looks first, and an emit to a room with nobody to receive it
(the chat room of a direct chat whose two members both have it open) costs nothing.
"""

from __future__ import annotations

import sys
from typing import Any

from flask import Flask, request
from flask.ctx import RequestContext
from flask_socketio import SocketIO
from socketio import Manager
from werkzeug.routing import MapAdapter
from werkzeug.wrappers import Request

SOCKETIO_PATH = "/socket.io"


def is_socket_event(environ: dict[str, Any]) -> bool:
    """Whether a request context belongs to a Socket.IO event. HTTP requests for this path
    never reach Flask (the Socket.IO middleware answers them), so only Flask-SocketIO's
    per-event contexts, made from the socket's own environ, carry it."""
    path = environ.get("PATH_INFO", "")
    return path == SOCKETIO_PATH or path.startswith(SOCKETIO_PATH + "/")


class ChatFlask(Flask):
    """Flask, with Socket.IO events served as events rather than as HTTP requests."""

    def create_url_adapter(self, request: Request | None) -> MapAdapter | None:
        """No URL to route for an event: the event's name chose its handler."""
        if request is not None and is_socket_event(request.environ):
            return None
        return super().create_url_adapter(request)

    def do_teardown_request(self, *args: Any, **kwargs: Any) -> None:
        """The HTTP extensions' teardown (the rate limiter's, for one) is for requests they
        saw; an event passed through none of their ``before_request`` hooks."""
        if is_socket_event(request.environ):
            return
        super().do_teardown_request(*args, **kwargs)


class SocketEventSessions:
    """The server-side session store, without a read per Socket.IO event.

    Flask-SocketIO pushes a request context for every event, which opens the session from
    the store (a file, or a Redis round trip), then swaps in the copy it keeps for the
    socket (``saved_session`` in the socket's environ). Handing over that copy at once
    skips a read whose result would be thrown away.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def open_session(self, app: Flask, request: Any) -> Any:
        """The socket's own session for a Socket.IO event, else the stored one."""
        saved = request.environ.get("saved_session")
        return saved if saved is not None else self._inner.open_session(app, request)


# Where a socket's environ keeps the socket's Request object (see ChatSocketIO).
SOCKET_REQUEST = "chat.socket_request"


class ChatSocketIO(SocketIO):
    """Flask-SocketIO, with each event's request context made of the socket's own request
    and session instead of new ones."""

    def _handle_event(
        self, handler: Any, message: str, namespace: str, sid: str, *args: Any
    ) -> Any:
        """Run ``handler`` in a request context of the socket's request and session.

        The socket's first event (``connect``, which makes the socket's copy of the
        session) and ``disconnect`` take Flask-SocketIO's own path.
        """
        environ = self.server.get_environ(sid, namespace=namespace)
        session = environ.get("saved_session") if environ else None
        if session is None or message in ("connect", "disconnect") or not self.manage_session:
            return super()._handle_event(handler, message, namespace, sid, *args)
        app = environ["flask.app"]
        event_request = environ.get(SOCKET_REQUEST)
        if event_request is None:
            event_request = environ[SOCKET_REQUEST] = app.request_class(environ)
            event_request.json_module = app.json
        # The socket's events run one after another (async_handlers=False), so one Request
        # serves them all; what Flask-SocketIO sets per event is set here.
        event_request.sid = sid
        event_request.namespace = namespace
        event_request.event = {"message": message, "args": args}
        with RequestContext(app, environ, request=event_request, session=session):
            try:
                return handler(*args)
            except ConnectionRefusedError:
                raise
            except Exception:
                on_error = self.exception_handlers.get(namespace, self.default_exception_handler)
                if on_error is None:
                    raise
                return on_error(sys.exc_info()[1])


class LocalRooms(Manager):
    """The rooms of one process (no message queue), skipping emits that reach nobody."""

    def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        """Emit as python-socketio does, unless no socket but ``skip_sid`` is in the room."""
        if callback is None and namespace in self.rooms:
            skipped = skip_sid if isinstance(skip_sid, list) else [skip_sid]
            participants = self.get_participants(namespace, to or room)
            if all(sid in skipped for sid, _eio_sid in participants):
                return
        super().emit(event, data, namespace, room, skip_sid, callback, to, **kwargs)
