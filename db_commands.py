"""Every SQL statement of the chat: one function per query, explicit ids in, plain dicts out.

Functions never read ``session``, ``request`` or ``g`` beyond the connection itself, so the
same calls serve HTTP views, Socket.IO handlers, tests and benchmarks. Each statement is
written once, in SQL that SQLite and PostgreSQL both run (database.py adapts the rest).

Each public function is one unit of work, marked ``@read``, ``@write`` or ``@write_soon``:
on SQLite it runs whole in a database thread (db_threads.py), reads on a reader thread,
writes in the writer thread's next group commit; ``@write_soon`` queues the write and
returns at once. A function called from inside another runs on its caller's connection.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click
from flask import Flask, current_app, g

from database import (
    Connection,
    Database,
    DatabaseBusy,
    IntegrityError,
    current_connection,
    orders_group_by,
)
from helpers import now_ms
from mentions import mentioned_names
from search import SearchQuery
from settings import DEFAULTS

__all__ = ["DatabaseBusy", "IntegrityError"]

F = TypeVar("F", bound=Callable[..., Any])

# Above every id the chat can hand out: "before the newest" without a special case.
_NO_UPPER_BOUND = 2**63 - 1

# The columns of a message on the wire, with its sender's name, its attachment and the
# start of the message it replies to (no row: deleted since).
_MESSAGE_SELECT = """
    SELECT m.id, m.chat_id, m.sender_id, u.username AS sender_name,
           COALESCE(u.display_name, u.username) AS sender_display_name,
           u.avatar_version AS sender_avatar_version, m.body, m.created_at, m.client_id, m.mentions,
           m.attachment_id, a.original_name AS attachment_name,
           a.mime_type AS attachment_mime_type, a.size_bytes AS attachment_size,
           a.width AS attachment_width, a.height AS attachment_height,
           m.edited_at, m.reply_to_id, ru.username AS reply_sender_name,
           substr(r.body, 1, 200) AS reply_body, ra.original_name AS reply_attachment_name
    FROM messages AS m
    JOIN users AS u ON u.id = m.sender_id
    LEFT JOIN attachments AS a ON a.id = m.attachment_id
    LEFT JOIN messages AS r ON r.id = m.reply_to_id
    LEFT JOIN users AS ru ON ru.id = r.sender_id
    LEFT JOIN attachments AS ra ON ra.id = r.attachment_id
"""

# A chat as one member sees it: a direct chat is named after the partner (oneself for
# notes-to-self), and the unread count is computed in the same statement, so a list of
# 200 chats costs one query, not one per chat.
_CHAT_SELECT = """
    SELECT c.id, c.kind, c.name AS channel_name, c.last_message_id,
           c.private, c.topic, cm.last_read_message_id AS last_read_id,
           p.id AS partner_id, p.username AS partner_name,
           COALESCE(p.display_name, p.username) AS partner_display_name,
           p.avatar_version AS partner_avatar_version,
           (SELECT COUNT(*) FROM messages AS x
             WHERE x.chat_id = c.id AND x.id > cm.last_read_message_id
               AND x.sender_id != cm.user_id) AS unread_count,
           (SELECT COUNT(*) FROM mentions AS mn
             WHERE mn.user_id = cm.user_id AND mn.chat_id = c.id
               AND mn.message_id > cm.last_read_message_id) AS mention_count,
           lm.sender_id AS last_sender_id, lu.username AS last_sender_name,
           COALESCE(lu.display_name, lu.username) AS last_sender_display_name,
           lu.avatar_version AS last_sender_avatar_version,
           lm.body AS last_body, lm.created_at AS last_created_at,
           lm.client_id AS last_client_id, lm.mentions AS last_mentions,
           lm.attachment_id AS last_attachment_id,
           la.original_name AS last_attachment_name,
           la.mime_type AS last_attachment_mime_type, la.size_bytes AS last_attachment_size,
           la.width AS last_attachment_width, la.height AS last_attachment_height
    FROM chat_members AS cm
    JOIN chats AS c ON c.id = cm.chat_id
    LEFT JOIN users AS p ON c.kind = 'direct' AND p.id = COALESCE(
        (SELECT o.user_id FROM chat_members AS o
          WHERE o.chat_id = c.id AND o.user_id != cm.user_id LIMIT 1), cm.user_id)
    LEFT JOIN messages AS lm ON lm.id = c.last_message_id
    LEFT JOIN users AS lu ON lu.id = lm.sender_id
    LEFT JOIN attachments AS la ON la.id = lm.attachment_id
"""


# Where a member's joining stands among the messages: the newest message id at that moment.
_NEWEST_MESSAGE_ID = "(SELECT COALESCE(MAX(id), 0) FROM messages)"

_INSERT_MEMBER = (
    "INSERT INTO chat_members (chat_id, user_id, joined_at, joined_after_message_id)"
    " VALUES (?, ?, ?, " + _NEWEST_MESSAGE_ID + ")"
)

# A chat's place in the list is its newest activity for this member, in message ids (never
# clock time: two messages of one millisecond keep their order): its last message, or the
# member's joining when that came later (a chat just joined or created goes to the top, as
# the browser puts it). A joining ties with the message it followed and goes above it;
# only joinings with no message between them fall back on their time, then the chat id.
_NEWEST_ACTIVITY_FIRST = """
    ORDER BY CASE WHEN COALESCE(c.last_message_id, 0) > cm.joined_after_message_id
                  THEN c.last_message_id ELSE cm.joined_after_message_id END DESC,
             CASE WHEN COALESCE(c.last_message_id, 0) > cm.joined_after_message_id
                  THEN 0 ELSE cm.joined_at END DESC,
             c.id DESC
"""

# A direct chat enters the partner's list with its first message; the one who opened it
# sees it at once. Both are members from the start, so either can open it.
_DIRECT_CHAT_SHOWN = """
    AND NOT (c.kind = 'direct' AND c.last_message_id IS NULL AND c.created_by <> cm.user_id)
"""

# -- units of work and the connection lifecycle ---------------------------------------


def _unit_of_work(kind: str) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            if current_connection() is not None:
                return fn(*args, **kwargs)
            return current_app.extensions["database"].run(kind, fn, args, kwargs)

        return run  # type: ignore[return-value]

    return decorate


read = _unit_of_work("read")
write = _unit_of_work("write")
# A write nobody waits for (a preference such as the chat opened last): queued behind the
# writes already waiting, so a read path never waits for the write lock.
write_soon = _unit_of_work("write_soon")


def get_db() -> Connection:
    """The connection of the running unit of work; outside one (tests, tools), the current
    app context's own connection, opened on first use."""
    conn = current_connection()
    if conn is not None:
        return conn
    if "db" not in g:
        g.db = current_app.extensions["database"].connect()
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    """Give back the current app context's connection, if one was opened."""
    db = g.pop("db", None)
    if db is not None:
        current_app.extensions["database"].release(db)


