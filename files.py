"""Attachments over HTTP: the upload of a file with its message, and serving it to members."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, abort, current_app, g, jsonify, request, send_file
from flask.blueprints import BlueprintSetupState

import attachments
import db_commands
import messaging
import off_loop
import private_files
from errors import json_error
from extensions import csrf, limit
from helpers import ValidationError, login_required, parse_id, serialize_message

bp = Blueprint("files", __name__)
log = logging.getLogger("chat")


@bp.record_once
def _open_upload_lane(state: BlueprintSetupState) -> None:
    # At most UPLOAD_WORKERS uploads are checked and stored at once, each off the loop.
    state.app.extensions["upload_lane"] = off_loop.Lane(state.app.config["UPLOAD_WORKERS"])


@bp.post("/upload")
@csrf.exempt  # checked below, after the login, so a logged-out browser hears 401
@login_required
@limit(lambda: current_app.config["UPLOAD_RATE_LIMIT"], key_func=lambda: f"upload:{g.user['id']}")
def upload() -> Any:
    """Store a file and send it as a message (once per ``client_id``)."""
    config = current_app.config
    if config["WTF_CSRF_ENABLED"]:
        csrf.protect()
    user_id = g.user["id"]
    form = request.form
    try:
        draft = messaging.check_message(
            user_id,
            parse_id(form.get("chat_id")),
            form.get("caption", ""),
            form.get("client_id"),
            caption=True,
        )
        # A stranger's file is never stored: membership is checked before the file is read.
        messaging.access_chat(draft.chat_id, user_id)
    except messaging.NotAMember as error:
        return json_error(404, str(error))
    except ValidationError as error:
        return json_error(400, str(error))
    stored = db_commands.get_message_by_client_id(user_id, draft.client_id)
    if stored is not None:  # a retry of an upload that already made its message
        return jsonify({"ok": True, "message": serialize_message(stored)}), 200
    file = request.files.get("file")
    if file is None or not file.filename:
        return json_error(400, "Choose a file to send.")
    folder = config["UPLOAD_PATH"]
    try:
        kept = current_app.extensions["upload_lane"].run(
            attachments.store_upload,
            file.stream,
            file.filename,
            folder,
            config["MAX_UPLOAD_MB"] * 1024 * 1024,
            int(config["MAX_PICTURE_MEGAPIXELS"] * 1_000_000),
        )
    except attachments.FileTooLarge as error:
        return json_error(413, str(error))
    except ValidationError as error:
        return json_error(400, str(error))
    # Born private under `python app.py`'s umask; made so here under any other host.
    private_files.make_private(
        folder / kept.stored_name, folder / attachments.thumbnail_name(kept.stored_name)
    )
    try:
        message, created = messaging.do_send_message(draft, kept.row(file.filename))
    except messaging.NotAMember as error:  # removed from the chat while the file came
        attachments.delete_stored(folder, kept.stored_name)
        return json_error(404, str(error))
    except BaseException:
        # No row names the files: they go, and a retry (the browser sends the file again
        # after a 503 for a locked database) stores them afresh.
        attachments.delete_stored(folder, kept.stored_name)
        raise
    if not created:
        attachments.delete_stored(folder, kept.stored_name)
    return jsonify({"ok": True, "message": message}), 201 if created else 200


@bp.get("/uploads/<id:attachment_id>")
@login_required
def download(attachment_id: int) -> Any:
    """A stored file, to its chat's members: a picture inline, anything else to save."""
    found = db_commands.get_attachment_for_member(attachment_id, g.user["id"])
    if found is None:
        abort(404)
    return _send_stored(
        found["stored_name"],
        found["mime_type"],
        as_attachment=not attachments.is_picture(found["mime_type"]),
        # Names stored before look-alike characters were removed are cleaned here.
        download_name=attachments.clean_name(found["original_name"]),
    )


@bp.get("/uploads/<id:attachment_id>/thumbnail")
@login_required
def thumbnail(attachment_id: int) -> Any:
    """A picture's thumbnail, to its chat's members."""
    found = db_commands.get_attachment_for_member(attachment_id, g.user["id"])
    if found is None or not attachments.is_picture(found["mime_type"]):
        abort(404)
    return _send_stored(
        attachments.thumbnail_name(found["stored_name"]),
        attachments.thumbnail_mime_type(found["stored_name"]),
        as_attachment=False,
        download_name=attachments.clean_name(found["original_name"]),
    )


def _send_stored(name: str, mime_type: str, *, as_attachment: bool, download_name: str) -> Any:
    path = Path(current_app.config["UPLOAD_PATH"], name)
    if not path.is_file():
        abort(404)
    response = send_file(
        path,
        mimetype=mime_type,
        as_attachment=as_attachment,
        download_name=download_name,
        max_age=0,
        conditional=True,
    )
    # A stored file never changes; only the people of its chat may keep a copy.
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


def do_sweep_uploads(app: Flask) -> None:
    """Remove what interrupted uploads left in the upload folder (see
    ``attachments.sweep_leftovers``): at start, before any upload can be in flight here."""
    with app.app_context():
        referenced = db_commands.list_stored_names()
    removed = attachments.sweep_leftovers(app.config["UPLOAD_PATH"], referenced)
    if removed:
        log.info("Removed %d leftover files from the upload folder", len(removed))
