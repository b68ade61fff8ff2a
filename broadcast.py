"""The server -> client side of Socket.IO: the rooms a socket is in, delivering a message,
presence announcements, the online count, closing a session's sockets.

Rooms (helpers.py): each socket joins ``user:<id>``, and for each chat of its user either
``view:<id>`` (the one chat it has open) or ``chat:<id>`` (all the others). Every fan-out is
one emit per room, never one per member, and a message reaches each member socket once.
Callable from Socket.IO handlers, HTTP routes and background tasks alike.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, current_app
from flask_socketio import SocketIO, join_room, leave_room, rooms
from werkzeug.http import parse_cookie

import db_commands
from helpers import chat_room, serialize_new_direct_chat, user_room, view_room, viewed_chat_id
from login_sessions import is_store_id


def join_rooms(user_id: int, chat_ids: Iterable[int]) -> None:
    """Put this socket in its user's room and in the room of each of ``chat_ids`` (except
    the chat it has open, whose ``view:<id>`` it is in already)."""
    join_room(user_room(user_id))
    open_chat_id = viewed_chat_id(rooms())
    for chat_id in chat_ids:
        if chat_id != open_chat_id:
            join_room(chat_room(chat_id))


def open_chat(chat_id: int) -> None:
    """Move this socket from ``chat:<id>`` to ``view:<id>``, and back for the chat it had
    open: it then receives the chat's messages as ``message_received_from_current_chat``
    and no longer also as ``message_received_from_another_chat``."""
    previous = viewed_chat_id(rooms())
    if previous == chat_id:
        return
    if previous is not None:
        leave_room(view_room(previous))
        join_room(chat_room(previous))
    leave_room(chat_room(chat_id))
    join_room(view_room(chat_id))


def move_user_sockets(user_id: int, chat_id: int, joined: bool) -> None:
    """Put every open socket of a user, on any worker, in the chat's room (joined), or take
    them out of both its rooms."""
    server = current_app.extensions["socketio"].server
    for sid in current_app.extensions["presence"].store.sockets_of_user(user_id):
        if joined:
            server.enter_room(sid, chat_room(chat_id))
        else:
            server.leave_room(sid, chat_room(chat_id))
            server.leave_room(sid, view_room(chat_id))


def deliver_message(
    message: dict[str, Any], first_of_direct_chat: bool = False, skip_sid: str | None = None
) -> None:
    """Emit a stored message once to each member socket: as the current chat's to those that
    have the chat open, as another chat's to the others (for the chat list), and to a direct
    partner for whom the chat is new. ``skip_sid``, the sending socket, has it in its ack."""
    socketio = current_app.extensions["socketio"]
    chat_id = message["chat_id"]
    socketio.emit(
        "message_received_from_current_chat",
        {"message": message},
        to=view_room(chat_id),
        skip_sid=skip_sid,
    )
    socketio.emit(
        "message_received_from_another_chat",
        {"chat_id": chat_id, "message": message},
        to=chat_room(chat_id),
        skip_sid=skip_sid,
    )
    if first_of_direct_chat:
        partner_id = db_commands.get_chat_for_member(chat_id, message["sender_id"])["partner_id"]
        if partner_id != message["sender_id"]:
            sender = {
                "id": message["sender_id"],
                "username": message["sender_name"],
                "display_name": message.get("sender_display_name"),
            }
            # The chat's first message: the partner has it unread, and nothing else yet.
            chat = serialize_new_direct_chat(
                chat_id,
                sender,
                unread_count=1,
                mention_count=int(partner_id in message["mentions"]),
            )
            socketio.emit(
                "new_user_sent_message",
                {"chat": chat, "message": message},
                to=user_room(partner_id),
            )


def announce_to_chat(event: str, payload: dict[str, Any], skip_sid: str | None = None) -> None:
    """Emit ``event`` once to every member socket of ``payload["chat_id"]``, those with the
    chat open and the others (an edit or a deletion changes the chat list's preview too);
    ``skip_sid``, the socket that made the change, has it in its ack."""
    socketio = current_app.extensions["socketio"]
    for room in (view_room(payload["chat_id"]), chat_room(payload["chat_id"])):
        socketio.emit(event, payload, to=room, skip_sid=skip_sid)


def announce_to_viewers(event: str, payload: dict[str, Any], skip_sid: str | None = None) -> None:
    """Emit ``event`` to the sockets that have ``payload["chat_id"]`` open."""
    current_app.extensions["socketio"].emit(
        event, payload, to=view_room(payload["chat_id"]), skip_sid=skip_sid
    )


def announce_presence(user_id: int, online: bool) -> None:
    """Tell the people whose chat list shows this user's dot (their direct-chat partners)
    that the user came online or went offline, in one emit; and everyone the new count."""
    partners = db_commands.list_direct_partner_ids(user_id)
    if partners:
        current_app.extensions["socketio"].emit(
            "presence_updated",
            {"user_id": user_id, "online": online},
            to=[user_room(partner_id) for partner_id in partners],
        )
    current_app.extensions["online_count"].changed()


class OnlineCount:
    """Announces ``online_users_updated`` to everyone at most once per ``interval`` seconds:
    at once after a quiet interval, else once at its end with the count of that moment.

    A thousand people coming online together (a restart, the start of a class) used to send
    a thousand counts to each of them, a million frames; now one or two a second.
    """

    def __init__(
        self,
        socketio: SocketIO,
        count: Callable[[], int],
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        later: Callable[[float, Callable[[], None]], None] | None = None,
    ) -> None:
        """``clock`` tells the time and ``later(wait, then)`` runs ``then`` ``wait`` seconds
        from now (by default a background task that sleeps): a test can drive both."""
        self._socketio = socketio
        self._count = count
        self._interval = interval
        self._clock = clock
        self._later = later or self._in_background
        self._lock = threading.Lock()
        self._last_sent = -math.inf
        self._scheduled = False

    def changed(self) -> None:
        """The count may have changed: send it now, or see that it goes out soon."""
        with self._lock:
            if self._scheduled:
                return
            now = self._clock()
            wait = self._last_sent + self._interval - now
            self._scheduled = wait > 0
            if not self._scheduled:
                self._last_sent = now
        if wait > 0:
            self._later(wait, self._send_scheduled)
        else:
            self._send()

    def _in_background(self, wait: float, then: Callable[[], None]) -> None:
        def task() -> None:
            self._socketio.sleep(wait)
            then()

        self._socketio.start_background_task(task)

    def _send_scheduled(self) -> None:
        with self._lock:
            self._scheduled = False
            self._last_sent = self._clock()
        self._send()

    def _send(self) -> None:
        self._socketio.emit("online_users_updated", {"count": self._count()})


def close_session_sockets(key: str) -> None:
    """Disconnect at once every socket opened with a login session that just ended."""
    socketio = current_app.extensions["socketio"]
    for sid in current_app.extensions["presence"].store.sockets_of_session(key):
        socketio.emit("logged_out", {}, to=sid)
        socketio.server.disconnect(sid)


# Sockets looked at before the session check lets other work run (about 2 ms of parsing).
SOCKETS_PER_TURN = 500


def close_sockets_of_ended_sessions(app: Flask) -> None:
    """Disconnect this worker's sockets whose login session is gone from the store: expired,
    replaced by another login, or deleted. A socket keeps its own copy of the session, and
    without this check it would outlive the session it was opened with."""
    socketio = app.extensions["socketio"]
    cookie_name = app.config["SESSION_COOKIE_NAME"]
    session_of: dict[str, str | None] = {}
    for count, (sid, _eio_sid) in enumerate(socketio.server.manager.get_participants("/", None)):
        cookie = parse_cookie(socketio.server.get_environ(sid, "/") or {}).get(cookie_name)
        session_of[sid] = cookie if cookie and is_store_id(cookie) else None
        if count % SOCKETS_PER_TURN == SOCKETS_PER_TURN - 1:
            socketio.sleep(0)  # thousands of sockets: let the others' events in between
    ended = app.session_interface.list_ended({s for s in session_of.values() if s})
    for sid, session_id in session_of.items():
        if session_id is None or session_id in ended:
            socketio.emit("logged_out", {}, to=sid)
            socketio.server.disconnect(sid)
