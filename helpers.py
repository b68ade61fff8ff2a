"""Small pure helpers: login checks, validation, room names, wire shapes, time."""

from __future__ import annotations

import functools
import logging
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import g, jsonify, redirect, request, session, url_for
from werkzeug.routing import BaseConverter
from werkzeug.routing import ValidationError as NoRouteMatch

from transient import is_transient, log_transient, unavailable_answer

F = TypeVar("F", bound=Callable[..., Any])

MIN_USERNAME_LENGTH = 3
MAX_USERNAME_LENGTH = 32
USERNAME_PATTERN = re.compile(rf"[A-Za-z0-9_.\-]{{{MIN_USERNAME_LENGTH},{MAX_USERNAME_LENGTH}}}")
CLIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9_\-]{1,64}")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
MAX_CHANNEL_NAME_LENGTH = 50
MAX_TOPIC_LENGTH = 250
# Ids travel as JSON numbers; past 2**53 - 1 a browser can no longer hold them exactly.
MAX_ID = 2**53 - 1
MAX_ID_DIGITS = len(str(MAX_ID))
# Characters that show nothing or reorder the text around them: control and format
# characters (zero-width spaces and joiners, bidi overrides and isolates, the byte-order
# mark, word joiners...), lone surrogates, and marks and letters that render as nothing
# or as blank space (Hangul fillers, the braille blank, the combining grapheme joiner...).
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
BLANK_CHARACTERS = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u2800\u3164\uffa0"
)
ZERO_WIDTH_JOINER = "\u200d"
VARIATION_SELECTORS = frozenset(chr(c) for c in range(0xFE00, 0xFE10)) | frozenset(
    chr(c) for c in range(0xE0100, 0xE01F0)
)
KEYCAP = "\u20e3"
# An emoji sequence (👩‍💻, 🏳️‍🌈, 👍🏽) joins symbols with a zero-width joiner, and follows
# a symbol with a variation selector or a skin tone: there they are part of a picture,
# and cannot make one name of letters look like another.
EMOJI_CATEGORIES = frozenset({"So", "Sk"})
SKIN_TONES = frozenset(chr(c) for c in range(0x1F3FB, 0x1F400))
# A reaction is one emoji: at most this many code points (a family of four with skin tones
# takes 11), and one picture (symbols joined by zero-width joiners, a flag's pair of
# regional indicators, a keycap, a subdivision flag's tags).
MAX_EMOJI_CODE_POINTS = 16
REGIONAL_INDICATORS = frozenset(chr(c) for c in range(0x1F1E6, 0x1F200))
EMOJI_TAGS = frozenset(chr(c) for c in range(0xE0020, 0xE0080))
KEYCAP_BASES = frozenset("0123456789#*")
# A reply shows this many characters of the message it answers.
REPLY_EXCERPT_LENGTH = 120


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
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
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


def parse_id(raw: str | None) -> int | None:
    """An id written in decimal (a URL, a form field), or None unless it is 1..MAX_ID.

    Security: the length is checked before ``int()``, so neither a number too large for the
    database (an OverflowError on SQLite, an out-of-range error on PostgreSQL) nor a string
    too long for ``int()`` itself ever reaches them.
    """
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > MAX_ID_DIGITS:
        return None
    value = int(raw)
    return value if 0 < value <= MAX_ID else None


class IdConverter(BaseConverter):
    """``<id:name>`` in a route: an id from 1 to MAX_ID; anything else matches no route."""

    regex = rf"[0-9]{{1,{MAX_ID_DIGITS}}}"

    def to_python(self, value: str) -> int:
        """The id, or no match (a 404) when it is out of range."""
        number = parse_id(value)
        if number is None:
            raise NoRouteMatch()
        return number

    def to_url(self, value: int) -> str:
        """The id as written in a URL."""
        return str(int(value))


def check_id(value: Any, field: str = "chat_id") -> int:
    """A positive JSON integer id; booleans, strings and floats are refused, not coerced."""
    if type(value) is not int or not 0 < value <= MAX_ID:
        raise ValidationError(f"{field} must be a positive integer.")
    return value


def check_optional_id(value: Any, field: str) -> int | None:
    """Like check_id, but None (absent) is allowed."""
    return None if value is None else check_id(value, field)


