"""Channels' members: invitations, leaving, a channel's name and topic, the member list
(client -> server Socket.IO handlers, registered with ``events.event`` like the others).

A private channel is seen by its members only: not among the channels to join, not
announced to others, joined only by invitation. Invitations and leaving take effect on
every socket of the person concerned at once, on every worker: the presence store knows
their sockets, and python-socketio's message queue carries a room change to the worker
holding each socket.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app

import broadcast
import db_commands
from events import event
from helpers import (
    ValidationError,
    avatar_url,
    chat_room,
    check_channel_name,
    check_id,
    check_topic,
    serialize_chat,
    user_room,
    view_room,
)
from messaging import NOT_A_MEMBER, access_chat

NOT_A_CHANNEL = "This is a direct chat, not a channel."


def is_default_channel(channel: Mapping[str, Any]) -> bool:
    """Whether this is the channel every account joins (``DEFAULT_CHANNEL``)."""
    return channel["name"].lower() == current_app.config["DEFAULT_CHANNEL"].lower()


def _member_channel(chat_id: int, user_id: int) -> dict[str, Any]:
    """The channel, checked to have this user as a member (strangers hear what they hear
    of a chat that does not exist) and to be a channel."""
    access_chat(chat_id, user_id)
    channel = db_commands.get_channel(chat_id)
    if channel is None:
        raise ValidationError(NOT_A_CHANNEL)
    return channel


@event("invite_to_channel", "CHANNEL_CHANGE_RATE_LIMIT")
def invite_to_channel(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """A member adds someone to a channel; every tab of theirs gets it at once. Inviting a
    member again changes nothing (a retried invitation is harmless)."""
    chat_id = check_id(payload.get("chat_id"))
    invitee_id = check_id(payload.get("user_id"), "user_id")
    _member_channel(chat_id, user_id)
    if db_commands.get_role(invitee_id) is None:
        raise ValidationError("There is no such person.")
    if not db_commands.insert_invited_member(chat_id, invitee_id):
        return {}
    broadcast.move_user_sockets(invitee_id, chat_id, joined=True)
    chat = serialize_chat(db_commands.get_chat_for_member(chat_id, invitee_id))
    current_app.extensions["socketio"].emit("chat_added", {"chat": chat}, to=user_room(invitee_id))
    return {}


@event("leave_channel", "CHANNEL_CHANGE_RATE_LIMIT")
def leave_channel(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Leave a channel (not the default one); every tab of the leaver drops it at once."""
    chat_id = check_id(payload.get("chat_id"))
    channel = _member_channel(chat_id, user_id)
    if is_default_channel(channel):
        raise ValidationError(f"Everyone stays in {channel['name']}: it cannot be left.")
    if not db_commands.delete_channel_member(chat_id, user_id):
        raise ValidationError(NOT_A_MEMBER)
    broadcast.move_user_sockets(user_id, chat_id, joined=False)
    current_app.extensions["socketio"].emit(
        "chat_left", {"chat_id": chat_id}, to=user_room(user_id)
    )
    return {}


@event("update_channel", "CHANNEL_CHANGE_RATE_LIMIT")
def update_channel(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """A member sets a channel's topic or name; its member sockets hear at once."""
    chat_id = check_id(payload.get("chat_id"))
    channel = _member_channel(chat_id, user_id)
    name = check_channel_name(payload["name"]) if "name" in payload else None
    topic = check_topic(payload["topic"]) if "topic" in payload else None
    if name is not None and name != channel["name"] and is_default_channel(channel):
        raise ValidationError(f"{channel['name']} keeps its name: every new account joins it.")
    try:
        db_commands.update_channel(chat_id, name, topic)
    except db_commands.IntegrityError:
        raise ValidationError("A channel with this name already exists.") from None
    chat = serialize_chat(db_commands.get_chat_for_member(chat_id, user_id))
    shared = {key: chat[key] for key in ("id", "kind", "name", "display_name", "private", "topic")}
    current_app.extensions["socketio"].emit(
        "channel_updated", {"chat": shared}, to=[chat_room(chat_id), view_room(chat_id)]
    )
    return {"chat": chat}


@event("list_members", "LIST_MEMBERS_RATE_LIMIT")
def list_members(user_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """A chat's members with their presence and roles (members only)."""
    chat_id = check_id(payload.get("chat_id"))
    access_chat(chat_id, user_id)
    rows = db_commands.list_members(chat_id)
    online = current_app.extensions["presence"].store.online_among(row["id"] for row in rows)
    return {
        "members": [
            {
                "id": row["id"],
                "username": row["username"],
                "display_name": row["display_name"],
                "avatar_url": avatar_url(row["id"], row["avatar_version"]),
                "online": row["id"] in online,
                "role": row["role"],
            }
            for row in rows
        ]
    }
