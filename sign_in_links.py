"""Blueprint ``sign_in``: ``/sign-in/<token>``, where a one-time sign-in link made by an
admin (``/admin``, ``flask users reset-link``) logs its person in, once, within the hour;
then the settings page lets them choose a new password without the old one."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, session, url_for

import accounts
from auth import log_in
from errors import apology

bp = Blueprint("sign_in", __name__)

# The token is checked against its hash only; anything longer is no token of ours.
MAX_TOKEN_LENGTH = 64
USED_OR_EXPIRED = "This sign-in link was used already or has expired. Ask an admin for a new one."


@bp.get("/sign-in/<token>")
def show(token: str) -> Any:
    """A button to sign in: a link preview or a scanner fetching the URL does not use it."""
    user = accounts.get_sign_in_user(token) if len(token) <= MAX_TOKEN_LENGTH else None
    if user is None:
        return apology(410, USED_OR_EXPIRED)
    return render_template("sign_in.html", username=user["username"], token=token)


@bp.post("/sign-in/<token>")
def use(token: str) -> Any:
    """Use the link once: log its person in, then on to choose a new password."""
    user_id = accounts.use_sign_in_link(token) if len(token) <= MAX_TOKEN_LENGTH else None
    if user_id is None:
        return apology(410, USED_OR_EXPIRED)
    log_in(user_id)
    session["may_set_password"] = True
    return redirect(url_for("profiles.settings"), 303)