def check_username(value: Any) -> str:
    """``MIN_USERNAME_LENGTH`` to ``MAX_USERNAME_LENGTH`` letters, digits, underscores, dots
    or hyphens."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("Please choose a username.")
    if not USERNAME_PATTERN.fullmatch(value.strip()):
        raise ValidationError(
            f"A username has {MIN_USERNAME_LENGTH} to {MAX_USERNAME_LENGTH} characters:"
            " letters, digits, underscores, dots or hyphens."
        )
    return value.strip()


def check_password(password: Any, confirmation: Any) -> str:
    """At least ``MIN_PASSWORD_LENGTH`` characters, and the confirmation must match."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"A password has at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(f"A password has at most {MAX_PASSWORD_LENGTH} characters.")
    if password != confirmation:
        raise ValidationError("The passwords do not match.")
    return password


def is_hidden_at(text: str, index: int) -> bool:
    """Whether ``text[index]`` shows nothing or reorders the text around it (but a joiner
    or variation selector inside an emoji sequence is part of a picture: not hidden)."""
    ch = text[index]
    if ch == ZERO_WIDTH_JOINER:
        return not (_emoji_before(text, index) and _emoji_after(text, index))
    if ch in VARIATION_SELECTORS:
        return not (_emoji_before(text, index) or text[index + 1 : index + 2] == KEYCAP)
    return ch in BLANK_CHARACTERS or unicodedata.category(ch) in HIDDEN_CATEGORIES


def _emoji_before(text: str, index: int) -> bool:
    index -= 1
    while index >= 0 and (text[index] in VARIATION_SELECTORS or text[index] in SKIN_TONES):
        index -= 1
    return index >= 0 and unicodedata.category(text[index]) in EMOJI_CATEGORIES


def _emoji_after(text: str, index: int) -> bool:
    return index + 1 < len(text) and unicodedata.category(text[index + 1]) == "So"


def has_hidden_characters(text: str) -> bool:
    """Whether ``text`` holds a character that shows nothing or reorders the text."""
    # Printable ASCII (the common case) holds none; no need to look at each character.
    if text.isascii() and text.isprintable():
        return False
    return any(is_hidden_at(text, index) for index in range(len(text)))


def without_hidden_characters(text: str) -> str:
    """``text`` without the characters that show nothing or reorder the text."""
    if not has_hidden_characters(text):
        return text
    return "".join(ch for index, ch in enumerate(text) if not is_hidden_at(text, index))


def is_valid_unicode(text: str) -> bool:
    """Whether ``text`` can be stored as UTF-8: no lone UTF-16 surrogate (JSON's
    ``"\\ud800"`` decodes to one, and no database can store it)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_storable_text(text: str, what: str) -> str:
    """Refuse text no database stores faithfully: NUL characters, lone surrogates."""
    if "\x00" in text:
        raise ValidationError(f"{what} cannot hold NUL characters.")
    if not is_valid_unicode(text):
        raise ValidationError(f"{what} must be valid Unicode text (it holds a lone surrogate).")
    return text


def check_emoji(value: Any) -> str:
    """One emoji (see ``MAX_EMOJI_CODE_POINTS``): a reaction is a picture, never text."""
    if not isinstance(value, str) or not value:
        raise ValidationError("Choose an emoji to react with.")
    if len(value) > MAX_EMOJI_CODE_POINTS or not is_one_emoji(value):
        raise ValidationError("A reaction is one emoji.")
    return value


def is_one_emoji(text: str) -> bool:
    """Whether ``text`` is exactly one emoji (one grapheme of the kinds reactions use)."""
    if len(text) == 2 and all(ch in REGIONAL_INDICATORS for ch in text):
        return True  # a flag
    if text[0] in KEYCAP_BASES:
        return text[1:] in {KEYCAP, "\ufe0f" + KEYCAP}
    return all(_is_emoji_part(part) for part in text.split(ZERO_WIDTH_JOINER))


def _is_emoji_part(part: str) -> bool:
    """A symbol followed only by variation selectors, skin tones or tags."""
    if not part or unicodedata.category(part[0]) != "So" or part[0] in REGIONAL_INDICATORS:
        return False
    return all(ch in VARIATION_SELECTORS or ch in SKIN_TONES or ch in EMOJI_TAGS for ch in part[1:])


def check_channel_name(value: Any) -> str:
    """1 to ``MAX_CHANNEL_NAME_LENGTH`` characters after trimming; no control characters,
    nothing invisible, nothing that reorders the text (so no name can pass for another)."""
    if not isinstance(value, str):
        raise ValidationError("A channel name must be text.")
    name = " ".join(value.split())
    if not name:
        raise ValidationError("Please give the channel a name.")
    if len(name) > MAX_CHANNEL_NAME_LENGTH:
        raise ValidationError(f"A channel name has at most {MAX_CHANNEL_NAME_LENGTH} characters.")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise ValidationError("A channel name cannot hold control characters.")
    if not is_valid_unicode(name):
        raise ValidationError(
            "A channel name must be valid Unicode text (it holds a lone surrogate)."
        )
    if has_hidden_characters(name):
        raise ValidationError(
            "A channel name cannot hold invisible or text-direction characters"
            " (zero-width spaces, right-to-left marks or overrides)."
        )
    return name


def check_topic(value: Any) -> str:
    """Up to ``MAX_TOPIC_LENGTH`` characters on one line, nothing invisible (may be empty)."""
    if not isinstance(value, str):
        raise ValidationError("A topic must be text.")
    topic = " ".join(value.split())
    if len(topic) > MAX_TOPIC_LENGTH:
        raise ValidationError(f"A topic has at most {MAX_TOPIC_LENGTH} characters.")
    if any(unicodedata.category(ch) == "Cc" for ch in topic) or has_hidden_characters(topic):
        raise ValidationError("A topic cannot hold control or invisible characters.")
    return check_storable_text(topic, "A topic")


def check_message_body(value: Any, max_length: int) -> str:
    """1 to ``max_length`` characters after trimming."""
    if not isinstance(value, str):
        raise ValidationError("A message must be text.")
    body = value.strip()
    if not body:
        raise ValidationError("A message cannot be empty.")
    if len(body) > max_length:
        raise ValidationError(f"A message has at most {max_length} characters.")
    return check_storable_text(body, "A message")


def check_caption(value: str, max_length: int) -> str:
    """A file's caption: empty, or up to ``max_length`` characters after trimming."""
    caption = value.strip()
    if len(caption) > max_length:
        raise ValidationError(f"A caption has at most {max_length} characters.")
    return check_storable_text(caption, "A caption")


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


