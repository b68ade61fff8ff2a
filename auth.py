"""Accounts: register, log in, log out, and the logged-in user of every request."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

import accounts
import broadcast
import db_commands
import login_devices
import passwords
from errors import apology, next_arg
from extensions import limit
from helpers import (
    MAX_USERNAME_LENGTH,
    MIN_PASSWORD_LENGTH,
    MIN_USERNAME_LENGTH,
    ValidationError,
    check_password,
    check_username,
)
from presence import session_key

bp = Blueprint("auth", __name__)


def _failed(response: Any) -> bool:
    return response.status_code != 303


def _typed_account() -> str:
    return "account:" + login_devices.account_name(request.form.get("username", ""))


@bp.before_app_request
def load_user() -> None:
    """``g.user`` for the session's user, or None; a session of a deleted user ends."""
    user_id = session.get("user_id")
    g.user = db_commands.get_user(user_id) if user_id is not None else None
    if g.user is not None and not accounts.is_current_login(session, g.user):
        g.user = None  # made before a password change
    if user_id is not None and g.user is None:
        session.clear()


@bp.app_context_processor
def inject_user() -> dict[str, Any]:
    """``current_user`` for every template."""
    user = g.get("user")
    if user is None:
        return {"current_user": None}
    fields = ("id", "username", "display_name", "role")
    return {"current_user": {field: user[field] for field in fields}}


@bp.context_processor
def inject_limits() -> dict[str, Any]:
    """The account limits the register form shows, from the checks that enforce them."""
    limits = {
        "min_username": MIN_USERNAME_LENGTH,
        "max_username": MAX_USERNAME_LENGTH,
        "min_password": MIN_PASSWORD_LENGTH,
    }
    return {"limits": limits}


@bp.route("/register", methods=["GET", "POST"])
@limit(lambda: current_app.config["REGISTER_RATE_LIMIT"], methods=["POST"])
def register() -> Any:
    """The form, or a new account and its first login."""
    invite = request.values.get("invite", "")
    if not accounts.may_register(invite):
        return apology(403, accounts.REGISTRATION_CLOSED)
    if request.method == "GET":
        return render_template(
            "register.html", username="", errors={}, next=next_arg(), invite=invite
        )
    errors: dict[str, str] = {}
    raw_username = request.form.get("username", "")
    try:
        username = check_username(raw_username)
    except ValidationError as error:
        errors["username"] = str(error)
    try:
        password = check_password(
            request.form.get("password", ""), request.form.get("confirmation", "")
        )
    except ValidationError as error:
        key = "confirmation" if "match" in str(error) else "password"
        errors[key] = str(error)
    if not errors:
        try:
            user_id = db_commands.insert_user(
                username,
                passwords.make_hash(password, current_app.config["PASSWORD_HASH_METHOD"]),
                current_app.config["DEFAULT_CHANNEL"],
            )
        except db_commands.IntegrityError:
            errors["username"] = "This username is taken."
    if errors:
        return render_template(
            "register.html", username=raw_username, errors=errors, next=next_arg(), invite=invite
        ), 400
    log_in(user_id)
    return _redirect_after_login(username)


@bp.route("/login", methods=["GET", "POST"])
@limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT"],
    methods=["POST"],
    deduct_when=_failed,
    override_defaults=False,
)
@limit(
    lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"],
    methods=["POST"],
    key_func=_typed_account,
    # The owner's own browser is spared, so nobody can lock them out by guessing.
    exempt_when=lambda: login_devices.is_known(current_app, request.form.get("username", "")),
    deduct_when=_failed,
    override_defaults=False,
)
def login() -> Any:
    """The form, or a login: a wrong name costs what a wrong password costs."""
    if request.method == "GET":
        return render_template("login.html", username="", errors={}, next=next_arg())
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    user = db_commands.get_user_credentials(username) if username else None
    stored_hash = user["password_hash"] if user is not None else None
    method = current_app.config["PASSWORD_HASH_METHOD"]
    if not passwords.is_correct(stored_hash, password, method):
        errors = {"form": "Wrong username or password."}
        return render_template("login.html", username=username, errors=errors, next=next_arg()), 400
    if user["deactivated_at"] is not None:
        errors = {"form": "This account is deactivated. Ask an admin of this chat."}
        return render_template("login.html", username=username, errors=errors, next=next_arg()), 403
    log_in(user["id"])
    return _redirect_after_login(username)


@bp.post("/logout")
def logout() -> Any:
    """End the session and close the sockets opened with it."""
    key = session_key(request.cookies.get(current_app.config["SESSION_COOKIE_NAME"]))
    session.clear()
    if key:
        broadcast.close_session_sockets(key)
    return redirect(url_for("auth.login"), 303)


def log_in(user_id: int) -> None:
    """Start a fresh session for ``user_id`` under a new session id (no fixation). The login
    session it replaces (a login on a browser already logged in) ends with its sockets."""
    replaced = None
    if session.get("user_id") is not None:
        cookie = request.cookies.get(current_app.config["SESSION_COOKIE_NAME"])
        replaced = session_key(cookie)
    session.clear()
    session["user_id"] = user_id
    session["login_generation"] = db_commands.get_user(user_id)["login_generation"]
    current_app.session_interface.regenerate(session)
    db_commands.update_last_seen(user_id)
    if replaced:
        broadcast.close_session_sockets(replaced)


def _redirect_after_login(username: str) -> Any:
    response = redirect(next_arg() or url_for("pages.chats"), 303)
    login_devices.remember(current_app, response, username)
    return response
