"""Blueprint ``admin``: the admins' page, ``/admin``: the users with their roles and last
activity; deactivate, reactivate, make admin; a one-time sign-in link with its QR code;
registration open, closed or by an invite link with its QR code. Forms are CSRF-protected
like every other; members get 403."""

from __future__ import annotations

from typing import Any

import segno
from flask import Blueprint, g, redirect, render_template, request, url_for

import accounts
import db_commands
from errors import apology
from helpers import ValidationError

bp = Blueprint("admin", __name__, url_prefix="/admin")


def qr_code(url: str) -> str:
    """An SVG QR code of ``url`` as a data URI (the page's CSP allows ``img-src data:``)."""
    return segno.make(url, error="m").svg_data_uri(scale=4, border=2)


def _page(sign_in: dict[str, Any] | None = None, status: int = 200) -> Any:
    site = accounts.get_registration()
    invite_url = None
    if site["registration"] == "invite" and site["invite_token"]:
        invite_url = request.host_url.rstrip("/") + f"/register?invite={site['invite_token']}"
    return render_template(
        "admin.html",
        users=db_commands.list_users_for_admin(),
        registration=site["registration"],
        invite_url=invite_url,
        invite_qr=qr_code(invite_url) if invite_url else None,
        sign_in=sign_in,
        link_minutes=accounts.SIGN_IN_LINK_SECONDS // 60,
    ), status


@bp.get("")
@accounts.admin_required
def index() -> Any:
    """The users, their roles and last activity, and the registration."""
    return _page()


@bp.post("/users/<id:user_id>/<action>")
@accounts.admin_required
def act_on_user(user_id: int, action: str) -> Any:
    """Deactivate, reactivate or make admin a user, or make them a sign-in link."""
    user = db_commands.get_account(user_id)
    if user is None:
        return apology(404, "There is no such person.")
    if action == "deactivate":
        if user_id == g.user["id"]:
            return apology(400, "You cannot deactivate your own account.")
        accounts.do_deactivate(user_id)
    elif action == "activate":
        accounts.do_activate(user_id)
    elif action == "make-admin":
        accounts.do_make_admin(user_id)
    elif action == "sign-in-link":
        url = request.host_url.rstrip("/") + accounts.make_sign_in_path(user_id)
        return _page({"username": user["username"], "url": url, "qr": qr_code(url)})
    else:
        return apology(404, "There is no such action.")
    return redirect(url_for("admin.index"), 303)


@bp.post("/registration")
@accounts.admin_required
def registration() -> Any:
    """Open or close registration, or open it by invite link; or reset the invite link."""
    try:
        if request.form.get("reset_invite"):
            accounts.do_reset_invite()
        else:
            accounts.do_set_registration(request.form.get("registration", ""))
    except ValidationError as error:
        return apology(400, str(error))
    return redirect(url_for("admin.index"), 303)
