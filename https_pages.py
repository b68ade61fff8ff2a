"""What serving HTTPS itself changes in the web application: the CA certificate and its
install steps for phones and computers (``/ca.crt``, ``/ca``), cookies sent only over
HTTPS, and HSTS.

``init_app`` is the whole wiring. The routes exist only when the chat makes its own CA
(``HTTPS=1`` without ``TLS_CERT``), need no login (a phone installs the CA before it logs
in) and hand out its certificate, never a key.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, render_template

import local_tls
import off_loop

CA_MIME_TYPE = "application/x-x509-ca-cert"
# Browsers that reached the chat over HTTPS keep to it for a year, and refuse to be talked
# into plain HTTP by someone on the same network. No includeSubDomains: the chat owns one
# host name, not the names under it.
HSTS = "max-age=31536000"

blueprint = Blueprint("https_pages", __name__)


def init_app(app: Flask) -> None:
    """When the chat serves HTTPS itself: Secure cookies, HSTS, and the CA pages if the CA
    is the chat's own (a chat without one has no such pages at all)."""
    if app.config.get("HTTPS") and not app.config.get("TLS_CERT"):
        app.register_blueprint(blueprint)
    if local_tls.serves_tls(app.config):
        # Every cookie of the chat (the session, login_devices' cookie) follows this one.
        app.config["SESSION_COOKIE_SECURE"] = True
        app.after_request(add_hsts)


def add_hsts(response: Any) -> Any:
    """Tell the browser to come back over HTTPS only."""
    response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def get_ca_pem() -> bytes:
    """The certificate of the CA the chat made, as PEM, or 404 when it made none. Parsed and
    written out again: whatever else the file may hold, only the certificate leaves."""
    path = local_tls.made_ca_certificate(current_app.config, current_app.root_path)
    if path is None:
        abort(404)
    return off_loop.run(local_tls.read_certificate_pem, path)


@blueprint.get("/ca.crt")
def ca_certificate() -> Any:
    """The CA's certificate alone, for a device to install as a trusted authority."""
    response = Response(get_ca_pem(), mimetype=CA_MIME_TYPE)
    response.headers["Content-Disposition"] = 'attachment; filename="chat-ca.crt"'
    response.headers["Cache-Control"] = "no-cache"
    return response


@blueprint.get("/ca")
def ca_page() -> Any:
    """How to install the CA's certificate on Android, iOS, Windows, macOS and Linux."""
    return render_template("ca.html", fingerprint=local_tls.get_fingerprint(get_ca_pem()))
