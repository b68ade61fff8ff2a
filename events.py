"""Every client -> server Socket.IO handler: parse the payload, check it, call db_commands,
answer. No SQL here; what goes out to other sockets is said in broadcast.py."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from flask import current_app, request, session
from flask_socketio import SocketIO, emit
from limits import parse as parse_limit

import accounts
import broadcast
import db_commands
import message_changes
import messaging
import wire_json
from helpers import (
    ValidationError,
    authenticated_only,
    check_channel_name,
    check_emoji,
    check_id,
    check_optional_id,
    check_topic,
    serialize_chat,
    serialize_message,
    user_room,
    view_room,
)
from messaging import NOT_A_MEMBER, access_chat
from presence import session_key
from rate_limits import check_rate
from search import check_search_query
from settings import DEFAULTS

NOT_IN_CHAT = "This message does not exist or is not in this chat."

# Every client -> server event, by name; register() binds them all.
HANDLERS: dict[str, Callable[..., dict[str, Any]]] = {}
# The setting holding each event's per-user budget: every event has one.
BUDGETS: dict[str, str] = {}


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
    if user is None or not accounts.is_current_login(session, user):
        raise ConnectionRefusedError("Please log in.")
    db_commands.update_last_seen(user_id)
    session["username"] = user["username"]
    broadcast.join_rooms(user_id, db_commands.list_chat_ids_for_member(user_id))
    tracker = current_app.extensions["presence"]
    cookie = request.cookies.get(current_app.config["SESSION_COOKIE_NAME"])
    if tracker.connected(user_id, request.sid, session_key(cookie)):
        broadcast.announce_presence(user_id, online=True)
    else:
        emit("online_users_updated", {"count": tracker.store.online_count()})


def on_disconnect(_reason: Any = None) -> None:
    """A closed socket may take its user offline."""
    user_id = session.get("user_id")
    if isinstance(user_id, int) and current_app.extensions["presence"].disconnected(
        user_id, request.sid
    ):
        broadcast.announce_presence(user_id, online=False)


def _page(
    rows: list[dict[str, Any]], keep_newest: bool, limit: int | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of a page (ids ascending) that fit in ``limit`` (``MAX_REPLY_BYTES``) bytes
    of JSON, and their messages: cut at a whole message, keeping the ones nearest the page's
    cursor (the newest for a page before an id, the oldest for a page after one), and at
    least one, so paging always moves on. The reply's ``has_more_*`` then tells the client
    to ask for the rest."""
    messages = [serialize_message(row) for row in rows]
    if limit is None:
        limit = current_app.config["MAX_REPLY_BYTES"]
    # Sized as the socket sends them (wire_json: compact, UTF-8).
    if wire_json.size(messages) <= limit:
        return rows, messages
    order = range(len(rows) - 1, -1, -1) if keep_newest else range(len(rows))
    kept: list[int] = []
    used = 2  # the list's brackets
    for index in order:
        used += wire_json.size(messages[index]) + 1  # and a comma
        if kept and used > limit:
            break
        kept.append(index)
    kept.sort()
    return [rows[i] for i in kept], [messages[i] for i in kept]


def _more_before(chat_id: int, rows: list[dict[str, Any]]) -> bool:
    """Whether the chat has messages older than this page (an empty page: none to ask for)."""
    return bool(rows) and db_commands.has_message_before(chat_id, rows[0]["id"])


def _more_after(chat_id: int, rows: list[dict[str, Any]]) -> bool:
    """Whether the chat has messages newer than this page."""
    return bool(rows) and db_commands.has_message_after(chat_id, rows[-1]["id"])


