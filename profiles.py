"""Blueprint ``profiles``: ``/settings`` (display name, picture, password) and the pictures
at ``/avatars/<user_id>``. A picture is checked as an attachment's is (its kind, its size in
bytes and pixels, Pillow proving the content), cut to a centred square of
``AVATAR_SIZE`` pixels and kept as a small PNG in the user's row; all of that runs off the
event loop, in the uploads' lane. A password change needs the current password (but just
after a one-time sign-in link) and ends the user's other sessions and their sockets."""

from __future__ import annotations

import io
import unicodedata
from typing import IO, Any

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from PIL import Image, ImageOps, UnidentifiedImageError

import accounts
import attachments
import db_commands
import passwords
from errors import apology
from extensions import limit
from helpers import (
    ValidationError,
    avatar_url,
    check_password,
    has_hidden_characters,
    is_valid_unicode,
    login_required,
)
from presence import session_key

bp = Blueprint("profiles", __name__)

AVATAR_SIZE = 128
MAX_DISPLAY_NAME_LENGTH = 40
PICTURE_KINDS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "gif": "GIF"}


def check_display_name(value: Any) -> str | None:
    """1 to ``MAX_DISPLAY_NAME_LENGTH`` characters after trimming, nothing invisible; empty
    means "my username" (None)."""
    if not isinstance(value, str):
        raise ValidationError("A display name must be text.")
    name = " ".join(value.split())
    if not name:
        return None
    if len(name) > MAX_DISPLAY_NAME_LENGTH:
        raise ValidationError(f"A display name has at most {MAX_DISPLAY_NAME_LENGTH} characters.")
    if not is_valid_unicode(name) or any(unicodedata.category(ch) == "Cc" for ch in name):
        raise ValidationError("A display name cannot hold control characters.")
    if has_hidden_characters(name):
        raise ValidationError("A display name cannot hold invisible or text-direction characters.")
    return name


def make_avatar(stream: IO[bytes], file_name: str, max_bytes: int, max_pixels: int) -> bytes:
    """A square PNG of ``AVATAR_SIZE`` pixels from an uploaded picture; ValidationError for
    anything that is not a png, jpg or gif picture within the limits. Blocking: run it off
    the loop."""
    kind = PICTURE_KINDS.get(attachments.extension(file_name))
    if kind is None:
        raise ValidationError("A picture is a png, jpg or gif file.")
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise attachments.FileTooLarge(f"A picture has at most {max_bytes // (1024 * 1024)} MB.")
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as image:
            attachments.check_picture_size(image.width, image.height, max_pixels)
            image.verify()
        with Image.open(io.BytesIO(data), formats=[kind]) as image:
            image.draft("RGB", (AVATAR_SIZE * 2, AVATAR_SIZE * 2))
            square = ImageOps.fit(ImageOps.exif_transpose(image), (AVATAR_SIZE, AVATAR_SIZE))
            if square.mode not in {"RGB", "RGBA"}:
                square = square.convert("RGBA")
            out = io.BytesIO()
            square.save(out, "PNG", optimize=True)
            return out.getvalue()
    except Image.DecompressionBombError:
        raise attachments.PictureTooLarge("This picture has far too many pixels.") from None
    except ValidationError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValidationError(f"This file is not a real {kind} picture.") from None


def _page(errors: dict[str, str] | None = None, saved: str = "", status: int = 200) -> Any:
    user = g.user
    return render_template(
        "settings.html",
        display_name=user["display_name"] if user["display_name"] != user["username"] else "",
        avatar=avatar_url(user["id"], user["avatar_version"]),
        may_set_password=bool(session.get("may_set_password")),
        max_display_name=MAX_DISPLAY_NAME_LENGTH,
        errors=errors or {},
        saved=saved,
    ), status


@bp.get("/settings")
@login_required
def settings() -> Any:
    """The settings page."""
    return _page(saved=request.args.get("saved", ""))


def _saved(what: str) -> Any:
    return redirect(url_for("profiles.settings", saved=what), 303)


@bp.post("/settings/name")
@login_required
def save_name() -> Any:
    """A new display name (empty: the username)."""
    try:
        name = check_display_name(request.form.get("display_name", ""))
    except ValidationError as error:
        return _page({"display_name": str(error)}, status=400)
    db_commands.update_display_name(g.user["id"], name)
    return _saved("name")


@bp.post("/settings/picture")
@login_required
# A picture is decoded like an upload, in the same lane: it counts as one.
@limit(lambda: current_app.config["UPLOAD_RATE_LIMIT"], key_func=lambda: f"upload:{g.user['id']}")
def save_picture() -> Any:
    """A new picture, or (``remove``) none."""
    if request.form.get("remove"):
        db_commands.update_avatar(g.user["id"], None)
        return _saved("picture")
    file = request.files.get("picture")
    if file is None or not file.filename:
        return _page({"picture": "Choose a picture."}, status=400)
    config = current_app.config
    try:
        picture = current_app.extensions["upload_lane"].run(
            make_avatar,
            file.stream,
            file.filename,
            config["MAX_UPLOAD_MB"] * 1024 * 1024,
            int(config["MAX_PICTURE_MEGAPIXELS"] * 1_000_000),
        )
    except attachments.FileTooLarge as error:
        return _page({"picture": str(error)}, status=413)
    except ValidationError as error:
        return _page({"picture": str(error)}, status=400)
    db_commands.update_avatar(g.user["id"], picture)
    return _saved("picture")


@bp.post("/settings/password")
@login_required
# Each try hashes a password in the lane logins share: a guess costs what a login costs.
@limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], key_func=lambda: f"password:{g.user['id']}")
def save_password() -> Any:
    """A new password; the current one is needed (but just after a sign-in link). Every
    other session of the user ends, and its sockets close."""
    form = request.form
    method = current_app.config["PASSWORD_HASH_METHOD"]
    user_id = g.user["id"]
    if not session.get("may_set_password") and not passwords.is_correct(
        db_commands.get_password_hash(user_id), form.get("current_password", ""), method
    ):
        return _page({"current_password": "This is not your current password."}, status=400)
    try:
        password = check_password(form.get("password", ""), form.get("confirmation", ""))
    except ValidationError as error:
        return _page({"password": str(error)}, status=400)
    generation = db_commands.update_password(user_id, passwords.make_hash(password, method))
    session["login_generation"] = generation
    session.pop("may_set_password", None)
    kept = session_key(request.cookies.get(current_app.config["SESSION_COOKIE_NAME"]))
    accounts.close_user_sockets(user_id, keep_session=kept)
    return _saved("password")


@bp.get("/avatars/<id:user_id>")
@login_required
def avatar(user_id: int) -> Any:
    """A user's picture, for logged-in users (cached: its URL names its version)."""
    picture = db_commands.get_avatar(user_id)
    if picture is None:
        return apology(404, "This person has no picture.")
    response = Response(picture, mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return response
