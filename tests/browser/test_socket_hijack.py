"""A page of the same site (another port of the chat's host) cannot take over a logged-in
visitor's Socket.IO session through a ``<script>`` asking for JSONP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Request

from tests.browser.ui import register

# The page an attacker serves: it defines the JSONP callback python-engineio calls, then
# asks the chat for a polling handshake with a <script>, which carries the visitor's
# cookies and no Origin header.
ATTACKER_PAGE = """<!doctype html>
<meta charset="utf-8">
<title>A page of the same site</title>
<script>
  window.stolen = null;
  window.___eio = [function (packet) { window.stolen = String(packet); }];
</script>
<script src="{chat}/socket.io/?EIO=4&transport=polling&j=0"></script>
<script>window.finished = true;</script>
"""


@pytest.fixture
def attacker_url(live_server) -> Iterator[str]:
    """A tiny HTTP server on another port of 127.0.0.1 serving ``ATTACKER_PAGE``."""
    page = ATTACKER_PAGE.replace("{chat}", live_server.url).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_a_same_site_page_cannot_read_a_logged_in_visitors_socket_session(page_for, attacker_url):
    """Alice is logged in; a page on another port of the same host includes a JSONP
    handshake as a script. Her cookie goes along, but the chat refuses JSONP with an error
    and ``nosniff``: the page gets no Engine.IO session id. (Before, it got one: JSONP was
    answered, and the script ran.)"""
    alice = page_for("alice")
    register(alice, "alice")
    handshakes: list[Request] = []
    alice.on("request", lambda r: handshakes.append(r) if "/socket.io/" in r.url else None)
    alice.goto(attacker_url)
    alice.wait_for_function("() => window.finished === true")

    assert alice.evaluate("window.stolen") is None, "the page read alice's session id"
    assert len(handshakes) == 1 and "j=0" in handshakes[0].url
    # The same request from alice's browser, read this time: the chat's answer.
    assert any(c["name"] == "session" for c in alice.context.cookies(handshakes[0].url))
    answer = alice.context.request.get(handshakes[0].url)
    assert answer.status == 400
    assert answer.text() == "JSONP is not served."
    assert answer.headers["x-content-type-options"] == "nosniff"
