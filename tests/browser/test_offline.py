"""Sending on a bad network, in real browsers: what alice writes offline waits, then goes
out once, after what bob wrote meanwhile; a send whose answer is lost shows "Not sent" with
a Retry that stores nothing twice."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from playwright.sync_api import Locator, Page, WebSocketRoute, expect

from tests.browser.ui import (
    meet,
    message_bodies,
    open_chat,
    open_direct_chat_from,
    register,
    send_message,
    start_direct_chat,
    wait_until_chat_is_open,
)

SOCKET_URL = re.compile(r"/socket\.io/")
# Socket.IO text frames: an event with an acknowledgement id, and the answer to it.
SEND_FRAME = re.compile(r'^42(\d+)\["message_sent"')
ACK_FRAME = re.compile(r"^43(\d+)\[")
# The page gives up waiting for an acknowledgement after 10 s.
SEND_TIMEOUT_MS = 10_000


def own_message(page: Page, text: str) -> Locator:
    """The message ``text`` in the open chat."""
    body = page.locator(".message-body", has_text=re.compile(f"^{re.escape(text)}$"))
    return page.locator("#messages .message").filter(has=body)


def write(page: Page, text: str) -> None:
    """Type ``text`` and press Enter, without waiting for it to be sent."""
    composer = page.get_by_label("Message", exact=True)
    composer.fill(text)
    composer.press("Enter")
    expect(composer).to_have_value("")


def rows_with_body(database: Path, body: str) -> int:
    conn = sqlite3.connect(database)
    try:
        return conn.execute("SELECT COUNT(*) FROM messages WHERE body = ?", (body,)).fetchone()[0]
    finally:
        conn.close()


def test_messages_written_offline_go_out_once_in_order_after_the_reconnect(page_for, live_server):
    """Alice loses the network; her status says so; what she writes shows as pending and
    waits. Bob writes meanwhile. Back online, alice gets bob's messages once, in order,
    then her own go out, each stored and shown exactly once on both sides."""
    alice, bob = meet(page_for, "alice", "bob")
    send_message(alice, "Entering the tunnel")
    open_chat(bob, "alice")
    wait_until_chat_is_open(bob)
    expect(message_bodies(bob)).to_have_text(["Entering the tunnel"])
    status = alice.locator("#status")
    expect(status).to_contain_text("Connected")

    alice.context.set_offline(True)
    expect(status).to_contain_text("Offline")

    send_message(bob, "Are you there?")
    send_message(bob, "Call me when you are out")
    write(alice, "Still in the tunnel")
    write(alice, "Out in five minutes")
    for text in ("Still in the tunnel", "Out in five minutes"):
        expect(own_message(alice, text)).to_have_class(re.compile(r"\bpending\b"))
        expect(own_message(alice, text).locator(".message-status")).to_have_text(
            "Waiting for the connection…"
        )
    alice.wait_for_timeout(1000)
    expect(message_bodies(bob)).to_have_text(
        ["Entering the tunnel", "Are you there?", "Call me when you are out"]
    )

    alice.context.set_offline(False)
    expect(status).to_contain_text("Connected")
    everything = [
        "Entering the tunnel",
        "Are you there?",
        "Call me when you are out",
        "Still in the tunnel",
        "Out in five minutes",
    ]
    expect(message_bodies(alice)).to_have_text(everything)
    expect(alice.locator("#messages .message-status")).to_have_count(0)
    expect(alice.locator("#messages .message.pending")).to_have_count(0)
    expect(message_bodies(bob)).to_have_text(everything)
    for text in everything:
        assert rows_with_body(live_server.database_path, text) == 1


def test_a_send_without_an_answer_offers_retry_that_stores_it_once(page_for, live_server):
    """The server stores carol's message but its answer is lost: after the timeout the
    message says "Not sent" with Retry; Retry (same client_id) gets the stored message
    back, and dave, who saw it live, still sees it once."""
    dave = page_for("dave")
    carol = page_for("carol")
    lose_answers = {"on": False}
    lost_ids: set[str] = set()

    def relay(page_side: WebSocketRoute) -> None:
        server_side = page_side.connect_to_server()

        def from_page(frame: str | bytes) -> None:
            sent = SEND_FRAME.match(frame) if isinstance(frame, str) else None
            if sent and lose_answers["on"]:
                lost_ids.add(sent.group(1))
            server_side.send(frame)

        def from_server(frame: str | bytes) -> None:
            ack = ACK_FRAME.match(frame) if isinstance(frame, str) else None
            if ack and ack.group(1) in lost_ids:
                return
            page_side.send(frame)

        page_side.on_message(from_page)
        server_side.on_message(from_server)

    carol.route_web_socket(SOCKET_URL, relay)
    register(dave, "dave")
    register(carol, "carol")
    start_direct_chat(carol, "dave")
    open_direct_chat_from(dave, carol, "carol")
    wait_until_chat_is_open(carol)
    wait_until_chat_is_open(dave)

    lose_answers["on"] = True
    write(carol, "Did this arrive?")
    sent = own_message(carol, "Did this arrive?")
    expect(sent.locator(".message-status")).to_have_text("Sending…")
    expect(message_bodies(dave)).to_have_text(["Did this arrive?"])
    expect(sent).to_have_class(re.compile(r"\bfailed\b"), timeout=SEND_TIMEOUT_MS + 5_000)
    expect(sent.locator(".message-status")).to_contain_text("Not sent —")

    lose_answers["on"] = False
    sent.get_by_role("button", name="Retry").click()
    expect(sent.locator(".message-status")).to_have_count(0)
    expect(message_bodies(carol)).to_have_text(["Did this arrive?"])
    expect(message_bodies(dave)).to_have_text(["Did this arrive?"])
    assert rows_with_body(live_server.database_path, "Did this arrive?") == 1
