"""The outbox sends again by itself what met a passing failure, and only what retrying
cannot fix shows "Not sent" with Retry, in real browsers against ``python app.py``.

The passing failure is real: another process holds SQLite's write lock (``BEGIN
IMMEDIATE``, as a backup or a ``sqlite3`` shell would) for longer than the server waits for
it, so the server answers ``retryable: true``; the lock is then released."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from typing import Any

from playwright.sync_api import Page, Route, WebSocket, expect

from tests.browser.test_attachments import CLIENT_ID, UPLOAD_URL, stored_by, tray_row
from tests.browser.test_offline import own_message, rows_with_body, write
from tests.browser.ui import (
    message_bodies,
    open_direct_chat_from,
    register,
    start_direct_chat,
    wait_until_chat_is_open,
)

# Longer than the server's busy timeout (5 s): the first send fails, a later one succeeds.
LOCK_HELD_S = 8.0
# The first attempt waits 5 s for the lock, a retry up to 5 s more: the outcome comes late.
OUTCOME_TIMEOUT_MS = 30_000
EVENT_FRAME = re.compile(r"^42\d*(\[.*)$", re.DOTALL)
ACK_FRAME = re.compile(r"^43\d*(\[.*)$", re.DOTALL)


class Frames:
    """The Socket.IO frames one page sends and receives, decoded."""

    def __init__(self, page: Page) -> None:
        self.sent: list[list[Any]] = []
        self.acks: list[Any] = []
        page.on("websocket", self._watch)

    def _watch(self, socket: WebSocket) -> None:
        socket.on("framesent", lambda frame: self._decode(frame, EVENT_FRAME, self.sent))
        socket.on("framereceived", lambda frame: self._decode(frame, ACK_FRAME, self.acks))

    @staticmethod
    def _decode(frame: str | bytes, pattern: re.Pattern[str], into: list[Any]) -> None:
        found = pattern.match(frame) if isinstance(frame, str) else None
        if found:
            into.append(json.loads(found.group(1)))

    def sends_of(self, body: str) -> list[dict[str, Any]]:
        return [
            args[1] for args in self.sent if args[0] == "message_sent" and args[1]["body"] == body
        ]


def hold_write_lock(database: str, seconds: float) -> threading.Event:
    """Hold SQLite's write lock from another connection for ``seconds``; the event is set
    once the lock is held."""
    held = threading.Event()

    def run() -> None:
        conn = sqlite3.connect(database, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            held.set()
            threading.Event().wait(seconds)
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    threading.Thread(target=run, daemon=True).start()
    assert held.wait(10), "the write lock was never taken"
    return held


def test_a_message_meeting_a_locked_database_goes_out_by_itself_once(page_for, live_server):
    """While another process holds the database's write lock, erin's message is refused as
    retryable; her page sends it again with the same client_id, and once the lock is gone
    it is stored and shown once on both sides, with no "Not sent" anywhere."""
    frank = page_for("frank")
    erin = page_for("erin")
    frames = Frames(erin)
    register(frank, "frank")
    register(erin, "erin")
    start_direct_chat(erin, "frank")
    open_direct_chat_from(frank, erin, "erin")
    wait_until_chat_is_open(erin)
    wait_until_chat_is_open(frank)

    hold_write_lock(str(live_server.database_path), LOCK_HELD_S)
    write(erin, "Sent during the backup")
    sent = own_message(erin, "Sent during the backup")
    expect(sent.locator(".message-status")).to_have_count(0, timeout=OUTCOME_TIMEOUT_MS)
    expect(sent).not_to_have_class(re.compile(r"\b(pending|failed)\b"))

    expect(message_bodies(erin)).to_have_text(["Sent during the backup"])
    expect(message_bodies(frank)).to_have_text(["Sent during the backup"])
    expect(erin.get_by_role("button", name="Retry")).to_have_count(0)
    assert rows_with_body(live_server.database_path, "Sent during the backup") == 1
    sends = frames.sends_of("Sent during the backup")
    assert len(sends) >= 2, "the page sent it again by itself"
    assert len({send["client_id"] for send in sends}) == 1, "always under the same client_id"
    retryable = [ack[0] for ack in frames.acks if ack and ack[0].get("retryable") is True]
    assert retryable and retryable[0]["code"] == "unavailable"


def test_a_message_refused_for_good_shows_not_sent_with_retry(page_for, live_server):
    """gina was removed from the chat (by an administrator, in the database): retrying
    cannot fix that, so her message says why it was not sent and offers Retry."""
    hank = page_for("hank")
    gina = page_for("gina")
    frames = Frames(gina)
    register(hank, "hank")
    register(gina, "gina")
    chat_id = start_direct_chat(gina, "hank")
    wait_until_chat_is_open(gina)
    conn = sqlite3.connect(live_server.database_path)
    with conn:
        conn.execute(
            "DELETE FROM chat_members WHERE chat_id = ? AND user_id = "
            "(SELECT id FROM users WHERE username = 'gina')",
            (chat_id,),
        )
    conn.close()

    write(gina, "Can you still read me?")
    sent = own_message(gina, "Can you still read me?")
    expect(sent).to_have_class(re.compile(r"\bfailed\b"))
    expect(sent.locator(".message-status")).to_contain_text(
        "Not sent: This chat does not exist or you are not in it."
    )
    expect(sent.get_by_role("button", name="Retry")).to_be_visible()
    assert len(frames.sends_of("Can you still read me?")) == 1, "not sent again by itself"
    assert rows_with_body(live_server.database_path, "Can you still read me?") == 0


def test_an_upload_meeting_a_locked_database_goes_out_by_itself_once(page_for, live_server):
    """The same with a file: the server answers 503, the page sends the file again with the
    same client_id, and once the lock is gone it is stored and shown once."""
    kim = page_for("kim")
    lee = page_for("lee")
    client_ids: list[bytes] = []

    def note_client_id(route: Route) -> None:
        client_ids.append(CLIENT_ID.search(route.request.post_data_buffer or b"").group(1))
        route.continue_()

    lee.route(UPLOAD_URL, note_client_id)
    register(kim, "kim")
    register(lee, "lee")
    start_direct_chat(lee, "kim")
    open_direct_chat_from(kim, lee, "lee")
    wait_until_chat_is_open(lee)
    wait_until_chat_is_open(kim)

    hold_write_lock(str(live_server.database_path), LOCK_HELD_S)
    lee.set_input_files(
        "#file-input",
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"backup day\n" * 50}],
    )
    expect(tray_row(lee, "notes.txt")).to_have_count(0, timeout=OUTCOME_TIMEOUT_MS)
    for page in (lee, kim):
        card = page.locator("#messages .attachment-file")
        expect(card).to_have_count(1)
        expect(card.locator(".file-name")).to_have_text("notes.txt")
    assert stored_by(live_server.database_path, "lee") == (1, 1)
    assert len(client_ids) >= 2, "the page sent the file again by itself"
    assert len(set(client_ids)) == 1, "always under the same client_id"
