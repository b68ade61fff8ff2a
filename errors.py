"""Error answers: JSON for socket and XHR callers, ``apology.html`` with its status for pages."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import ClientDisconnected, HTTPException

import db_commands
from helpers import safe_next_url, wants_json
from rate_limits import TOO_FAST
from transient import is_transient, log_transient, unavailable_answer

bp = Blueprint("errors", __name__)

# The pages whose form shows a refusal in place, by endpoint.
FORM_PAGES = {"auth.login": "login.html", "auth.register": "register.html"}


def apology(code: int, message: str) -> Any:
    """``{ok: false, error}`` for a JSON caller, else the apology page, with ``code``."""
    if wants_json():
        return jsonify({"ok": False, "error": message}), code
    return render_template("apology.html", code=code, message=message), code


def json_error(code: int, message: str) -> Any:
    """``{ok: false, error}`` with ``code``, whoever asks."""
    return jsonify({"ok": False, "error": message}), code


def next_arg() -> str:
    """The request's ``next`` if it stays on this site, else ''."""
    return safe_next_url(request.values.get("next")) or ""


@bp.app_errorhandler(CSRFError)
def csrf_error(error: CSRFError) -> Any:
    """A form without a valid CSRF token."""
    return apology(400, "The form expired or came from another site. Please try again.")


@bp.app_errorhandler(429)
def too_many(error: HTTPException) -> Any:
    """Over a route's rate limit: the login and register forms say so in place."""
    page = FORM_PAGES.get(request.endpoint or "")
    if page is not None:
        errors = {"form": "Too many attempts. Please wait a minute and try again."}
        username = request.form.get("username", "")
        return render_template(page, username=username, errors=errors, next=next_arg()), 429
    if wants_json():
        return jsonify({"ok": False, "error": TOO_FAST, "code": "rate_limited"}), 429
    return apology(429, TOO_FAST)


@bp.app_errorhandler(ClientDisconnected)
def stalled(error: ClientDisconnected) -> Any:
    """The body stopped coming (HTTP_TIMEOUT_SECONDS without a byte) or was cut short."""
    return apology(408, "The request stopped arriving before its end. Please try again.")


@bp.app_errorhandler(db_commands.DatabaseBusy)
def database_busy(error: db_commands.DatabaseBusy) -> Any:
    response, code = apology(503, str(error))
    return response, code, {"Retry-After": "1"}


@bp.app_errorhandler(HTTPException)
def http_error(error: HTTPException) -> Any:
    """Any other HTTP error, with its own status and text."""
    return apology(error.code or 500, error.description or error.name)


@bp.app_errorhandler(Exception)
def unexpected_error(error: Exception) -> Any:
    """A passing failure answers 503 (try again); anything else 500, logged."""
    if is_transient(error):
        log_transient(f"{request.method} {request.path}", error)
        return _unavailable()
    current_app.logger.exception("Unhandled error on %s %s", request.method, request.path)
    return apology(500, "Something went wrong on the server. Please try again.")


def _unavailable() -> Any:
    """503 for a passing failure (an upload's client sends it again by itself)."""
    if wants_json():
        response = jsonify(unavailable_answer())
    else:
        response = make_response(
            render_template("apology.html", code=503, message=unavailable_answer()["error"])
        )
    # No Retry-After: on a rate-limited route Flask-Limiter would raise it to its window's
    # end; the browser waits with its own backoff instead.
    response.status_code = 503
    return response
