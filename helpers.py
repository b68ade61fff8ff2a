"""Small pure helpers: login checks, validation, room names, wire shapes, time."""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import g, jsonify, redirect, request, session, url_for

from transient import is_transient, log_transient, unavailable_answer

F = TypeVar("F", bound=Callable[..., Any])

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{3,32}")
CLIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9_\-]{1,64}")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
MAX_CHANNEL_NAME_LENGTH = 50
# Ids travel as JSON numbers; past 2**53 - 1 a browser can no longer hold them exactly.
MAX_ID = 2**53 - 1


class ValidationError(ValueError):
    """Bad input; the message is a sentence to show the person who sent it."""

    def details(self) -> dict[str, Any]:
        """Fields a client can act on without reading the sentence."""
        return {}


class TooFast(ValidationError):
    """The sender is over a rate limit; they may try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after

    def details(self) -> dict[str, Any]:
        return {"code": "rate_limited", "retry_after": self.retry_after}


# -- time ----------------------------------------------------------------------------


def now_ms() -> int:
    """The current UTC time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def iso_utc(ms: int) -> str:
    """Milliseconds since the epoch as ISO-8601 UTC with a ``Z``."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- login ---------------------------------------------------------------------------


def login_required(view: F) -> F:
    """Send a logged-out visitor to the login page, coming back here afterwards.

    ``g.user`` is loaded from the session before each request (see app.py).
    """

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None:
            if wants_json():
                return jsonify({"ok": False, "error": "Please log in again."}), 401
            return redirect(url_for("login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def authenticated_only(handler: Callable[[int, Mapping[str, Any]], dict[str, Any]]) -> Callable:
    """Turn ``handler(user_id, payload) -> dict`` into a Socket.IO event handler.

    The wrapper refuses a socket without a logged-in user, hands the handler a payload that
    is a JSON object, and always answers through the acknowledgement: ``{"ok": true, ...}``,
    or ``{"ok": false, "error": ...}`` for bad input and for unexpected failures, so a
    malformed event never kills the connection or the worker. A passing failure (a locked
    database, a Redis restart: ``transient.is_transient``) answers ``retryable: true``.
    """

    @functools.wraps(handler)
    def wrapped(payload: Any = None, *_extra: Any) -> dict[str, Any]:
        user_id = session.get("user_id")
        if user_id is None:
            return {"ok": False, "error": "Please log in again."}
        try:
            return {"ok": True, **handler(user_id, check_payload(payload))}
        except ValidationError as error:
            return {"ok": False, "error": str(error), **error.details()}
        except Exception as error:
            if is_transient(error):
                log_transient(f"Event {handler.__name__}", error)
                return unavailable_answer()
            logging.getLogger("chat").exception("Event %s failed", handler.__name__)
            return {"ok": False, "error": "Something went wrong on the server. Please try again."}

    return wrapped


def wants_json() -> bool:
    """Whether the caller (a script, not a page load) prefers a JSON answer."""
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json"


def safe_next_url(target: str | None) -> str | None:
    """``target`` when it is a path on this site, else None.

    Security: only a same-site path is returned, so ``next=`` cannot send a user who just
    logged in to another site (``//evil``, ``https://evil``, ``/\\evil`` are all refused).
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


# -- validation ----------------------------------------------------------------------


def check_payload(payload: Any) -> Mapping[str, Any]:
    """A Socket.IO payload must be a JSON object."""
    if payload is None:
        return {}
    if not isinstance(payload, Mapping):
        raise ValidationError("The request must be a JSON object.")
    return payload


def check_id(value: Any, field: str = "chat_id") -> int:
    """A positive JSON integer id; booleans, strings and floats are refused, not coerced."""
    if type(value) is not int or not 0 < value <= MAX_ID:
        raise ValidationError(f"{field} must be a positive integer.")
    return value


def check_optional_id(value: Any, field: str) -> int | None:
    """Like check_id, but None (absent) is allowed."""
    return None if value is None else check_id(value, field)


def check_username(value: Any) -> str:
    """3–32 letters, digits, underscores, dots or hyphens."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("Please choose a username.")
    if not USERNAME_PATTERN.fullmatch(value.strip()):
        raise ValidationError(
            "A username has 3 to 32 characters: letters, digits, underscores, dots or hyphens."
        )
    return value.strip()


def check_password(password: Any, confirmation: Any) -> str:
    """At least 8 characters, and the confirmation must match."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"A password has at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(f"A password has at most {MAX_PASSWORD_LENGTH} characters.")
    if password != confirmation:
        raise ValidationError("The passwords do not match.")
    return password


def check_channel_name(value: Any) -> str:
    """1–50 characters after trimming, no control characters."""
    if not isinstance(value, str):
        raise ValidationError("A channel name must be text.")
    name = " ".join(value.split())
    if not name:
        raise ValidationError("Please give the channel a name.")
    if len(name) > MAX_CHANNEL_NAME_LENGTH:
        raise ValidationError(f"A channel name has at most {MAX_CHANNEL_NAME_LENGTH} characters.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise ValidationError("A channel name cannot hold control characters.")
    return name


def check_message_body(value: Any, max_length: int) -> str:
    """1 to ``max_length`` characters after trimming."""
    if not isinstance(value, str):
        raise ValidationError("A message must be text.")
    body = value.strip()
    if not body:
        raise ValidationError("A message cannot be empty.")
    if len(body) > max_length:
        raise ValidationError(f"A message has at most {max_length} characters.")
    if "\x00" in body:
        raise ValidationError("A message cannot hold NUL characters.")
    return body


def check_client_id(value: Any) -> str:
    """The sender's own id for a message: 1–64 letters, digits, ``_`` or ``-``."""
    if not isinstance(value, str) or not CLIENT_ID_PATTERN.fullmatch(value):
        raise ValidationError("client_id must be 1 to 64 letters, digits, '_' or '-'.")
    return value


# -- rooms ---------------------------------------------------------------------------
# A separator that no id contains keeps "1"+"23" and "12"+"3" apart.


def user_room(user_id: int) -> str:
    """Every socket of one user."""
    return f"user:{user_id}"


def chat_room(chat_id: int) -> str:
    """The member sockets that do not have this chat open (those are in ``view_room``).

    Each member socket is in exactly one of the two rooms, so a message emitted to both,
    each with the event its sockets need, reaches every member socket once."""
    return f"chat:{chat_id}"


def view_room(chat_id: int) -> str:
    """The sockets that have this chat open."""
    return f"view:{chat_id}"


def viewed_chat_id(rooms: Iterable[str]) -> int | None:
    """The chat a socket has open, from the rooms it is in."""
    for room in rooms:
        if room.startswith("view:"):
            return int(room.removeprefix("view:"))
    return None


# -- wire shapes ---------------------------------------------------------------------


def serialize_message(row: Mapping[str, Any]) -> dict[str, Any]:
    """A message as history pages and live events carry it."""
    attachment = None
    if row.get("attachment_id") is not None:
        attachment_id = row["attachment_id"]
        picture = row["attachment_mime_type"].startswith("image/")
        attachment = {
            "id": attachment_id,
            "name": row["attachment_name"],
            "mime_type": row["attachment_mime_type"],
            "size": row["attachment_size"],
            "url": f"/uploads/{attachment_id}",
            "thumbnail_url": f"/uploads/{attachment_id}/thumbnail" if picture else None,
            "width": row["attachment_width"],
            "height": row["attachment_height"],
        }
    return {
        "id": row["id"],
        "chat_id": row["chat_id"],
        "sender_id": row["sender_id"],
        "sender_name": row["sender_name"],
        "body": row["body"],
        "created_at": row["created_at"],
        "client_id": row["client_id"],
        "attachment": attachment,
    }


_LAST_MESSAGE_FIELDS = (
    "sender_id",
    "sender_name",
    "body",
    "created_at",
    "client_id",
    "attachment_id",
    "attachment_name",
    "attachment_mime_type",
    "attachment_size",
    "attachment_width",
    "attachment_height",
)


def serialize_chat(row: Mapping[str, Any]) -> dict[str, Any]:
    """A chat as one member sees it, from a ``db_commands`` chat row."""
    last_message = None
    if row["last_message_id"] is not None:
        last_message = serialize_message(
            {
                "id": row["last_message_id"],
                "chat_id": row["id"],
                **{key: row[f"last_{key}"] for key in _LAST_MESSAGE_FIELDS},
            }
        )
    is_direct = row["kind"] == "direct"
    return {
        "id": row["id"],
        "kind": row["kind"],
        "name": row["partner_name"] if is_direct else row["channel_name"],
        "partner_id": row["partner_id"] if is_direct else None,
        "unread_count": row["unread_count"],
        "last_read_id": row["last_read_id"],
        "last_message_id": row["last_message_id"],
        "last_message": last_message,
    }
