"""The browser an account last logged in from, remembered in a signed cookie.

Failed logins are limited per address, and per account across all addresses so that
guesses spread over many addresses stay few. The account-wide limit alone would let
anyone lock a chosen person out; a browser that has logged in to the account before
(this cookie, signed with the secret key, sent only to ``/login``) is spared it, so the
owner at their own device still gets in while the account is under attack. A guess from
that browser still counts against its own address's limit.
"""

from __future__ import annotations

from flask import Flask, Response, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE_NAME = "login_device"
COOKIE_PATH = "/login"
# A browser not used to log in for a year is a stranger again.
MAX_AGE_SECONDS = 365 * 24 * 3600


def _serializer(app: Flask) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(app.secret_key, salt="login-device")


def account_name(username: str) -> str:
    """The form of a typed username that names its account (usernames ignore case)."""
    return username.strip().lower()


def remember(app: Flask, response: Response, username: str) -> None:
    """Mark this browser as one that logged in to ``username``'s account."""
    response.set_cookie(
        COOKIE_NAME,
        _serializer(app).dumps(account_name(username)),
        max_age=MAX_AGE_SECONDS,
        path=COOKIE_PATH,
        secure=app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )


def is_known(app: Flask, username: str) -> bool:
    """Whether this request comes from a browser that logged in to ``username`` before."""
    value = request.cookies.get(COOKIE_NAME)
    if not value:
        return False
    try:
        remembered = _serializer(app).loads(value, max_age=MAX_AGE_SECONDS)
    except BadSignature:
        return False
    return remembered == account_name(username)
