"""What is written stays with its chat, in real browsers: a draft per chat kept across chat
switches and reloads, never sent into another chat by Enter, gone once sent or after a
logout; the composer's text goes with a file as its caption; the keyboard lands in the
composer after login and after opening a chat on a desktop, never on a phone."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import PHONE
from tests.browser.test_installable_app import log_in
from tests.browser.ui import (
    chat_in_list,
    log_out,
    message_bodies,
    open_chat,
    register,
    send_message,
    start_direct_chat,
    wait_until_chat_is_open,
)

UPLOAD_URL = re.compile(r"/upload$")
MINUTES = {"name": "minutes.txt", "mimeType": "text/plain", "buffer": b"agenda\n" * 50}


def composer(page: Page):
    return page.get_by_label("Message", exact=True)


def bodies_in(database: Path, chat_name: str) -> list[str]:
    """The bodies stored in the channel ``chat_name`` or the direct chat with that partner."""
    conn = sqlite3.connect(database)
    try:
        rows = conn.execute(
            "SELECT m.body FROM messages m JOIN chats c ON c.id = m.chat_id"
            " WHERE c.name = ? OR c.direct_key IN ("
            "  SELECT c2.direct_key FROM chats c2 JOIN chat_members cm ON cm.chat_id = c2.id"
            "  JOIN users u ON u.id = cm.user_id WHERE c2.kind = 'direct' AND u.username = ?)"
            " ORDER BY m.id",
            (chat_name, chat_name),
        )
        return [row[0] for row in rows]
    finally:
        conn.close()


def test_a_draft_stays_with_its_chat_across_switches_and_reloads(page_for, live_server):
    """Alice starts a message to bob, then opens General Talk: the composer is empty there,
    and Enter sends nothing. Back with bob, her words are back; after a reload too. Enter
    sends them to bob, and to nobody else; the draft is gone then."""
    bob = page_for("bob")
    alice = page_for("alice")
    register(bob, "bob")
    register(alice, "alice")
    start_direct_chat(alice, "bob")
    wait_until_chat_is_open(alice)
    expect(composer(alice)).to_be_focused()

    composer(alice).fill("Half a thought for bob")
    open_chat(alice, "General Talk")
    expect(composer(alice)).to_have_value("")
    composer(alice).press("Enter")
    expect(message_bodies(alice)).to_have_count(0)
    composer(alice).fill("Hello everyone")

    open_chat(alice, "bob")
    expect(composer(alice)).to_have_value("Half a thought for bob")
    alice.reload()
    wait_until_chat_is_open(alice)
    expect(alice.locator("#chat-title")).to_have_text("bob")
    expect(composer(alice)).to_have_value("Half a thought for bob")
    expect(composer(alice)).to_be_focused()
    open_chat(alice, "General Talk")
    expect(composer(alice)).to_have_value("Hello everyone")

    open_chat(alice, "bob")
    composer(alice).press("Enter")
    expect(message_bodies(alice)).to_have_text(["Half a thought for bob"])
    expect(composer(alice)).to_have_value("")
    open_chat(bob, "alice")
    expect(message_bodies(bob)).to_have_text(["Half a thought for bob"])
    assert bodies_in(live_server.database_path, "General Talk") == []

    alice.reload()
    wait_until_chat_is_open(alice)
    expect(alice.locator("#chat-title")).to_have_text("bob")
    expect(composer(alice)).to_have_value("")


def test_logging_out_forgets_the_drafts(page_for):
    """A draft is the writer's alone: after a logout nothing of it is left in the browser,
    for whoever logs in next. Logged in again, the keyboard is in the composer."""
    carol = page_for("carol")
    register(carol, "carol")
    wait_until_chat_is_open(carol)
    composer(carol).fill("Not for anyone else's eyes")
    assert "Not for anyone else's eyes" in carol.evaluate(
        "Object.keys(localStorage).map(k => localStorage.getItem(k)).join('|')"
    )
    log_out(carol)
    stored = carol.evaluate("Object.keys(localStorage).filter(k => k.startsWith('chat.draft.'))")
    assert stored == []
    log_in(carol, "carol")
    wait_until_chat_is_open(carol)
    expect(composer(carol)).to_have_value("")
    expect(composer(carol)).to_be_focused()


def test_the_composer_text_goes_with_a_file_as_its_caption(pair, live_server):
    """Text in the composer when a file is attached is the file's caption: it leaves the
    composer once the server has the file, and both people see it under the file. When
    the upload fails, the text stays in the composer and the failed row shows it."""
    erin, frank = pair("erin", "frank")
    composer(erin).fill("The minutes of Monday")
    erin.set_input_files("#file-input", files=[MINUTES])
    expect(composer(erin)).to_have_value("")
    for page in (erin, frank):
        card = page.locator("#messages .message").filter(has=page.locator(".attachment-file"))
        expect(card).to_have_count(1)
        expect(card.locator(".file-name")).to_have_text("minutes.txt")
        expect(card.locator(".message-body")).to_have_text("The minutes of Monday")

    def refuse(route: Route) -> None:
        route.abort("connectionrefused")

    erin.route(UPLOAD_URL, refuse)
    composer(erin).fill("The minutes of Tuesday")
    erin.set_input_files("#file-input", files=[{**MINUTES, "name": "tuesday.txt"}])
    row = erin.get_by_role("list", name="Files being sent").get_by_role("listitem")
    expect(row).to_contain_text("The upload failed")
    expect(row).to_contain_text("The minutes of Tuesday")
    expect(composer(erin)).to_have_value("The minutes of Tuesday")

    erin.unroute(UPLOAD_URL)
    row.get_by_role("button", name="Retry").click()
    expect(row).to_have_count(0)
    expect(composer(erin)).to_have_value("")
    expect(frank.locator("#messages .message-body")).to_have_text(
        ["The minutes of Monday", "The minutes of Tuesday"]
    )
    conn = sqlite3.connect(live_server.database_path)
    try:
        stored = conn.execute(
            "SELECT m.body, a.original_name FROM messages m JOIN attachments a"
            " ON a.id = m.attachment_id ORDER BY m.id"
        ).fetchall()
    finally:
        conn.close()
    assert stored[-2:] == [
        ("The minutes of Monday", "minutes.txt"),
        ("The minutes of Tuesday", "tuesday.txt"),
    ]


def test_opening_a_chat_on_a_phone_leaves_the_keyboard_down(page_for):
    """On a phone, tapping a chat shows it with the focus on its title, not in the text
    box (which would pop the keyboard over the history); a draft is still there."""
    gus = page_for("gus", **PHONE)
    register(gus, "gus")
    chat_in_list(gus, "General Talk").tap()
    wait_until_chat_is_open(gus)
    expect(gus.locator("#chat-title")).to_be_focused()
    composer(gus).fill("Typed on the bus")
    gus.get_by_role("button", name="Back").tap()
    chat_in_list(gus, "General Talk").tap()
    wait_until_chat_is_open(gus)
    expect(composer(gus)).not_to_be_focused()
    expect(composer(gus)).to_have_value("Typed on the bus")
    send_message(gus, "Typed on the bus, sent")