@click.command("init-db")
def init_db_command() -> None:
    """Create the database, or upgrade it in place to the newest schema."""
    version = current_app.extensions["database"].init_schema()
    click.echo(f"Database ready (schema version {version}).")


def init_app(app: Flask) -> Database:
    """Open the app's database (creating or upgrading its schema), close connections with
    each app context, and register ``flask init-db``."""
    config = app.config
    database = Database(
        config["DATABASE_URL"],
        app.root_path,
        config["DB_POOL_SIZE"],
        write_timeout=config.get("DB_WRITE_TIMEOUT_SECONDS", DEFAULTS["DB_WRITE_TIMEOUT_SECONDS"]),
        read_threads=config.get("DB_READ_THREADS", DEFAULTS["DB_READ_THREADS"]),
    )
    database.init_schema()
    app.extensions["database"] = database
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)
    return database


# -- users ---------------------------------------------------------------------------


@write
def insert_user(
    username: str, password_hash: str, default_channel: str, make_admin: bool = False
) -> int:
    """Create a user who is a member of the default channel, an admin if they are the first
    account (or ``make_admin``); raise IntegrityError if the name is taken (in any case)."""
    db = get_db()
    now = now_ms()
    with db.transaction():
        user_id = db.scalar(
            "INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?) RETURNING id",
            (username, password_hash, now),
        )
        db.execute(
            """INSERT INTO chat_members
                   (chat_id, user_id, last_read_message_id, joined_at, joined_after_message_id)
               SELECT id, ?, COALESCE(last_message_id, 0), ?, """
            + _NEWEST_MESSAGE_ID
            + """ FROM chats WHERE kind = 'channel' AND lower(name) = lower(?)""",
            (user_id, now, default_channel),
        )
        # The first account is the admin: one row to claim, so two at once cannot both.
        claimed = db.execute(
            "UPDATE site SET first_user_id = ? WHERE id = 1 AND first_user_id IS NULL",
            (user_id,),
        ).rowcount
        if claimed or make_admin:
            db.execute("UPDATE users SET role = 'admin' WHERE id = ?", (user_id,))
    return user_id


@read
def get_user(user_id: int) -> dict[str, Any] | None:
    """One active user's public fields, role, login generation and the chat they had open
    last; None for an unknown or deactivated user."""
    return get_db().one(
        """SELECT id, username, COALESCE(display_name, username) AS display_name,
                  avatar_version, role, login_generation, last_chat_id
           FROM users WHERE id = ? AND deactivated_at IS NULL""",
        (user_id,),
    )


@read
def get_user_credentials(username: str) -> dict[str, Any] | None:
    """The id and password hash of the user with this name (any case), or None."""
    return get_db().one(
        """SELECT id, username, password_hash, deactivated_at FROM users
           WHERE lower(username) = lower(?)""",
        (username,),
    )


@read
def list_users_matching(query: str, limit: int) -> list[dict[str, Any]]:
    """Users whose name contains ``query`` (any case), names starting with it first."""
    escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return get_db().all(
        """SELECT id, username, COALESCE(display_name, username) AS display_name FROM users
           WHERE lower(username) LIKE ? ESCAPE '\\' AND deactivated_at IS NULL
           ORDER BY lower(username) LIKE ? ESCAPE '\\' DESC, lower(username), id
           LIMIT ?""",
        (f"%{escaped}%", f"{escaped}%", limit),
    )


@write_soon
def update_last_chat(user_id: int, chat_id: int) -> None:
    """Remember the chat a user opened last, for every device they use."""
    get_db().execute("UPDATE users SET last_chat_id = ? WHERE id = ?", (chat_id, user_id))


# -- chats and membership ------------------------------------------------------------


@write
def get_or_insert_direct_chat(user_id: int, partner_id: int) -> tuple[int, bool]:
    """The direct chat of two users (one user: notes-to-self), and whether it is new."""
    low, high = sorted((user_id, partner_id))
    key = f"{low}:{high}"
    db = get_db()
    now = now_ms()
    with db.transaction():
        chat_id = db.scalar(
            """INSERT INTO chats (kind, direct_key, created_by, created_at)
               VALUES ('direct', ?, ?, ?)
               ON CONFLICT (direct_key) DO NOTHING RETURNING id""",
            (key, user_id, now),
        )
        if chat_id is None:
            return db.scalar("SELECT id FROM chats WHERE direct_key = ?", (key,)), False
        for member in {low, high}:
            db.execute(_INSERT_MEMBER, (chat_id, member, now))
    return chat_id, True


@write
def insert_channel(name: str, created_by: int, private: bool = False, topic: str = "") -> int:
    """Create a channel with its creator as member; raise IntegrityError if the name is
    taken (in any case)."""
    db = get_db()
    now = now_ms()
    with db.transaction():
        chat_id = db.scalar(
            "INSERT INTO chats (kind, name, created_by, created_at, private, topic) "
            "VALUES ('channel', ?, ?, ?, ?, ?) RETURNING id",
            (name, created_by, now, private, topic),
        )
        db.execute(_INSERT_MEMBER, (chat_id, created_by, now))
    return chat_id


@write
def insert_channel_member(chat_id: int, user_id: int) -> bool:
    """Add a user to a channel with its past counted as read; False if already a member."""
    cursor = get_db().execute(
        """INSERT INTO chat_members
               (chat_id, user_id, last_read_message_id, joined_at, joined_after_message_id)
           SELECT id, ?, COALESCE(last_message_id, 0), ?, """
        + _NEWEST_MESSAGE_ID
        + """ FROM chats WHERE id = ? AND kind = 'channel'
           ON CONFLICT (chat_id, user_id) DO NOTHING""",
        (user_id, now_ms(), chat_id),
    )
    return cursor.rowcount == 1


@read
def get_channel(chat_id: int) -> dict[str, Any] | None:
    """A channel's id, name, privacy and topic, or None when no channel has this id."""
    return get_db().one(
        "SELECT id, kind, name, private, topic FROM chats WHERE id = ? AND kind = 'channel'",
        (chat_id,),
    )


@read
def get_membership(chat_id: int, user_id: int) -> dict[str, Any] | None:
    """The chat's kind and newest message id if the user is a member of it, else None."""
    return get_db().one(
        """SELECT c.id, c.kind, c.last_message_id, cm.last_read_message_id AS last_read_id
           FROM chat_members AS cm JOIN chats AS c ON c.id = cm.chat_id
           WHERE cm.chat_id = ? AND cm.user_id = ?""",
        (chat_id, user_id),
    )


