"""What happens to a message after it is sent: edited, deleted, reacted to. Each action
checks who may do it, stores the change and tells the chat's sockets; events.py parses the
payloads and answers.

Who may do what is said once, in ``may_edit`` and ``may_delete``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import current_app

import accounts
import attachments
import broadcast
import db_commands
import off_loop
from helpers import (
    ValidationError,
    check_caption,
    check_message_body,
    mention_ids,
    now_ms,
    serialize_message,
)

NO_SUCH_MESSAGE = "This message does not exist or is not in a chat of yours."
# A message holds at most this many different emoji (each person may give several).
MAX_REACTION_KINDS = 20


def may_edit(user_id: int, message: dict[str, Any]) -> bool:
    """Only the sender edits a message."""
    return message["sender_id"] == user_id


def may_delete(user_id: int, message: dict[str, Any]) -> bool:
    """The sender deletes a message, and an active admin any message of a chat they are in
    (their role read only when the message is someone else's)."""
    return message["sender_id"] == user_id or accounts.is_admin(user_id)


def access_message(message_id: int, user_id: int) -> dict[str, Any]:
    """A message of a chat ``user_id`` is in; a stranger gets the error of a message that
    does not exist."""
    message = db_commands.get_message_for_member(message_id, user_id)
    if message is None:
        raise ValidationError(NO_SUCH_MESSAGE)
    return message


def check_edit_window(message: dict[str, Any]) -> None:
    """Refuse an edit past ``EDIT_WINDOW_SECONDS`` after sending (0: no limit)."""
    window = current_app.config["EDIT_WINDOW_SECONDS"]
    if window and now_ms() - message["created_at"] > window * 1000:
        raise ValidationError(
            f"A message can be edited for {describe_seconds(window)} after it is sent."
        )


def describe_seconds(seconds: int) -> str:
    """``90`` as "90 seconds", ``900`` as "15 minutes", ``7200`` as "2 hours"."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def do_edit_message(
    user_id: int, message_id: int, body: Any, skip_sid: str | None
) -> dict[str, Any]:
    """Give the sender's message a new body (checked as a new message's: a file's caption
    may be empty), then tell every member socket. Returns the message as the wire has it."""
    message = access_message(message_id, user_id)
    if not may_edit(user_id, message):
        raise ValidationError("You can only edit your own messages.")
    check_edit_window(message)
    max_length = current_app.config["MAX_MESSAGE_LENGTH"]
    if message["attachment_id"] is not None:
        body = check_caption(body if isinstance(body, str) else "", max_length)
    else:
        body = check_message_body(body, max_length)
    row = db_commands.update_message_body(message_id, user_id, body)
    if row is None:
        raise ValidationError(NO_SUCH_MESSAGE)
    # Whatever else follows from a message's text is brought up to date here, before the
    # message goes out: its mentions, recomputed from the new body, belong in this place.
    edited = serialize_message(row)
    broadcast.announce_to_chat(
        "message_updated", {"chat_id": edited["chat_id"], "message": edited}, skip_sid
    )
    return edited


def do_delete_message(user_id: int, message_id: int) -> None:
    """Delete a message (with its reactions and its attachment's files) and tell every
    member socket, with the chat's newest message now for the chat list's preview: the
    deleting socket too, whose ack does not carry it."""
    message = access_message(message_id, user_id)
    if not may_delete(user_id, message):
        raise ValidationError("You can only delete your own messages.")
    gone = db_commands.delete_message(message_id)
    if gone is None:
        return  # deleted meanwhile (another tab): it was announced then
    if gone["stored_name"]:
        # Removing files waits on the disk: off the event loop.
        off_loop.run(
            attachments.delete_stored, Path(current_app.config["UPLOAD_PATH"]), gone["stored_name"]
        )
    last = gone["last_message"]
    broadcast.announce_to_chat(
        "message_removed",
        {
            "chat_id": gone["chat_id"],
            "message_id": message_id,
            "sender_id": gone["sender_id"],
            "mentions": mention_ids(message.get("mentions")),
            "last_message": serialize_message(last) if last else None,
        },
    )


def do_toggle_reaction(
    user_id: int, message_id: int, emoji: str, skip_sid: str | None
) -> list[dict[str, Any]]:
    """Add the user's ``emoji`` to a message, or take it back if given; tell the sockets
    that have the chat open. Returns the message's reactions."""
    message = access_message(message_id, user_id)
    reactions = db_commands.toggle_reaction(message_id, user_id, emoji, MAX_REACTION_KINDS)
    if reactions is None:
        raise ValidationError(f"A message holds at most {MAX_REACTION_KINDS} different reactions.")
    broadcast.announce_to_viewers(
        "reactions_updated",
        {"chat_id": message["chat_id"], "message_id": message_id, "reactions": reactions},
        skip_sid,
    )
    return reactions
