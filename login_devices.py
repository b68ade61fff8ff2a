"""The accounts a browser has logged in to, remembered in a signed cookie.

Failed logins are limited per address, and per account across all addresses so that
guesses spread over many addresses stay few. The account-wide limit alone would let
anyone lock a chosen person out; a browser that has logged in to the account before
(this cookie, signed with the secret key, HttpOnly) is spared it, so the owner at their
own device still gets in while the account is under attack. A guess from that browser
still counts against its own address's limit.
"""

from __future__ import annotations

from flask import Flask, Response, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE_NAME = "login_device"
# A browser not used to log in for a year is a stranger again.
MAX_AGE_SECONDS = 365 * 24 * 3600
# Accounts one browser remembers (a family computer, a shared desk), the latest first.
MAX_ACCOUNTS = 5


def _serializer(app: Flask) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(app.secret_key, salt="login-device")


def account_name(username: str) -> str:
    """The form of a typed username that names its account (usernames ignore case)."""
    return username.strip().lower()


def remember(app: Flask, response: Response, username: str) -> None:
    """Mark this browser as one that logged in to ``username``'s account."""
    account = account_name(username)
    accounts = [account, *(a for a in _remembered(app) if a != account)][:MAX_ACCOUNTS]
    response.set_cookie(
        COOKIE_NAME,
        _serializer(app).dumps(accounts),
        max_age=MAX_AGE_SECONDS,
        secure=app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )


def is_known(app: Flask, username: str) -> bool:
    """Whether this request comes from a browser that logged in to ``username`` before."""
    return account_name(username) in _remembered(app)


def _remembered(app: Flask) -> list[str]:
    """The accounts this request's browser has logged in to (none if the cookie is forged,
    old or absent)."""
    value = request.cookies.get(COOKIE_NAME)
    if not value:
        return []
    try:
        accounts = _serializer(app).loads(value, max_age=MAX_AGE_SECONDS)
    except BadSignature:
        return []
    if not isinstance(accounts, list):
        return []
    return [a for a in accounts if isinstance(a, str)]