def _page_around(chat_id: int, around_id: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The page around ``around_id``: it and the messages before it in half of
    ``MAX_REPLY_BYTES``, those after it in the other half."""
    config = current_app.config
    rows = db_commands.list_messages_around(chat_id, around_id, config["MESSAGES_ON_OPEN"])
    split = next((i + 1 for i, row in enumerate(rows) if row["id"] == around_id), None)
    if split is None:  # deleted since it was checked
        raise ValidationError(NOT_IN_CHAT)
    half = config["MAX_REPLY_BYTES"] // 2
    older_rows, older = _page(rows[:split], keep_newest=True, limit=half)
    newer_rows, newer = (
        _page(rows[split:], keep_newest=False, limit=half) if rows[split:] else ([], [])
    )
    return older_rows + newer_rows, older + newer


def _page_on_open(
    chat_id: int, unread_count: int, first_unread_id: int | None, after_id: int | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The page an opened chat shows: what came after ``after_id`` (a catch-up), or
    everything from the first unread when more than a page is unread, or the newest page."""
    config = current_app.config
    if after_id is not None:
        rows = db_commands.list_messages_after(chat_id, after_id, config["MAX_MESSAGES_PER_FETCH"])
    elif unread_count > config["MESSAGES_ON_OPEN"]:
        rows = db_commands.list_messages_after(
            chat_id, first_unread_id - 1, config["MAX_MESSAGES_PER_FETCH"]
        )
    else:
        rows = db_commands.list_messages_before(chat_id, None, config["MESSAGES_ON_OPEN"])
    newest_page = after_id is None and unread_count <= config["MESSAGES_ON_OPEN"]
    return _page(rows, keep_newest=newest_page)


@event("join_chat", "JOIN_CHAT_RATE_LIMIT")
def join_chat(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Open a chat: its newest page, or everything from the first unread, or a catch-up
    (``after_id``), or the page around one message (``around_id``)."""
    chat_id = check_id(payload.get("chat_id"))
    after_id = check_optional_id(payload.get("after_id"), "after_id")
    around_id = check_optional_id(payload.get("around_id"), "around_id")
    if after_id is not None and around_id is not None:
        raise ValidationError("Ask for after_id or around_id, not both.")
    chat = db_commands.get_chat_for_member(chat_id, user_id)
    if chat is None:
        raise ValidationError(NOT_A_MEMBER)
    if around_id is not None and not db_commands.has_message(chat_id, around_id):
        raise ValidationError(NOT_IN_CHAT)
    # Move rooms before reading: a message stored after the read is then sure to arrive live.
    broadcast.open_chat(chat_id)
    unread_count = chat["unread_count"]
    first_unread_id = (
        db_commands.get_first_unread_id(chat_id, user_id, chat["last_read_id"])
        if unread_count
        else None
    )
    if around_id is not None:
        rows, messages = _page_around(chat_id, around_id)
    else:
        rows, messages = _page_on_open(chat_id, unread_count, first_unread_id, after_id)
    db_commands.update_last_chat(user_id, chat_id)
    return {
        "chat": serialize_chat(chat),
        "messages": messages,
        "unread_count": unread_count,
        "first_unread_id": first_unread_id,
        "has_more_before": _more_before(chat_id, rows),
        "has_more_after": _more_after(chat_id, rows),
    }


def _scroll_page(user_id: int, payload: Mapping[str, Any], older: bool) -> dict[str, Any]:
    """The page of messages just before ``before_id`` (older) or just after ``after_id``."""
    cursor = "before_id" if older else "after_id"
    chat_id = check_id(payload.get("chat_id"))
    cursor_id = check_id(payload.get(cursor), cursor)
    access_chat(chat_id, user_id)
    if older:
        rows = db_commands.list_messages_before(
            chat_id, cursor_id, current_app.config["MESSAGES_ON_SCROLL"]
        )
    else:
        rows = db_commands.list_messages_after(
            chat_id, cursor_id, current_app.config["MAX_MESSAGES_PER_FETCH"]
        )
    rows, messages = _page(rows, keep_newest=older)
    if older:
        return {"messages": messages, "has_more_before": _more_before(chat_id, rows)}
    return {"messages": messages, "has_more_after": _more_after(chat_id, rows)}


@event("message_history_is_scrolled_to_the_top", "PAGING_RATE_LIMIT")
def scrolled_to_top(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The page of older messages just before ``before_id``."""
    return _scroll_page(user_id, payload, older=True)


@event("message_history_is_scrolled_to_the_bottom", "PAGING_RATE_LIMIT")
def scrolled_to_bottom(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The page of newer messages just after ``after_id``."""
    return _scroll_page(user_id, payload, older=False)


@event("message_sent", "SEND_RATE_LIMIT")
def message_sent(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Store a message (once per client_id), then deliver it to the chat's rooms."""
    draft = messaging.check_message(
        user_id,
        payload.get("chat_id"),
        payload.get("body"),
        payload.get("client_id"),
        reply_to_id=payload.get("reply_to_id"),
    )
    message, _created = messaging.do_send_message(draft, skip_sid=request.sid)
    return {"message": message}


@event("message_edited", "MESSAGE_CHANGE_RATE_LIMIT")
def message_edited(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The sender gives a message a new body; every member socket follows."""
    message_id = check_id(payload.get("message_id"), "message_id")
    message = message_changes.do_edit_message(
        user_id, message_id, payload.get("body"), skip_sid=request.sid
    )
    return {"message": message}


@event("message_deleted", "MESSAGE_CHANGE_RATE_LIMIT")
def message_deleted(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The sender deletes a message; it leaves every member socket's view."""
    message_id = check_id(payload.get("message_id"), "message_id")
    message_changes.do_delete_message(user_id, message_id)
    return {}


@event("reaction_toggled", "REACTION_RATE_LIMIT")
def reaction_toggled(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Add the reader's emoji to a message, or take it back; those viewing the chat see it."""
    message_id = check_id(payload.get("message_id"), "message_id")
    emoji = check_emoji(payload.get("emoji"))
    reactions = message_changes.do_toggle_reaction(user_id, message_id, emoji, skip_sid=request.sid)
    return {"reactions": reactions}


@event("new_message_count_updated", "READ_REPORT_RATE_LIMIT")
def read_up_to(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Move the reader's pointer forward to ``last_read_id``; keep their other tabs in step."""
    chat_id = check_id(payload.get("chat_id"))
    last_read_id = check_id(payload.get("last_read_id"), "last_read_id")
    access_chat(chat_id, user_id)
    pointer = db_commands.update_last_read(chat_id, user_id, last_read_id)
    counts = {
        "unread_count": db_commands.count_unread(chat_id, user_id, pointer),
        "mention_count": db_commands.count_unread_mentions(chat_id, user_id, pointer),
        "last_read_id": pointer,
    }
    emit(
        "new_message_count_updated",
        {"chat_id": chat_id, **counts},
        to=user_room(user_id),
        include_self=False,
    )
    return counts


@event("create_channel", "CHANNEL_RATE_LIMIT")
def create_channel(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Create a channel; everyone sees a public one appear at once, a private one only its
    members (its creator, until they invite others: channels.py)."""
    name = check_channel_name(payload.get("name"))
    private = payload.get("private", False)
    if not isinstance(private, bool):
        raise ValidationError("private must be true or false.")
    topic = check_topic(payload.get("topic", ""))
    try:
        chat_id = db_commands.insert_channel(name, user_id, private=private, topic=topic)
    except db_commands.IntegrityError:
        raise ValidationError("A channel with this name already exists.") from None
    chat = serialize_chat(db_commands.get_chat_for_member(chat_id, user_id))
    broadcast.join_rooms(user_id, [chat_id])
    if not private:
        emit(
            "channel_created",
            {"chat": {"id": chat_id, "kind": "channel", "name": name, "topic": topic}},
            broadcast=True,
        )
    emit("chat_added", {"chat": chat}, to=user_room(user_id), include_self=False)
    return {"chat": chat}


@event("join_channel", "JOIN_CHANNEL_RATE_LIMIT")
def join_channel(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Join a channel from the list (joining twice is harmless)."""
    chat_id = check_id(payload.get("chat_id"))
    channel = db_commands.get_channel(chat_id)
    # A private channel is joined by invitation only; to others it does not exist.
    if channel is None or (
        channel["private"] and db_commands.get_membership(chat_id, user_id) is None
    ):
        raise ValidationError("This channel does not exist.")
    added = db_commands.insert_channel_member(chat_id, user_id)
    broadcast.join_rooms(user_id, [chat_id])
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
    broadcast.join_rooms(user_id, [chat["id"] for chat in chats])
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


@event("search_messages", "SEARCH_RATE_LIMIT")
def search_messages(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The messages of the reader's chats matching ``query`` (in ``chat_id`` only, when
    given), newest first, a page before ``before_id`` at a time."""
    config = current_app.config
    query = check_search_query(payload.get("query"), config["MAX_SEARCH_QUERY_LENGTH"])
    chat_id = check_optional_id(payload.get("chat_id"), "chat_id")
    before_id = check_optional_id(payload.get("before_id"), "before_id")
    if chat_id is not None:
        access_chat(chat_id, user_id)
    limit = config["SEARCH_RESULTS_PER_PAGE"]
    rows = db_commands.list_messages_matching(user_id, query, chat_id, before_id, limit + 1)
    page, messages = _page(rows[:limit][::-1], keep_newest=True)
    results = [
        {
            "message": message,
            "chat": {"id": row["chat_id"], "kind": row["chat_kind"], "name": row["chat_name"]},
        }
        for row, message in zip(page[::-1], messages[::-1], strict=True)
    ]
    return {"results": results, "has_more": len(rows) > len(page)}
