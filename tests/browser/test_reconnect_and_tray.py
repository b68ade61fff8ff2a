"""What the page shows around the connection and the upload tray, in real browsers:
presence dots turn grey (unknown) while the page is not connected and are right again
after the reconnect; failed uploads are dismissed together; an upload that failed for want
of a connection goes again by itself once connected, stored once; "Jump to latest" counts
the messages waiting below, live."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from playwright.sync_api import Page, Route, expect

from tests.browser.ui import chat_in_list, send_message, wait_until_chat_is_open

UPLOAD_URL = re.compile(r"/upload$")


def note(name: str) -> dict:
    return {"name": name, "mimeType": "text/plain", "buffer": f"{name}\n".encode() * 40}


def tray_rows(page: Page):
    return page.get_by_role("list", name="Files being sent").get_by_role("listitem")


def attachments_named(database: Path, name: str) -> int:
    conn = sqlite3.connect(database)
    try:
        query = "SELECT COUNT(*) FROM attachments WHERE original_name = ?"
        return conn.execute(query, (name,)).fetchone()[0]
    finally:
        conn.close()


def test_presence_is_unknown_while_offline_and_right_after_the_reconnect(pair):
    """Alice sees bob online. Her network goes: his dot turns grey and says it is not
    known. Back online, it is green again; when bob leaves while she is offline, the dot
    is gone after her reconnect."""
    alice, bob = pair("alice", "bob")
    dot = chat_in_list(alice, "bob").locator(".presence-dot")
    expect(dot).to_be_visible()
    expect(dot).not_to_have_class(re.compile(r"\bunknown\b"))
    expect(chat_in_list(alice, "bob")).to_have_accessible_name(re.compile(r"bob\s*, online"))

    alice.context.set_offline(True)
    expect(alice.locator("#status")).to_contain_text("Offline")
    expect(dot).to_have_class(re.compile(r"\bunknown\b"))
    expect(chat_in_list(alice, "bob")).to_have_accessible_name(
        re.compile(r"bob\s*, not known whether online")
    )

    alice.context.set_offline(False)
    expect(alice.locator("#status")).to_contain_text("Connected")
    expect(dot).not_to_have_class(re.compile(r"\bunknown\b"))
    expect(dot).to_be_visible()
    expect(chat_in_list(alice, "bob")).to_have_accessible_name(re.compile(r"bob\s*, online"))

    alice.context.set_offline(True)
    expect(dot).to_have_class(re.compile(r"\bunknown\b"))
    bob.close()
    alice.context.set_offline(False)
    expect(alice.locator("#status")).to_contain_text("Connected")
    expect(dot).to_be_hidden()
    expect(chat_in_list(alice, "bob")).not_to_have_accessible_name(re.compile("online"))


def test_failed_uploads_are_dismissed_together(pair):
    """Three files fail; "Dismiss all" removes their rows at once and the keyboard goes
    back to the composer."""
    erin, _frank = pair("erin", "frank")

    def refuse(route: Route) -> None:
        route.abort("connectionrefused")

    erin.route(UPLOAD_URL, refuse)
    erin.set_input_files("#file-input", files=[note("a.txt"), note("b.txt"), note("c.txt")])
    expect(tray_rows(erin)).to_have_count(3)
    for row in tray_rows(erin).all():
        expect(row).to_contain_text("The upload failed")
    dismiss_all = erin.get_by_role("button", name="Dismiss all 3 failed files")
    dismiss_all.click()
    expect(tray_rows(erin)).to_have_count(0)
    expect(dismiss_all).to_be_hidden()
    expect(erin.get_by_label("Message", exact=True)).to_be_focused()


def test_an_upload_cut_by_the_network_goes_again_by_itself_once(pair, live_server):
    """Gus attaches a file while his network is down: the row says it failed. Once he is
    connected again it goes by itself, without Retry, and is stored and shown once; a
    second reconnect sends nothing more."""
    gus, hal = pair("gus", "hal")
    gus.context.set_offline(True)
    expect(gus.locator("#status")).to_contain_text("Offline")
    gus.get_by_label("Message", exact=True).fill("From the train")
    gus.set_input_files("#file-input", files=[note("train.txt")])
    expect(tray_rows(gus)).to_contain_text("The upload failed")

    gus.context.set_offline(False)
    expect(tray_rows(gus)).to_have_count(0)
    for page in (gus, hal):
        card = page.locator("#messages .message").filter(has=page.locator(".attachment-file"))
        expect(card).to_have_count(1)
        expect(card.locator(".file-name")).to_have_text("train.txt")
        expect(card.locator(".message-body")).to_have_text("From the train")
    expect(gus.get_by_label("Message", exact=True)).to_have_value("")

    gus.context.set_offline(True)
    expect(gus.locator("#status")).to_contain_text("Offline")
    gus.context.set_offline(False)
    expect(gus.locator("#status")).to_contain_text("Connected")
    send_message(gus, "Arrived")
    expect(hal.locator("#messages .message").last).to_contain_text("Arrived")
    expect(hal.locator("#messages .attachment-file")).to_have_count(1)
    assert attachments_named(live_server.database_path, "train.txt") == 1


def test_jump_to_latest_counts_the_messages_waiting_below(pair):
    """Ivy scrolled up in a long chat; each message jon sends while she reads shows on
    "Jump to latest" as a count, in figures and in words; jumping clears it."""
    ivy, jon = pair("ivy", "jon")
    for n in range(12):
        send_message(jon, f"Message {n}: " + " ".join(["words to fill the screen"] * 12))
    expect(ivy.locator("#messages .message")).to_have_count(12)
    ivy.locator("#history").evaluate("el => { el.scrollTop = 0; }")
    jump = ivy.get_by_role("button", name=re.compile("^Jump to latest"))
    expect(jump).to_be_visible()
    expect(jump).to_have_accessible_name("Jump to latest")

    send_message(jon, "One below")
    expect(jump.locator(".jump-count")).to_have_text("1")
    expect(jump).to_have_accessible_name(re.compile(r"Jump to latest\s*, 1 new message$"))
    send_message(jon, "Two below")
    expect(jump.locator(".jump-count")).to_have_text("2")
    expect(jump).to_have_accessible_name(re.compile(r"Jump to latest\s*, 2 new messages$"))

    jump.click()
    expect(jump).to_be_hidden()
    ivy.locator("#history").evaluate("el => { el.scrollTop = 0; }")
    expect(jump).to_be_visible()
    expect(jump.locator(".jump-count")).to_be_hidden()
    wait_until_chat_is_open(ivy)