@read
def get_chat_for_member(chat_id: int, user_id: int) -> dict[str, Any] | None:
    """The chat as this member sees it, or None if it does not exist or they are not in it."""
    return get_db().one(
        _CHAT_SELECT + " WHERE cm.user_id = ? AND cm.chat_id = ?", (user_id, chat_id)
    )


@read
def list_chats_for_member(user_id: int) -> list[dict[str, Any]]:
    """Every chat of a user with its unread count and last message, newest activity first."""
    return get_db().all(
        _CHAT_SELECT + " WHERE cm.user_id = ?" + _DIRECT_CHAT_SHOWN + _NEWEST_ACTIVITY_FIRST,
        (user_id,),
    )


@read
def list_chat_ids_for_member(user_id: int) -> list[int]:
    """The ids of every chat a user is a member of."""
    rows = get_db().all("SELECT chat_id FROM chat_members WHERE user_id = ?", (user_id,))
    return [row["chat_id"] for row in rows]


@read
def list_direct_partner_ids(user_id: int) -> list[int]:
    """The people a user has a direct chat with: those whose list shows their online dot."""
    rows = get_db().all(
        """SELECT other.user_id FROM chat_members AS me
           JOIN chats AS c ON c.id = me.chat_id AND c.kind = 'direct'
           JOIN chat_members AS other ON other.chat_id = c.id AND other.user_id <> me.user_id
           WHERE me.user_id = ?""",
        (user_id,),
    )
    return [row["user_id"] for row in rows]


@read
def list_channels_to_join(user_id: int) -> list[dict[str, Any]]:
    """Channels the user is not a member of, by name."""
    return get_db().all(
        """SELECT c.id, c.name FROM chats AS c
           WHERE c.kind = 'channel' AND NOT c.private AND NOT EXISTS (
               SELECT 1 FROM chat_members AS cm WHERE cm.chat_id = c.id AND cm.user_id = ?)
           ORDER BY lower(c.name), c.id""",
        (user_id,),
    )


# -- messages ------------------------------------------------------------------------


# One statement stores a message and (by the trigger of schema version 4) moves its chat's
# last message; it answers the message as _MESSAGE_SELECT does, but for the attachment's
# columns. A repeated (sender_id, client_id) stores nothing and answers no row.
_INSERT_MESSAGE = """
    INSERT INTO messages (chat_id, sender_id, body, attachment_id, created_at, client_id,
                          reply_to_id)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (sender_id, client_id) DO NOTHING
    RETURNING id, chat_id, sender_id,
              (SELECT u.username FROM users AS u WHERE u.id = messages.sender_id) AS sender_name,
              (SELECT COALESCE(u.display_name, u.username) FROM users AS u
                WHERE u.id = messages.sender_id) AS sender_display_name,
              (SELECT u.avatar_version FROM users AS u
                WHERE u.id = messages.sender_id) AS sender_avatar_version,
              body, created_at, client_id, mentions, attachment_id, reply_to_id
"""