def serialize_reply(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """What a reply shows of the message it answers: None for a message that is no reply;
    ``{id, deleted: true}`` once the original is gone; else its sender and excerpt."""
    reply_to_id = row.get("reply_to_id")
    if reply_to_id is None:
        return None
    if row.get("reply_sender_name") is None:
        return {"id": reply_to_id, "deleted": True}
    text = " ".join((row.get("reply_body") or "").split()) or row.get("reply_attachment_name")
    if len(text or "") > REPLY_EXCERPT_LENGTH:
        text = text[: REPLY_EXCERPT_LENGTH - 1].rstrip() + "…"
    return {"id": reply_to_id, "sender_name": row["reply_sender_name"], "excerpt": text or ""}


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
        "sender_display_name": row.get("sender_display_name") or row["sender_name"],
        "sender_avatar_url": avatar_url(row["sender_id"], row.get("sender_avatar_version")),
        "body": row["body"],
        "created_at": row["created_at"],
        "client_id": row["client_id"],
        "attachment": attachment,
        "edited_at": row.get("edited_at"),
        "reply_to": serialize_reply(row),
        "reactions": row.get("reactions", []),
        "mentions": mention_ids(row.get("mentions")),
    }


def mention_ids(stored: str | None) -> list[int]:
    """The user ids a message mentions, from ``messages.mentions`` ("3,7", or None)."""
    return [int(user_id) for user_id in stored.split(",")] if stored else []


_LAST_MESSAGE_FIELDS = (
    "sender_id",
    "sender_name",
    "sender_display_name",
    "sender_avatar_version",
    "body",
    "created_at",
    "client_id",
    "mentions",
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
        "display_name": row["partner_display_name"] if is_direct else row["channel_name"],
        "avatar_url": avatar_url(row["partner_id"], row["partner_avatar_version"])
        if is_direct
        else None,
        "private": bool(row["private"]),
        "topic": row["topic"] or "",
        "unread_count": row["unread_count"],
        "mention_count": row["mention_count"],
        "last_read_id": row["last_read_id"],
        "last_message_id": row["last_message_id"],
        "last_message": last_message,
    }


def avatar_url(user_id: int | None, version: int | None) -> str | None:
    """Where a user's picture is served (its version in the query, so a new picture is
    fetched anew), or None for someone without one."""
    if not version or user_id is None:
        return None
    return f"/avatars/{user_id}?v={version}"


def serialize_new_direct_chat(
    chat_id: int, partner: Mapping[str, Any], unread_count: int = 0, mention_count: int = 0
) -> dict[str, Any]:
    """A direct chat just made, as its events announce it to a member for whom ``partner``
    is the other person: known without a query (the client asks ``list_chats`` for the rest)."""
    return {
        "id": chat_id,
        "kind": "direct",
        "name": partner["username"],
        "display_name": partner.get("display_name") or partner["username"],
        "partner_id": partner["id"],
        "unread_count": unread_count,
        "mention_count": mention_count,
    }
