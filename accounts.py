"""Roles and the actions that change an account from outside it: who is an admin,
deactivating and reactivating, making an admin, one-time sign-in links, who may register,
and closing a user's sockets on every worker. The admin page (admin.py) and the shell's
``flask users`` (user_commands.py) both act through here.

Roles: ``admin`` (the first account, and whoever an admin makes one) and ``member``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import current_app, g

import db_commands
import passwords
from errors import apology
from helpers import ValidationError, check_password, check_username, login_required, now_ms

F = TypeVar("F", bound=Callable[..., Any])

ROLES = ("admin", "member")
REGISTRATION_MODES = ("open", "closed", "invite")
# A one-time sign-in link is good for this long, and for one use.
SIGN_IN_LINK_SECONDS = 3600
REGISTRATION_CLOSED = "Registration is closed. Ask an admin of this chat for an invite link."


# -- roles ---------------------------------------------------------------------------


def is_admin(user_id: int) -> bool:
    """Whether this user is an active admin (may run /admin and delete any message)."""
    return db_commands.get_role(user_id) == "admin"


def admin_required(view: F) -> F:
    """A page for admins only: a logged-out visitor goes to the login page, a member gets
    403."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.user["role"] != "admin":
            return apology(403, "This page is for the chat's admins.")
        return view(*args, **kwargs)

    return login_required(wrapped)  # type: ignore[return-value]


def is_current_login(session: Mapping[str, Any], user: Mapping[str, Any]) -> bool:
    """Whether a login session was made under the user's current password (a password
    change ends the sessions made before it)."""
    return session.get("login_generation", 0) == user["login_generation"]


# -- acting on accounts ----------------------------------------------------------------


def close_user_sockets(user_id: int, keep_session: str | None = None) -> None:
    """Disconnect at once every open socket of a user, on every worker (but those of the
    login session ``keep_session``), after telling each it is logged out."""
    socketio = current_app.extensions["socketio"]
    store = current_app.extensions["presence"].store
    kept = set(store.sockets_of_session(keep_session)) if keep_session else set()
    for sid in store.sockets_of_user(user_id):
        if sid not in kept:
            socketio.emit("logged_out", {}, to=sid)
            socketio.server.disconnect(sid)


def do_deactivate(user_id: int) -> bool:
    """Deactivate a user: they cannot log in, their sockets close now, their messages
    stay. False if they were deactivated already (or unknown)."""
    changed = db_commands.update_deactivated(user_id, True)
    close_user_sockets(user_id)
    return changed


def do_activate(user_id: int) -> bool:
    """Let a deactivated user log in again; False if they were active (or unknown)."""
    return db_commands.update_deactivated(user_id, False)


def do_make_admin(user_id: int) -> bool:
    """Make a user an admin; False for an unknown user."""
    return db_commands.update_role(user_id, "admin")


def do_create_user(username: str, password: str, admin: bool = False) -> int:
    """Create an account (an admin if asked, or if it is the first); raise ValidationError
    for a bad or taken name or a short password."""
    name = check_username(username)
    check_password(password, password)
    config = current_app.config
    try:
        return db_commands.insert_user(
            name,
            passwords.make_hash(password, config["PASSWORD_HASH_METHOD"]),
            config["DEFAULT_CHANNEL"],
            make_admin=admin,
        )
    except db_commands.IntegrityError:
        raise ValidationError("This username is taken.") from None


# -- one-time sign-in links ------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def make_sign_in_path(user_id: int) -> str:
    """A new one-time sign-in link's path for a user: valid ``SIGN_IN_LINK_SECONDS``, used
    once; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    db_commands.insert_sign_in_link(
        user_id, _token_hash(token), now_ms() + SIGN_IN_LINK_SECONDS * 1000
    )
    return f"/sign-in/{token}"


def get_sign_in_user(token: str) -> dict[str, Any] | None:
    """The user a sign-in link would sign in (unused, unexpired), without using it."""
    return db_commands.get_sign_in_link(_token_hash(token))


def use_sign_in_link(token: str) -> int | None:
    """Use a sign-in link: its user's id, or None when it is unknown, used or expired."""
    return db_commands.update_sign_in_link_used(_token_hash(token))


# -- who may register ------------------------------------------------------------------


def get_registration() -> dict[str, Any]:
    """``{registration, invite_token}``: ``open``, ``closed`` or ``invite`` (by the link)."""
    return db_commands.get_site()


def may_register(invite: str | None) -> bool:
    """Whether a visitor (carrying ``invite`` from the link, if any) may create an account."""
    site = get_registration()
    if site["registration"] == "open":
        return True
    token = site["invite_token"]
    return (
        site["registration"] == "invite"
        and bool(token and invite)
        and hmac.compare_digest(token.encode(), str(invite).encode())
    )


def do_set_registration(mode: str) -> None:
    """Open or close registration, or open it by invite link (made on first need)."""
    if mode not in REGISTRATION_MODES:
        raise ValidationError("Registration is open, closed or by invite link.")
    token = get_registration()["invite_token"] or secrets.token_urlsafe(16)
    db_commands.update_registration(mode, token)


def do_reset_invite() -> None:
    """A new invite link; the old one stops working."""
    site = get_registration()
    db_commands.update_registration(site["registration"], secrets.token_urlsafe(16))


def public_url(path: str) -> str:
    """``path`` on the chat's first public origin (``PUBLIC_ORIGIN``), else on this machine's
    port: for links printed in the shell."""
    origins = [o.strip() for o in current_app.config["PUBLIC_ORIGIN"].split(",") if o.strip()]
    base = origins[0] if origins else f"http://localhost:{current_app.config['PORT']}"
    return base.rstrip("/") + path