@write
def insert_message(
    chat_id: int,
    sender_id: int,
    body: str,
    client_id: str,
    attachment: Mapping[str, Any] | None = None,
    reply_to_id: int | None = None,
) -> tuple[dict[str, Any], bool]:
    """Store a message (with its attachment's row, if any); its chat's last message moves.

    A repeated ``client_id`` stores nothing and returns the first message and False; the
    caller then owns the attachment's files and should delete them. ``reply_to_id`` is
    stored as given: the caller checked it (``get_reply_target``).
    """
    db = get_db()
    now = now_ms()
    if attachment is None and "@" not in body:
        # all(), not one(): the statement is stepped to its end, so the row is written
        # before the group's COMMIT, after which the caller acks it.
        rows = db.all(
            _INSERT_MESSAGE, (chat_id, sender_id, body, None, now, client_id, reply_to_id)
        )
        row = rows[0] if rows else None
    elif attachment is None:
        with db.transaction():
            row = db.one(
                _INSERT_MESSAGE, (chat_id, sender_id, body, None, now, client_id, reply_to_id)
            )
            if row is not None:
                row["mentions"] = replace_mentions(row["id"], chat_id, body)
    else:
        with db.transaction():
            attachment_id = db.scalar(
                """INSERT INTO attachments (chat_id, uploader_id, original_name, stored_name,
                                            mime_type, size_bytes, width, height, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
                (
                    chat_id,
                    sender_id,
                    attachment["original_name"],
                    attachment["stored_name"],
                    attachment["mime_type"],
                    attachment["size_bytes"],
                    attachment.get("width"),
                    attachment.get("height"),
                    now,
                ),
            )
            row = db.one(
                _INSERT_MESSAGE,
                (chat_id, sender_id, body, attachment_id, now, client_id, reply_to_id),
            )
            if row is None:
                db.execute("DELETE FROM attachments WHERE id = ?", (attachment_id,))
            elif "@" in body:
                row["mentions"] = replace_mentions(row["id"], chat_id, body)
        if row is not None:
            row |= {
                "attachment_name": attachment["original_name"],
                "attachment_mime_type": attachment["mime_type"],
                "attachment_size": attachment["size_bytes"],
                "attachment_width": attachment.get("width"),
                "attachment_height": attachment.get("height"),
            }
    if row is not None:
        return row, True
    return get_message_by_client_id(sender_id, client_id), False


# A plain message from a member, in one statement (one round trip on PostgreSQL, planned
# once per connection): the membership is the row the INSERT selects from, so a stranger's
# message selects nothing and stores nothing; the chat's kind and its newest message before
# this one come back with the message. The casts type the parameters for PostgreSQL's
# PREPARE. A repeated (sender_id, client_id), like a stranger, answers no row.
_INSERT_MESSAGE_FOR_MEMBER = """
    INSERT INTO messages (chat_id, sender_id, body, attachment_id, created_at, client_id,
                          reply_to_id)
    SELECT cm.chat_id, cm.user_id, CAST(? AS TEXT), NULL, CAST(? AS BIGINT), CAST(? AS TEXT),
           CAST(? AS BIGINT)
    FROM chat_members AS cm
    WHERE cm.chat_id = CAST(? AS BIGINT) AND cm.user_id = CAST(? AS BIGINT)
    ON CONFLICT (sender_id, client_id) DO NOTHING
    RETURNING id, chat_id, sender_id,
              (SELECT u.username FROM users AS u WHERE u.id = messages.sender_id) AS sender_name,
              (SELECT COALESCE(u.display_name, u.username) FROM users AS u
                WHERE u.id = messages.sender_id) AS sender_display_name,
              (SELECT u.avatar_version FROM users AS u
                WHERE u.id = messages.sender_id) AS sender_avatar_version,
              body, created_at, client_id, mentions, attachment_id, reply_to_id,
              (SELECT c.kind FROM chats AS c WHERE c.id = messages.chat_id) AS member_chat_kind,
              (SELECT MAX(x.id) FROM messages AS x
                WHERE x.chat_id = messages.chat_id AND x.id < messages.id)
                AS member_last_message_id,
              (SELECT cm.last_read_message_id FROM chat_members AS cm
                WHERE cm.chat_id = messages.chat_id AND cm.user_id = messages.sender_id)
                AS member_last_read_id
"""


@write
@orders_group_by(lambda chat_id, *_args, **_kwargs: chat_id)
def insert_message_for_member(
    chat_id: int,
    sender_id: int,
    body: str,
    client_id: str,
    attachment: Mapping[str, Any] | None = None,
    reply_to_id: int | None = None,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, bool]:
    """The sender's membership of the chat (as ``get_membership``, read before the insert)
    and, when they are a member, ``insert_message``'s answer; ``(None, None, False)`` for a
    stranger.

    One unit of work; a plain message (no attachment, no ``@``) is one statement.
    """
    if attachment is None and "@" not in body:
        # all(), not one(): the statement is stepped to its end, so the row is written
        # before the group's COMMIT, after which the caller acks it.
        rows = get_db().all_prepared(
            _INSERT_MESSAGE_FOR_MEMBER,
            (body, now_ms(), client_id, reply_to_id, chat_id, sender_id),
        )
        if rows:
            row = rows[0]
            membership = {
                "id": row["chat_id"],
                "kind": row.pop("member_chat_kind"),
                # The chat's newest message before this one: what chats.last_message_id
                # held before the insert moved it.
                "last_message_id": row.pop("member_last_message_id"),
                "last_read_id": row.pop("member_last_read_id"),
            }
            return membership, row, True
        # A stranger, or a resend of a message already stored.
        membership = get_membership(chat_id, sender_id)
        if membership is None:
            return None, None, False
        return membership, get_message_by_client_id(sender_id, client_id), False
    membership = get_membership(chat_id, sender_id)
    if membership is None:
        return None, None, False
    row, created = insert_message(
        chat_id, sender_id, body, client_id, attachment=attachment, reply_to_id=reply_to_id
    )
    return membership, row, created


@write
def replace_mentions(message_id: int, chat_id: int, body: str) -> str | None:
    """Store whom ``body`` mentions as message ``message_id`` of ``chat_id`` (its new body
    after an edit), replacing what was stored; return the ids as ``messages.mentions``
    holds them ("3,7"), or None for nobody.

    Only members of the chat are mentions, and the sender naming themselves is not one. A
    body without "@" costs two statements, whatever the chat's size.
    """
    db = get_db()
    user_ids: list[int] = []
    for name in mentioned_names(body):
        user_id = db.scalar(
            """SELECT cm.user_id FROM users AS u
               JOIN chat_members AS cm ON cm.chat_id = ? AND cm.user_id = u.id
               JOIN messages AS m ON m.id = ?
               WHERE lower(u.username) = ? AND u.id <> m.sender_id""",
            (chat_id, message_id, name),
        )
        if user_id is not None and user_id not in user_ids:
            user_ids.append(user_id)
    mentions = ",".join(str(user_id) for user_id in user_ids) or None
    with db.transaction():
        db.execute("DELETE FROM mentions WHERE message_id = ?", (message_id,))
        for user_id in user_ids:
            db.execute(
                "INSERT INTO mentions (user_id, chat_id, message_id) VALUES (?, ?, ?)",
                (user_id, chat_id, message_id),
            )
        db.execute("UPDATE messages SET mentions = ? WHERE id = ?", (mentions, message_id))
    return mentions


@read
def count_unread_mentions(chat_id: int, user_id: int, last_read_id: int) -> int:
    """How many messages after ``last_read_id`` mention the user (a range of the key)."""
    return get_db().scalar(
        """SELECT COUNT(*) FROM mentions
           WHERE user_id = ? AND chat_id = ? AND message_id > ?""",
        (user_id, chat_id, last_read_id),
    )


@read
def get_message_by_client_id(sender_id: int, client_id: str) -> dict[str, Any] | None:
    """The message a sender already stored under ``client_id``, or None."""
    return get_db().one(
        _MESSAGE_SELECT + " WHERE m.sender_id = ? AND m.client_id = ?", (sender_id, client_id)
    )


@read
def get_attachment_for_member(attachment_id: int, user_id: int) -> dict[str, Any] | None:
    """An attachment's stored file and type, if the user is a member of its chat, else None."""
    return get_db().one(
        """SELECT a.id, a.chat_id, a.original_name, a.stored_name, a.mime_type, a.size_bytes
           FROM attachments AS a
           JOIN chat_members AS cm ON cm.chat_id = a.chat_id AND cm.user_id = ?
           WHERE a.id = ?""",
        (user_id, attachment_id),
    )


def list_stored_names(db: Connection | None = None) -> list[str]:
    """The stored file name of every attachment (to tell leftovers from kept files), from
    ``db`` when given (a backup's copy), else the app context's connection."""
    rows = (db or get_db()).all("SELECT stored_name FROM attachments")
    return [row["stored_name"] for row in rows]


@read
def list_messages_before(chat_id: int, before_id: int | None, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` newest messages older than ``before_id`` (all when None), oldest first."""
    rows = get_db().all(
        _MESSAGE_SELECT + " WHERE m.chat_id = ? AND m.id < ? ORDER BY m.id DESC LIMIT ?",
        (chat_id, _NO_UPPER_BOUND if before_id is None else before_id, limit),
    )
    return _with_reactions(chat_id, rows[::-1])


@read
def list_messages_after(chat_id: int, after_id: int, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` oldest messages newer than ``after_id``, oldest first."""
    rows = get_db().all(
        _MESSAGE_SELECT + " WHERE m.chat_id = ? AND m.id > ? ORDER BY m.id LIMIT ?",
        (chat_id, after_id, limit),
    )
    return _with_reactions(chat_id, rows)


def _with_reactions(chat_id: int, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (ids ascending), each given its ``reactions``: one query for the page."""
    if not rows:
        return rows
    found = get_db().all(
        """SELECT r.message_id, r.emoji, r.user_id, u.username
           FROM reactions AS r
           JOIN messages AS m ON m.id = r.message_id
           JOIN users AS u ON u.id = r.user_id
           WHERE m.chat_id = ? AND r.message_id BETWEEN ? AND ?
           ORDER BY r.id""",
        (chat_id, rows[0]["id"], rows[-1]["id"]),
    )
    by_message: dict[int, list[dict[str, Any]]] = {}
    for reaction in found:
        by_message.setdefault(reaction["message_id"], []).append(reaction)
    for row in rows:
        row["reactions"] = _group_reactions(by_message.get(row["id"], []))
    return rows


def _group_reactions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reaction rows (in the order given) as the wire has them: one entry per emoji, in
    the order of its first use, with who gave it."""
    grouped: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = grouped.setdefault(
            row["emoji"], {"emoji": row["emoji"], "user_ids": [], "user_names": []}
        )
        entry["user_ids"].append(row["user_id"])
        entry["user_names"].append(row["username"])
    return list(grouped.values())


@read
def get_message_for_member(message_id: int, user_id: int) -> dict[str, Any] | None:
    """A message as the wire has it (with its reactions), if ``user_id`` is a member of its
    chat; else None, as for a message that does not exist."""
    row = get_db().one(
        _MESSAGE_SELECT
        + """ JOIN chat_members AS cm ON cm.chat_id = m.chat_id AND cm.user_id = ?
              WHERE m.id = ?""",
        (user_id, message_id),
    )
    return None if row is None else _with_reactions(row["chat_id"], [row])[0]


@read
def get_reply_target(chat_id: int, message_id: int) -> dict[str, Any] | None:
    """What a reply to ``message_id`` shows of it (its sender's name, the start of its body,
    its attachment's name), if it is a message of ``chat_id``; else None."""
    return get_db().one(
        """SELECT u.username AS reply_sender_name, substr(m.body, 1, 200) AS reply_body,
                  a.original_name AS reply_attachment_name
           FROM messages AS m
           JOIN users AS u ON u.id = m.sender_id
           LEFT JOIN attachments AS a ON a.id = m.attachment_id
           WHERE m.id = ? AND m.chat_id = ?""",
        (message_id, chat_id),
    )


@write
def update_message_body(message_id: int, sender_id: int, body: str) -> dict[str, Any] | None:
    """Give a message of ``sender_id`` a new body, stamped edited now; the message as the
    wire has it, or None when ``sender_id`` has no such message (deleted meanwhile)."""
    db = get_db()
    with db.transaction():
        changed = db.execute(
            "UPDATE messages SET body = ?, edited_at = ? WHERE id = ? AND sender_id = ?",
            (body, now_ms(), message_id, sender_id),
        ).rowcount
        if not changed:
            return None
        message = get_message_for_member(message_id, sender_id)
        # Whom the message mentions follows its new text.
        message["mentions"] = replace_mentions(message_id, message["chat_id"], body)
        return message


@write
def delete_message(message_id: int) -> dict[str, Any] | None:
    """Delete a message, its reactions and its attachment's row; the chat's last message
    moves back to the newest left. Returns ``{chat_id, sender_id, stored_name, last_message}``
    (``stored_name``: the attachment's file, now the caller's to remove; ``last_message``:
    the chat's newest message now, as the wire has it, or None), or None when the message
    was already gone."""
    db = get_db()
    with db.transaction():
        gone = db.one(
            """SELECT m.chat_id, m.sender_id, m.attachment_id, a.stored_name
               FROM messages AS m LEFT JOIN attachments AS a ON a.id = m.attachment_id
               WHERE m.id = ?""",
            (message_id,),
        )
        if gone is None:
            return None
        chat_id = gone["chat_id"]
        db.execute("DELETE FROM reactions WHERE message_id = ?", (message_id,))
        db.execute("DELETE FROM messages WHERE id = ?", (message_id,))
        if gone["attachment_id"] is not None:
            db.execute("DELETE FROM attachments WHERE id = ?", (gone["attachment_id"],))
        db.execute(
            """UPDATE chats SET last_message_id =
                   (SELECT MAX(id) FROM messages WHERE chat_id = ?)
               WHERE id = ? AND last_message_id = ?""",
            (chat_id, chat_id, message_id),
        )
        newest = list_messages_before(chat_id, None, 1)
    return {
        "chat_id": chat_id,
        "sender_id": gone["sender_id"],
        "stored_name": gone["stored_name"],
        "last_message": newest[0] if newest else None,
    }


@write
def toggle_reaction(
    message_id: int, user_id: int, emoji: str, max_kinds: int
) -> list[dict[str, Any]] | None:
    """Remove the user's ``emoji`` from a message if there, else add it (unless the message
    already holds ``max_kinds`` different emoji); return the message's reactions as the
    wire has them, or None when the new emoji did not fit."""
    db = get_db()
    with db.transaction():
        removed = db.execute(
            "DELETE FROM reactions WHERE message_id = ? AND user_id = ? AND emoji = ?",
            (message_id, user_id, emoji),
        ).rowcount
        if not removed:
            kinds = db.scalar(
                """SELECT COUNT(DISTINCT emoji) FROM reactions
                   WHERE message_id = ? AND emoji != ?""",
                (message_id, emoji),
            )
            if kinds >= max_kinds:
                return None
            db.execute(
                """INSERT INTO reactions (message_id, user_id, emoji, created_at)
                   VALUES (?, ?, ?, ?) ON CONFLICT (message_id, user_id, emoji) DO NOTHING""",
                (message_id, user_id, emoji, now_ms()),
            )
        return list_reactions(message_id)


@read
def list_reactions(message_id: int) -> list[dict[str, Any]]:
    """A message's reactions as the wire has them."""
    rows = get_db().all(
        """SELECT r.emoji, r.user_id, u.username FROM reactions AS r
           JOIN users AS u ON u.id = r.user_id
           WHERE r.message_id = ? ORDER BY r.id""",
        (message_id,),
    )
    return _group_reactions(rows)


@read
def has_message(chat_id: int, message_id: int) -> bool:
    """Whether ``message_id`` is a message of ``chat_id``."""
    return bool(
        get_db().scalar(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE id = ? AND chat_id = ?)",
            (message_id, chat_id),
        )
    )


@read
def list_messages_around(chat_id: int, message_id: int, limit: int) -> list[dict[str, Any]]:
    """About ``limit`` messages around ``message_id``, oldest first: it and up to half of
    them before it, the rest after (more after when fewer came before)."""
    before = list_messages_before(chat_id, message_id + 1, limit // 2 + 1)
    return before + list_messages_after(chat_id, message_id, max(limit - len(before), 1))


@read
def get_first_unread_id(chat_id: int, user_id: int, last_read_id: int) -> int | None:
    """The id of the oldest message after ``last_read_id`` sent by someone else, or None."""
    return get_db().scalar(
        "SELECT MIN(id) FROM messages WHERE chat_id = ? AND id > ? AND sender_id != ?",
        (chat_id, last_read_id, user_id),
    )


@read
def count_unread(chat_id: int, user_id: int, last_read_id: int) -> int:
    """How many messages after ``last_read_id`` were sent by someone other than the user."""
    return get_db().scalar(
        "SELECT COUNT(*) FROM messages WHERE chat_id = ? AND id > ? AND sender_id != ?",
        (chat_id, last_read_id, user_id),
    )


@read
def has_message_before(chat_id: int, message_id: int) -> bool:
    """Whether the chat holds a message older than ``message_id``."""
    return bool(
        get_db().scalar(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE chat_id = ? AND id < ?)",
            (chat_id, message_id),
        )
    )


@read
def has_message_after(chat_id: int, message_id: int) -> bool:
    """Whether the chat holds a message newer than ``message_id``."""
    return bool(
        get_db().scalar(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE chat_id = ? AND id > ?)",
            (chat_id, message_id),
        )
    )


# -- search (search.py says what a query means) -----------------------------------------

# The messages of the reader's chats (their membership now) that match, newest first, each
# with its chat as the reader names it. SQLite walks its FTS5 index from the newest match
# down and stops at the page's end; PostgreSQL chooses between its GIN index (a rare word)
# and the primary key read backwards (a common one).
# A result is a message as _MESSAGE_SELECT makes it (so it carries whatever history
# carries), with its chat's kind and name for this reader; only its source differs.
_MESSAGE_SOURCE = "FROM messages AS m"
_SEARCH_CHAT_COLUMNS = """, c.kind AS chat_kind,
           CASE WHEN c.kind = 'direct' THEN p.username ELSE c.name END AS chat_name
    """
_SEARCH_SELECT = {
    "sqlite": _MESSAGE_SELECT.replace(
        _MESSAGE_SOURCE,
        _SEARCH_CHAT_COLUMNS + "FROM messages_search AS s JOIN messages AS m ON m.id = s.rowid",
        1,
    ),
    "postgresql": _MESSAGE_SELECT.replace(
        _MESSAGE_SOURCE, _SEARCH_CHAT_COLUMNS + _MESSAGE_SOURCE, 1
    ),
}
# SQLite's messages above the index's mark (not indexed yet), by id.
_SEARCH_BY_ID = _SEARCH_SELECT["postgresql"]
_SEARCH_JOINS = """
    JOIN chat_members AS cm ON cm.chat_id = m.chat_id AND cm.user_id = ?
    JOIN chats AS c ON c.id = m.chat_id
    LEFT JOIN users AS p ON c.kind = 'direct' AND p.id = COALESCE(
        (SELECT o.user_id FROM chat_members AS o
          WHERE o.chat_id = c.id AND o.user_id != cm.user_id LIMIT 1), cm.user_id)
    WHERE (? IS NULL OR m.chat_id = ?) AND
"""
_SEARCH_MATCH = {
    "sqlite": "messages_search MATCH ? AND s.rowid < ?",
    "postgresql": "m.search_vector @@ to_tsquery('simple', message_search_fold(?)) AND m.id < ?",
}
_SEARCH_ORDER = {
    "sqlite": " ORDER BY s.rowid DESC LIMIT ?",
    "postgresql": " ORDER BY m.id DESC LIMIT ?",
}


# FTS5 answers "word *" by merging every matching word's list of messages in full, before
# the first result: 30-40 ms for a word in half the messages of a million. Its prefix
# indexes answer 2 and 3 characters at once; a longer prefix is looked up in the index's
# vocabulary instead, word by word (each lookup reads one entry), and searched as those
# words OR'ed, which FTS5 reads lazily, newest first. Past this many words, "word *".
MAX_PREFIX_TERMS = 24
_NEXT_TERM = "SELECT term FROM messages_search_terms WHERE term >= ? AND term < ? LIMIT 1"


def _prefix_terms(db: Connection, prefix: str) -> list[str] | None:
    """The words of the SQLite index that start with ``prefix``, in order; None when there
    are too many, or the prefix is one FTS5 had better fold itself (not ASCII) or its
    prefix indexes answer (3 characters or fewer)."""
    if len(prefix) <= 3 or not prefix.isascii():
        return None
    terms: list[str] = []
    start, end = prefix, prefix + "\U0010ffff"
    while len(terms) <= MAX_PREFIX_TERMS:
        term = db.scalar(_NEXT_TERM, (start, end))
        if term is None:
            return terms
        terms.append(term)
        start = term + "\x01"  # the next word: no word holds a control character
    return None


# SQLite's search index holds the messages up to messages_search_state.indexed_up_to; the
# writer thread adds the newer ones in batches (index_new_messages). A search matches those
# newer messages itself, in an index of their own made for it in memory with the same
# rules, so every stored message is found at once.
_INDEXED_UP_TO = "SELECT indexed_up_to FROM messages_search_state WHERE id = 1"
_UNINDEXED_OF_READER = """
    SELECT m.id, m.body FROM messages AS m
    JOIN chat_members AS cm ON cm.chat_id = m.chat_id AND cm.user_id = ?
    WHERE m.id > ? AND m.id < ? AND (? IS NULL OR m.chat_id = ?)
"""
# query.sql's version 8: the index's tokenizer.
_SEARCH_TOKENIZER = "unicode61 remove_diacritics 2"
# Messages added to the index in one statement at most: bounds a transaction's length.
INDEX_BATCH_MAX = 2000


@read
def list_messages_matching(
    user_id: int, query: SearchQuery, chat_id: int | None, before_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """The ``limit`` newest messages older than ``before_id`` (all when None) that match
    ``query`` in the chats ``user_id`` is a member of now (only ``chat_id`` when given),
    newest first, with ``chat_kind`` and ``chat_name``."""
    db = get_db()
    dialect = db.dialect
    before = _NO_UPPER_BOUND if before_id is None else before_id
    found: list[dict[str, Any]] = []
    if dialect == "sqlite":
        # Read first: messages indexed after this are still above it, and found below.
        indexed_up_to = db.scalar(_INDEXED_UP_TO) or 0
        found = _matching_unindexed(db, user_id, query, chat_id, indexed_up_to, before, limit)
        if len(found) >= limit:
            return found
        before = min(before, indexed_up_to + 1)
        prefix_terms = _prefix_terms(db, query.prefix_word) if query.prefix else None
        if prefix_terms == []:
            return found  # no indexed word starts so
        match = query.fts5(prefix_terms)
    else:
        match = query.tsquery()
    return found + db.all(
        _SEARCH_SELECT[dialect] + _SEARCH_JOINS + _SEARCH_MATCH[dialect] + _SEARCH_ORDER[dialect],
        (user_id, chat_id, chat_id, match, before, limit - len(found)),
    )


def _matching_unindexed(
    db: Connection,
    user_id: int,
    query: SearchQuery,
    chat_id: int | None,
    indexed_up_to: int,
    before: int,
    limit: int,
) -> list[dict[str, Any]]:
    """``list_messages_matching``'s answer among the reader's messages above the search
    index's mark (a few: the writer thread indexes them in batches), matched by an FTS5
    index of their own, in memory, with the same tokenizer and query."""
    rows = db.execute(
        _UNINDEXED_OF_READER, (user_id, indexed_up_to, before, chat_id, chat_id)
    ).fetchall()
    if not rows:
        return []
    with contextlib.closing(sqlite3.connect(":memory:")) as memory:
        memory.execute(
            f"CREATE VIRTUAL TABLE recent USING fts5 (body, tokenize = '{_SEARCH_TOKENIZER}')"
        )
        memory.executemany("INSERT INTO recent (rowid, body) VALUES (?, ?)", rows)
        ids = [
            row[0]
            for row in memory.execute(
                "SELECT rowid FROM recent WHERE recent MATCH ? ORDER BY rowid DESC LIMIT ?",
                (query.fts5(), limit),
            )
        ]
    if not ids:
        return []
    marks = ", ".join("?" * len(ids))
    return db.all(
        _SEARCH_BY_ID + _SEARCH_JOINS + f"m.id IN ({marks}) ORDER BY m.id DESC",
        (user_id, chat_id, chat_id, *ids),
    )


def index_new_messages() -> int:
    """Add the messages above the search index's mark to the index (up to
    ``INDEX_BATCH_MAX``, oldest first) and move the mark past them; return how many.

    SQLite only; run by the writer thread inside a transaction of its own. One statement
    for the batch: FTS5 then writes one segment for all of them, where a trigger per
    message wrote one each (about 30 µs a message)."""
    db = get_db()
    indexed_up_to = db.scalar(_INDEXED_UP_TO) or 0
    top = db.scalar(
        """SELECT MAX(id) FROM (SELECT id FROM messages WHERE id > ? ORDER BY id LIMIT ?)""",
        (indexed_up_to, INDEX_BATCH_MAX),
    )
    if top is None:
        return 0
    count = db.execute(
        """INSERT INTO messages_search (rowid, body)
           SELECT id, body FROM messages WHERE id > ? AND id <= ?""",
        (indexed_up_to, top),
    ).rowcount
    db.execute("UPDATE messages_search_state SET indexed_up_to = ? WHERE id = 1", (top,))
    return count


@write
def update_last_read(chat_id: int, user_id: int, last_read_id: int) -> int:
    """Move a member's read pointer forward (never back, never past the chat's newest
    message); return the pointer as stored."""
    db = get_db()
    with db.transaction():
        newest = db.scalar("SELECT last_message_id FROM chats WHERE id = ?", (chat_id,)) or 0
        db.execute(
            """UPDATE chat_members SET last_read_message_id = ?
               WHERE chat_id = ? AND user_id = ? AND last_read_message_id < ?""",
            (min(last_read_id, newest), chat_id, user_id, min(last_read_id, newest)),
        )
        return db.scalar(
            "SELECT last_read_message_id FROM chat_members WHERE chat_id = ? AND user_id = ?",
            (chat_id, user_id),
        )


# -- people, channels' members and administration ---------------------------------------


@read
def get_role(user_id: int) -> str | None:
    """An active user's role (``admin`` or ``member``), or None."""
    return get_db().scalar(
        "SELECT role FROM users WHERE id = ? AND deactivated_at IS NULL", (user_id,)
    )


@read
def get_user_by_name(username: str) -> dict[str, Any] | None:
    """Any user with this name (any case), deactivated or not, or None."""
    return get_db().one(
        """SELECT id, username, role, deactivated_at FROM users
           WHERE lower(username) = lower(?)""",
        (username,),
    )


@read
def get_account(user_id: int) -> dict[str, Any] | None:
    """Any user by id, deactivated or not, with role and state, or None."""
    return get_db().one(
        "SELECT id, username, role, deactivated_at FROM users WHERE id = ?", (user_id,)
    )


@read
def list_users_for_admin() -> list[dict[str, Any]]:
    """Every user with role, state and last activity, by name."""
    return get_db().all(
        """SELECT id, username, COALESCE(display_name, username) AS display_name, role,
                  created_at, deactivated_at, last_seen_at
           FROM users ORDER BY lower(username), id"""
    )


@write
def update_deactivated(user_id: int, deactivated: bool) -> bool:
    """Deactivate or reactivate a user; False when nothing changed (unknown, or already so)."""
    if deactivated:
        sql = "UPDATE users SET deactivated_at = ? WHERE id = ? AND deactivated_at IS NULL"
        return get_db().execute(sql, (now_ms(), user_id)).rowcount == 1
    sql = "UPDATE users SET deactivated_at = NULL WHERE id = ? AND deactivated_at IS NOT NULL"
    return get_db().execute(sql, (user_id,)).rowcount == 1


@write
def update_role(user_id: int, role: str) -> bool:
    """Set a user's role; False for an unknown user."""
    return get_db().execute("UPDATE users SET role = ? WHERE id = ?", (role, user_id)).rowcount == 1


@write_soon
def update_last_seen(user_id: int) -> None:
    """Note a user's last activity (a login, a socket opened)."""
    get_db().execute("UPDATE users SET last_seen_at = ? WHERE id = ?", (now_ms(), user_id))


@read
def get_password_hash(user_id: int) -> str | None:
    """The password hash of a user, or None."""
    return get_db().scalar("SELECT password_hash FROM users WHERE id = ?", (user_id,))


@write
def update_password(user_id: int, password_hash: str) -> int:
    """Store a new password hash and move the login generation on (every session made
    before ends); return the new generation."""
    db = get_db()
    with db.transaction():
        db.execute(
            """UPDATE users SET password_hash = ?, login_generation = login_generation + 1
               WHERE id = ?""",
            (password_hash, user_id),
        )
        return db.scalar("SELECT login_generation FROM users WHERE id = ?", (user_id,))


@write
def update_display_name(user_id: int, display_name: str | None) -> None:
    """Set a user's display name (None: their username)."""
    get_db().execute("UPDATE users SET display_name = ? WHERE id = ?", (display_name, user_id))


@write
def update_avatar(user_id: int, picture: bytes | None) -> None:
    """Store a user's picture (a small PNG; None removes it); its version moves, so the
    browser fetches the new one."""
    get_db().execute(
        "UPDATE users SET avatar = ?, avatar_version = avatar_version + 1 WHERE id = ?",
        (picture, user_id),
    )


@read
def get_avatar(user_id: int) -> bytes | None:
    """A user's picture, or None."""
    value = get_db().scalar("SELECT avatar FROM users WHERE id = ?", (user_id,))
    return bytes(value) if value is not None else None


@read
def get_site() -> dict[str, Any]:
    """The site's registration (``open``, ``closed``, ``invite``) and its invite token."""
    return get_db().one("SELECT registration, invite_token FROM site WHERE id = 1")


@write
def update_registration(registration: str, invite_token: str | None) -> None:
    """Set the site's registration and its invite token."""
    get_db().execute(
        "UPDATE site SET registration = ?, invite_token = ? WHERE id = 1",
        (registration, invite_token),
    )


@write
def insert_sign_in_link(user_id: int, token_hash: str, expires_at: int) -> None:
    """Store a one-time sign-in link (by its hash)."""
    get_db().execute(
        """INSERT INTO sign_in_links (token_hash, user_id, created_at, expires_at)
           VALUES (?, ?, ?, ?)""",
        (token_hash, user_id, now_ms(), expires_at),
    )


@read
def get_sign_in_link(token_hash: str) -> dict[str, Any] | None:
    """An unused, unexpired sign-in link with its active user's name, or None."""
    return get_db().one(
        """SELECT l.user_id, u.username FROM sign_in_links AS l
           JOIN users AS u ON u.id = l.user_id AND u.deactivated_at IS NULL
           WHERE l.token_hash = ? AND l.used_at IS NULL AND l.expires_at > ?""",
        (token_hash, now_ms()),
    )


@write
def update_sign_in_link_used(token_hash: str) -> int | None:
    """Use a sign-in link once: its active user's id, or None if it is unknown, used,
    expired or its user deactivated. Two uses at once: one wins."""
    db = get_db()
    with db.transaction():
        link = get_sign_in_link(token_hash)
        if link is None:
            return None
        used = db.execute(
            "UPDATE sign_in_links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL",
            (now_ms(), token_hash),
        ).rowcount
        return link["user_id"] if used else None


@write
def update_channel(chat_id: int, name: str | None, topic: str | None) -> None:
    """Rename a channel and/or set its topic (None leaves it); IntegrityError if the name
    is taken."""
    db = get_db()
    with db.transaction():
        if name is not None:
            db.execute("UPDATE chats SET name = ? WHERE id = ?", (name, chat_id))
        if topic is not None:
            db.execute("UPDATE chats SET topic = ? WHERE id = ?", (topic, chat_id))


@write
def insert_invited_member(chat_id: int, user_id: int) -> bool:
    """Add an active user to a channel (as ``insert_channel_member``); False if they are a
    member already or deactivated."""
    if get_role(user_id) is None:
        return False
    return insert_channel_member(chat_id, user_id)


@write
def delete_channel_member(chat_id: int, user_id: int) -> bool:
    """Take a user out of a channel; False if they were not in it."""
    cursor = get_db().execute(
        """DELETE FROM chat_members WHERE chat_id = ? AND user_id = ?
           AND chat_id IN (SELECT id FROM chats WHERE kind = 'channel')""",
        (chat_id, user_id),
    )
    return cursor.rowcount == 1


@read
def list_members(chat_id: int) -> list[dict[str, Any]]:
    """The active members of a chat with their names, pictures and roles, by name."""
    return get_db().all(
        """SELECT u.id, u.username, COALESCE(u.display_name, u.username) AS display_name,
                  u.avatar_version, u.role
           FROM chat_members AS cm JOIN users AS u ON u.id = cm.user_id
           WHERE cm.chat_id = ? AND u.deactivated_at IS NULL
           ORDER BY lower(COALESCE(u.display_name, u.username)), u.id""",
        (chat_id,),
    )


# -- backup and restore (backup.py) -------------------------------------------------------


def get_schema_version(db: Connection) -> int:
    """The schema version a database stands at (0 before any)."""
    if db.dialect == "sqlite":
        return db.scalar("PRAGMA user_version")
    return db.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_version")


def count_people_and_messages(db: Connection) -> int:
    """Users and messages together: 0 only for an installation nobody has used yet."""
    return db.scalar("SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM messages)")


def do_begin_snapshot(db: Connection) -> None:
    """Open a read transaction and read once, so the connection keeps seeing this moment
    (SQLite in WAL mode: writers go on meanwhile) until ``do_end_snapshot``."""
    db.execute("BEGIN")
    db.scalar("SELECT COUNT(*) FROM sqlite_master")


def do_end_snapshot(db: Connection) -> None:
    """Close the read transaction ``do_begin_snapshot`` opened."""
    db.execute("COMMIT")


def get_current_schema(db: Connection) -> str:
    """PostgreSQL: the schema the connection's tables live in."""
    name = db.scalar("SELECT current_schema()")
    if name is None:
        raise RuntimeError("the connection has no schema to hold the chat's tables")
    return name


def get_quoted_name(db: Connection, name: str) -> str:
    """PostgreSQL: a name as pg_dump writes it, quoted only when it must be."""
    return db.scalar("SELECT quote_ident(?)", (name,))


def do_create_schema(db: Connection, name: str) -> None:
    """PostgreSQL: a new, empty schema."""
    from psycopg2 import sql

    db.raw.cursor().execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))


