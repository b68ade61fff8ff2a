"""Every Socket.IO handler: parse the payload, check it, call db_commands, emit. No SQL here.

Rooms (helpers.py): each socket joins ``user:<id>``, and for each chat of its user either
``view:<id>`` (the one chat it has open) or ``chat:<id>`` (all the others). Every fan-out is
one emit per room, never one per member, and a message reaches each member socket once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, current_app, request, session
from flask_socketio import SocketIO, emit, join_room, leave_room, rooms
from limits import parse as parse_limit
from werkzeug.http import parse_cookie

import db_commands
import messaging
from helpers import (
    TooFast,
    ValidationError,
    authenticated_only,
    chat_room,
    check_channel_name,
    check_id,
    check_optional_id,
    serialize_chat,
    serialize_message,
    user_room,
    view_room,
    viewed_chat_id,
)
from login_sessions import is_store_id
from messaging import NOT_A_MEMBER, access_chat
from settings import DEFAULTS

# Every client -> server event, by name; register() binds them all.
HANDLERS: dict[str, Callable[..., dict[str, Any]]] = {}
# The setting holding each event's per-user budget: every event has one.
BUDGETS: dict[str, str] = {}
TOO_FAST = "You are sending too fast. Please wait a moment."


def event(name: str, budget: str) -> Callable:
    """Register ``handler(user_id, payload)`` for the client event ``name``, each call
    counted first against the per-user limit in the setting ``budget``: an event without a
    budget cannot be registered, and one over it costs a counter, not the handler's work."""
    if not isinstance(DEFAULTS.get(budget), str):
        raise ValueError(f"The budget of {name!r} must name a rate limit setting: {budget!r}")
    parse_limit(DEFAULTS[budget])  # a malformed default fails at import, not at run time

    def decorate(handler: Callable[[int, Mapping[str, Any]], dict[str, Any]]) -> Callable:
        @functools.wraps(handler)
        def budgeted(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
            check_rate(budget, user_id)
            return handler(user_id, payload)

        HANDLERS[name] = authenticated_only(budgeted)
        BUDGETS[name] = budget
        return handler

    return decorate


def register(socketio: SocketIO) -> None:
    """Bind the connect handler and every event handler to ``socketio``."""
    socketio.on_event("connect", on_connect)
    socketio.on_event("disconnect", on_disconnect)
    for name, handler in HANDLERS.items():
        socketio.on_event(name, handler)


def on_connect(_auth: Any = None) -> None:
    """Refuse a socket without a logged-in user; put the others in their rooms."""
    user_id = session.get("user_id")
    user = db_commands.get_user(user_id) if isinstance(user_id, int) else None
    if user is None:
        raise ConnectionRefusedError("Please log in.")
    session["username"] = user["username"]
    join_room(user_room(user_id))
    for chat_id in db_commands.list_chat_ids_for_member(user_id):
        join_room(chat_room(chat_id))
    tracker = current_app.extensions["presence"]
    cookie = request.cookies.get(current_app.config["SESSION_COOKIE_NAME"])
    if tracker.connected(user_id, request.sid, session_key(cookie)):
        announce_presence(user_id, online=True)
    else:
        emit("online_users_updated", {"count": tracker.store.online_count()})


def on_disconnect(_reason: Any = None) -> None:
    """A closed socket may take its user offline."""
    user_id = session.get("user_id")
    if isinstance(user_id, int) and current_app.extensions["presence"].disconnected(
        user_id, request.sid
    ):
        announce_presence(user_id, online=False)


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
                    announce_presence(user_id, online=False)
        except Exception:
            app.logger.exception("Presence heartbeat failed")
        try:
            with app.app_context():
                close_sockets_of_ended_sessions(app)
        except Exception:
            app.logger.exception("Closing the sockets of ended sessions failed")


# Parsing "20 per 2 seconds" on every message showed in profiles; settings rarely change.
_parsed_limit = functools.lru_cache(maxsize=64)(parse_limit)


def check_rate(setting: str, user_id: int) -> None:
    """Count one action of ``user_id`` against the limit named by ``setting``; refuse it
    when the user is over the limit, so a flood slows its sender and nobody else."""
    if not current_app.extensions["rate_limiter"].enabled:
        return
    limiter = current_app.extensions["event_limiter"]
    limit = _parsed_limit(current_app.config[setting])
    if not limiter.hit(limit, setting, str(user_id)):
        reset_at, _remaining = limiter.get_window_stats(limit, setting, str(user_id))
        raise TooFast(TOO_FAST, retry_after=max(1, math.ceil(reset_at - time.time())))


def session_key(session_id: str | None) -> str | None:
    """A name for a login session that does not reveal its id (the id is a credential)."""
    if not session_id:
        return None
    return hashlib.sha256(session_id.encode()).hexdigest()[:32]


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


def _page(
    rows: list[dict[str, Any]], keep_newest: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of a page (ids ascending) that fit in ``MAX_REPLY_BYTES`` of JSON, and their
    messages: cut at a whole message, keeping the ones nearest the page's cursor (the newest
    for a page before an id, the oldest for a page after one), and at least one, so paging
    always moves on. The reply's ``has_more_*`` then tells the client to ask for the rest."""
    messages = [serialize_message(row) for row in rows]
    limit = current_app.config["MAX_REPLY_BYTES"]
    # Sized as python-socketio encodes a packet (the standard json, compact separators).
    if len(json.dumps(messages, separators=(",", ":"))) <= limit:
        return rows, messages
    order = range(len(rows) - 1, -1, -1) if keep_newest else range(len(rows))
    kept: list[int] = []
    used = 2  # the list's brackets
    for index in order:
        used += len(json.dumps(messages[index], separators=(",", ":"))) + 1  # and a comma
        if kept and used > limit:
            break
        kept.append(index)
    kept.sort()
    return [rows[i] for i in kept], [messages[i] for i in kept]


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


@event("join_chat", "JOIN_CHAT_RATE_LIMIT")
def join_chat(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Open a chat: its newest page, or everything from the first unread, or a catch-up."""
    chat_id = check_id(payload.get("chat_id"))
    after_id = check_optional_id(payload.get("after_id"), "after_id")
    chat = db_commands.get_chat_for_member(chat_id, user_id)
    if chat is None:
        raise ValidationError(NOT_A_MEMBER)
    # Move rooms before reading: a message stored after the read is then sure to arrive live.
    open_chat(chat_id)
    config = current_app.config
    unread_count = chat["unread_count"]
    first_unread_id = (
        db_commands.get_first_unread_id(chat_id, user_id, chat["last_read_id"])
        if unread_count
        else None
    )
    if after_id is not None:
        rows = db_commands.list_messages_after(chat_id, after_id, config["MAX_MESSAGES_PER_FETCH"])
    elif unread_count > config["MESSAGES_ON_OPEN"]:
        rows = db_commands.list_messages_after(
            chat_id, first_unread_id - 1, config["MAX_MESSAGES_PER_FETCH"]
        )
    else:
        rows = db_commands.list_messages_before(chat_id, None, config["MESSAGES_ON_OPEN"])
    newest_page = after_id is None and unread_count <= config["MESSAGES_ON_OPEN"]
    rows, messages = _page(rows, keep_newest=newest_page)
    db_commands.update_last_chat(user_id, chat_id)
    return {
        "chat": serialize_chat(chat),
        "messages": messages,
        "unread_count": unread_count,
        "first_unread_id": first_unread_id,
        "has_more_before": bool(rows) and db_commands.has_message_before(chat_id, rows[0]["id"]),
        "has_more_after": bool(rows) and db_commands.has_message_after(chat_id, rows[-1]["id"]),
    }


@event("message_history_is_scrolled_to_the_top", "PAGING_RATE_LIMIT")
def scrolled_to_top(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The page of older messages just before ``before_id``."""
    chat_id = check_id(payload.get("chat_id"))
    before_id = check_id(payload.get("before_id"), "before_id")
    access_chat(chat_id, user_id)
    rows = db_commands.list_messages_before(
        chat_id, before_id, current_app.config["MESSAGES_ON_SCROLL"]
    )
    rows, messages = _page(rows, keep_newest=True)
    return {
        "messages": messages,
        "has_more_before": bool(rows) and db_commands.has_message_before(chat_id, rows[0]["id"]),
    }


@event("message_history_is_scrolled_to_the_bottom", "PAGING_RATE_LIMIT")
def scrolled_to_bottom(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The page of newer messages just after ``after_id``."""
    chat_id = check_id(payload.get("chat_id"))
    after_id = check_id(payload.get("after_id"), "after_id")
    access_chat(chat_id, user_id)
    rows = db_commands.list_messages_after(
        chat_id, after_id, current_app.config["MAX_MESSAGES_PER_FETCH"]
    )
    rows, messages = _page(rows, keep_newest=False)
    return {
        "messages": messages,
        "has_more_after": bool(rows) and db_commands.has_message_after(chat_id, rows[-1]["id"]),
    }


@event("message_sent", "SEND_RATE_LIMIT")
def message_sent(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Store a message (once per client_id), then deliver it to the chat's rooms."""
    draft = messaging.check_message(
        user_id, payload.get("chat_id"), payload.get("body"), payload.get("client_id")
    )
    message, _created = messaging.do_send_message(draft, skip_sid=request.sid)
    return {"message": message}


@event("new_message_count_updated", "READ_REPORT_RATE_LIMIT")
def read_up_to(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Move the reader's pointer forward to ``last_read_id``; keep their other tabs in step."""
    chat_id = check_id(payload.get("chat_id"))
    last_read_id = check_id(payload.get("last_read_id"), "last_read_id")
    access_chat(chat_id, user_id)
    pointer = db_commands.update_last_read(chat_id, user_id, last_read_id)
    unread_count = db_commands.count_unread(chat_id, user_id, pointer)
    emit(
        "new_message_count_updated",
        {"chat_id": chat_id, "unread_count": unread_count, "last_read_id": pointer},
        to=user_room(user_id),
        include_self=False,
    )
    return {"unread_count": unread_count, "last_read_id": pointer}


@event("create_channel", "CHANNEL_RATE_LIMIT")
def create_channel(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Create a channel; everyone sees it appear at once."""
    name = check_channel_name(payload.get("name"))
    try:
        chat_id = db_commands.insert_channel(name, user_id)
    except db_commands.IntegrityError:
        raise ValidationError("A channel with this name already exists.") from None
    chat = serialize_chat(db_commands.get_chat_for_member(chat_id, user_id))
    join_room(chat_room(chat_id))
    emit(
        "channel_created",
        {"chat": {"id": chat_id, "kind": "channel", "name": name}},
        broadcast=True,
    )
    emit("chat_added", {"chat": chat}, to=user_room(user_id), include_self=False)
    return {"chat": chat}


@event("join_channel", "JOIN_CHANNEL_RATE_LIMIT")
def join_channel(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Join a channel from the list (joining twice is harmless)."""
    chat_id = check_id(payload.get("chat_id"))
    if db_commands.get_channel(chat_id) is None:
        raise ValidationError("This channel does not exist.")
    added = db_commands.insert_channel_member(chat_id, user_id)
    join_room(chat_room(chat_id))
    chat = serialize_chat(db_commands.get_chat_for_member(chat_id, user_id))
    if added:
        emit("chat_added", {"chat": chat}, to=user_room(user_id), include_self=False)
    return {"chat": chat}


@event("list_chats", "LIST_CHATS_RATE_LIMIT")
def list_chats(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The user's chats with unread counts, and the channels they could join.

    Also puts this socket in the room of every chat of its user, so a chat added since it
    connected (a new direct chat, a channel joined in another tab) reaches it from now on.
    """
    chats = [serialize_chat(chat) for chat in db_commands.list_chats_for_member(user_id)]
    open_chat_id = viewed_chat_id(rooms())
    for chat in chats:
        if chat["id"] != open_chat_id:
            join_room(chat_room(chat["id"]))
    store = current_app.extensions["presence"].store
    online = store.online_among({chat["partner_id"] for chat in chats if chat["partner_id"]})
    for chat in chats:
        chat["partner_online"] = chat["partner_id"] in online
    return {
        "chats": chats,
        "channels": db_commands.list_channels_to_join(user_id),
        "online_count": store.online_count(),
    }


@event("typing", "TYPING_RATE_LIMIT")
def typing(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Tell the others who have the chat open that this user is typing."""
    chat_id = check_id(payload.get("chat_id"))
    access_chat(chat_id, user_id)
    emit(
        "user_typing",
        {"chat_id": chat_id, "user_id": user_id, "username": session.get("username")},
        to=view_room(chat_id),
        include_self=False,
    )
    return {}
