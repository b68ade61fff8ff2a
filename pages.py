"""The pages of a logged-in user: home, finding people, opening a direct chat, the chats."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request, url_for

import attachments
import broadcast
import db_commands
from errors import apology
from extensions import socketio
from helpers import (
    MAX_CHANNEL_NAME_LENGTH,
    MAX_USERNAME_LENGTH,
    ValidationError,
    check_id,
    login_required,
    parse_id,
    serialize_new_direct_chat,
    user_room,
)
from messaging import NOT_A_MEMBER

bp = Blueprint("pages", __name__)


@bp.get("/")
@login_required
def index() -> Any:
    """Home, with the unread total."""
    chats = db_commands.list_chats_for_member(g.user["id"])
    unread_total = sum(chat["unread_count"] for chat in chats)
    return render_template("index.html", unread_total=unread_total)


@bp.get("/find")
@login_required
def find() -> Any:
    """The search page, or (with ``q``) the people whose name matches, as JSON."""
    query = request.args.get("q")
    if query is None:
        return render_template("find.html", max_query_length=MAX_USERNAME_LENGTH)
    query = query.strip()
    if len(query) > MAX_USERNAME_LENGTH:  # longer than any name: it matches nobody
        return jsonify([])
    limit = current_app.config["FIND_RESULTS_LIMIT"]
    return jsonify(db_commands.list_users_matching(query, limit))


@bp.post("/add")
@login_required
def add() -> Any:
    """Open (or create) the direct chat with a person, and go to it."""
    try:
        partner_id = check_id(parse_id(request.form.get("user_id")), "user_id")
    except ValidationError as error:
        return apology(400, str(error))
    partner = db_commands.get_user(partner_id)
    if partner is None:
        return apology(404, "There is no such person.")
    chat_id, created = db_commands.get_or_insert_direct_chat(g.user["id"], partner_id)
    if created:
        # The opener's tabs hear of it now; the partner's with its first message
        # (broadcast.deliver_message), though both are members from the start.
        broadcast.move_user_sockets(partner_id, chat_id, joined=True)
        chat = serialize_new_direct_chat(chat_id, partner)
        socketio.emit("chat_added", {"chat": chat}, to=user_room(g.user["id"]))
    return redirect(url_for("pages.chats", chat=chat_id), 303)


@bp.get("/chats")
@login_required
def chats() -> Any:
    """The chat page, opening ``?chat=<id>`` or the chat the user had open last."""
    open_chat_id = g.user["last_chat_id"]
    if "chat" in request.args:
        open_chat_id = parse_id(request.args["chat"])
        if open_chat_id is None or not db_commands.get_chat_for_member(open_chat_id, g.user["id"]):
            return apology(404, NOT_A_MEMBER)
    elif open_chat_id is not None and not db_commands.get_chat_for_member(
        open_chat_id, g.user["id"]
    ):
        open_chat_id = None
    config = current_app.config
    settings = {
        "max_message_length": config["MAX_MESSAGE_LENGTH"],
        "max_channel_name_length": MAX_CHANNEL_NAME_LENGTH,
        "transports": config["SOCKETIO_TRANSPORTS"],
        "max_upload_bytes": config["MAX_UPLOAD_MB"] * 1024 * 1024,
        "thumbnail_px": attachments.THUMBNAIL_SIZE,
        "default_channel": config["DEFAULT_CHANNEL"],
        "max_search_query_length": config["MAX_SEARCH_QUERY_LENGTH"],
    }
    return render_template("chats.html", open_chat_id=open_chat_id, settings=settings)