def do_drop_schema(db: Connection, name: str) -> None:
    """PostgreSQL: drop a schema and everything in it, if it exists."""
    from psycopg2 import sql

    db.raw.cursor().execute(
        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
    )


def do_move_schema_contents(db: Connection, source: str, target: str) -> None:
    """PostgreSQL, in one transaction: drop from ``target`` the tables and functions that
    ``source`` has, move ``source``'s there (their indexes, constraints, identity sequences
    and triggers go with them) and drop the emptied ``source``."""
    from psycopg2 import sql

    tables = [
        row["name"]
        for row in db.all(
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = ? ORDER BY tablename",
            (source,),
        )
    ]
    functions = db.all(
        """SELECT p.proname AS name, pg_get_function_identity_arguments(p.oid) AS arguments
           FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
           WHERE n.nspname = ? ORDER BY p.proname""",
        (source,),
    )
    cursor = db.raw.cursor()
    with db.transaction():
        for table in tables:
            cursor.execute(
                sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(target, table))
            )
        for function in functions:
            # The arguments come from pg_get_function_identity_arguments: type names only.
            signature = sql.SQL("({})").format(sql.SQL(function["arguments"]))
            name = sql.Identifier(target, function["name"])
            cursor.execute(sql.SQL("DROP FUNCTION IF EXISTS {}{} CASCADE").format(name, signature))
            cursor.execute(
                sql.SQL("ALTER FUNCTION {}{} SET SCHEMA {}").format(
                    sql.Identifier(source, function["name"]), signature, sql.Identifier(target)
                )
            )
        for table in tables:
            cursor.execute(
                sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                    sql.Identifier(source, table), sql.Identifier(target)
                )
            )
        cursor.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(source)))


def do_try_advisory_lock(db: Connection, key: int) -> bool:
    """PostgreSQL: take a session's advisory lock if no other session holds it."""
    return bool(db.scalar("SELECT pg_try_advisory_lock(?)", (key,)))


def do_advisory_unlock(db: Connection, key: int) -> None:
    """PostgreSQL: give back an advisory lock this session holds."""
    db.execute("SELECT pg_advisory_unlock(?)", (key,))
