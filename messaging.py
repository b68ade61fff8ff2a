"""Sending a message: one action for every entry point (a socket's ``message_sent``, an
HTTP ``/upload``) that checks it, stores it once per ``client_id`` and delivers it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app

import broadcast
import db_commands
from helpers import (
    ValidationError,
    check_caption,
    check_client_id,
    check_id,
    check_message_body,
    check_optional_id,
    serialize_message,
)

NOT_A_MEMBER = "This chat does not exist or you are not in it."
NO_REPLY_TARGET = "The message you reply to does not exist or is not in this chat."


class NotAMember(ValidationError):
    """The chat does not exist or the user is not in it (an HTTP caller answers 404)."""


@dataclass(frozen=True)
class Draft:
    """A message that passed its checks, not yet stored."""

    sender_id: int
    chat_id: int
    body: str
    client_id: str
    reply_to_id: int | None = None


def access_chat(chat_id: int, user_id: int) -> dict[str, Any]:
    """The membership of ``user_id`` in ``chat_id``; strangers get the same error as for
    a chat that does not exist."""
    membership = db_commands.get_membership(chat_id, user_id)
    if membership is None:
        raise NotAMember(NOT_A_MEMBER)
    return membership


def check_message(
    sender_id: int,
    chat_id: Any,
    body: Any,
    client_id: Any,
    *,
    caption: bool = False,
    reply_to_id: Any = None,
) -> Draft:
    """Check a message before anything is stored: the ids and the body (a file's caption
    may be empty). Raises ValidationError. Membership is checked where it is stored, the
    message replied to (``reply_to_id``) where it is sent."""
    chat_id = check_id(chat_id)
    max_length = current_app.config["MAX_MESSAGE_LENGTH"]
    if caption:
        body = check_caption(body if isinstance(body, str) else "", max_length)
    else:
        body = check_message_body(body, max_length)
    client_id = check_client_id(client_id)
    reply_to_id = check_optional_id(reply_to_id, "reply_to_id")
    return Draft(sender_id, chat_id, body, client_id, reply_to_id)


def do_send_message(
    draft: Draft,
    attachment: Mapping[str, Any] | None = None,
    skip_sid: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Store ``draft`` (with its attachment's row) if its sender is a member, deliver it if
    it is new, and return its wire shape and whether it was new (False: a retry of a message
    already stored). Raises NotAMember for a stranger."""
    reply_target = None
    if draft.reply_to_id is not None:
        reply_target = db_commands.get_reply_target(draft.chat_id, draft.reply_to_id)
        if reply_target is None:
            raise ValidationError(NO_REPLY_TARGET)
    chat, row, created = db_commands.insert_message_for_member(
        draft.chat_id,
        draft.sender_id,
        draft.body,
        draft.client_id,
        attachment=attachment,
        reply_to_id=draft.reply_to_id,
    )
    if chat is None:
        raise NotAMember(NOT_A_MEMBER)
    if reply_target is not None and row["reply_to_id"] == draft.reply_to_id:
        row |= reply_target
    message = serialize_message(row)
    if created:
        # The membership was read with the insert, before it: no message yet means this one
        # is the chat's first, and the partner has not seen the chat in their list.
        first = chat["kind"] == "direct" and chat["last_message_id"] is None
        broadcast.deliver_message(message, first_of_direct_chat=first, skip_sid=skip_sid)
    return message, created
