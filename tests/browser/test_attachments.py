"""Files in a chat, in real browsers: a picture goes up with a progress bar and reaches the
other person live as a thumbnail that opens full size; refused files never leave the
page; a retried upload stores one message; a cancelled one stores none."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, Route, expect

from tests.browser import ui
from tests.browser.ui import (
    chat_in_list,
    wait_until_chat_is_open,
)

UPLOAD_URL = re.compile(r"/upload$")
CLIENT_ID = re.compile(rb'name="client_id"\r\n\r\n([0-9a-f]{32})\r\n')
# Slow enough that the progress bar is seen moving, fast enough to keep the test short.
UPLOAD_BYTES_PER_SECOND = 2_000_000
TEN_MB = 10 * 1024 * 1024


def random_png(path: Path, size: tuple[int, int]) -> Path:
    """A PNG of random pixels, stored without compression: 3 bytes a pixel."""
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(path, compress_level=0)
    return path


def slow_uploads(page: Page) -> None:
    """Make the page's uploads crawl, as on a phone far from the router."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": UPLOAD_BYTES_PER_SECOND,
        },
    )


def stored_by(database: Path, username: str) -> tuple[int, int]:
    """How many messages and attachments ``username`` has in the database."""
    conn = sqlite3.connect(database)
    try:
        user_id = conn.execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()[0]
        messages = conn.execute("SELECT COUNT(*) FROM messages WHERE sender_id = ?", (user_id,))
        files = conn.execute("SELECT COUNT(*) FROM attachments WHERE uploader_id = ?", (user_id,))
        return messages.fetchone()[0], files.fetchone()[0]
    finally:
        conn.close()


def tray_row(page: Page, name: str):
    """The row of the upload tray for the file called ``name``."""
    return (
        page.get_by_role("list", name="Files being sent")
        .get_by_role("listitem")
        .filter(has=page.get_by_text(name, exact=True))
    )


def wait_until_loaded(page: Page, image) -> None:
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )


def test_a_picture_uploads_with_progress_and_opens_full_size_for_the_other(pair, tmp_path):
    """Alice attaches a 3 MB picture; the tray shows its progress; bob, with the chat
    open, sees the thumbnail arrive (space reserved at its final size), opens it and gets
    the full picture in a viewer that Escape closes."""
    alice, bob = pair("alice", "bob")
    picture = random_png(tmp_path / "photo.png", (1200, 900))
    slow_uploads(alice)

    with alice.expect_file_chooser() as chooser:
        alice.get_by_role("button", name="Attach a file").click()
    chooser.value.set_files(picture)

    row = tray_row(alice, "photo.png")
    expect(row).to_be_visible()
    expect(row.get_by_role("progressbar")).to_be_visible()
    expect(row.get_by_role("button", name="Cancel")).to_be_visible()
    alice.wait_for_function(
        "() => { const bar = document.querySelector('#upload-tray progress');"
        " return bar && bar.value > 0 && bar.value < 1; }"
    )

    thumbnail = bob.locator("#messages").get_by_role("img", name="photo.png")
    expect(thumbnail).to_be_visible(timeout=20_000)
    expect(thumbnail).to_have_attribute("src", re.compile(r"^/uploads/\d+/thumbnail$"))
    # 1200 x 900 scaled into 480 x 480: the box is reserved before the picture loads.
    expect(thumbnail).to_have_attribute("width", "480")
    expect(thumbnail).to_have_attribute("height", "360")
    wait_until_loaded(bob, thumbnail)
    expect(chat_in_list(bob, "alice").locator(".chat-preview")).to_have_text("📎 photo.png")

    expect(alice.get_by_role("list", name="Files being sent")).to_be_hidden()
    expect(alice.locator("#messages").get_by_role("img", name="photo.png")).to_have_count(1)

    bob.locator("#messages").get_by_role("link", name="photo.png").click()
    viewer = bob.get_by_role("dialog", name="photo.png")
    expect(viewer).to_be_visible()
    full = viewer.get_by_role("img", name="photo.png")
    expect(full).to_have_attribute("src", re.compile(r"^/uploads/\d+$"))
    wait_until_loaded(bob, full)
    assert full.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [1200, 900]
    expect(viewer.get_by_role("link", name="Download")).to_have_attribute(
        "href", full.get_attribute("src")
    )
    bob.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    expect(bob.locator("#messages").get_by_role("link", name="photo.png")).to_be_focused()


def test_refused_files_show_why_and_send_nothing(pair, live_server, tmp_path):
    """A picture type we do not take, a file over 10 MB (both stopped in the browser) and
    a PDF that is not one (refused by the server, with its sentence): nothing is sent."""
    alice, bob = pair("carol", "dave")
    requests: list[str] = []
    alice.on("request", lambda request: UPLOAD_URL.search(request.url) and requests.append("x"))

    evil = tmp_path / "evil.svg"
    evil.write_text("<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>")
    huge = tmp_path / "huge.png"
    with huge.open("wb") as sparse:
        sparse.truncate(TEN_MB + 1)
    alice.set_input_files("#file-input", [evil, huge])
    expect(tray_row(alice, "evil.svg")).to_contain_text(
        "evil.svg cannot be sent: only txt, pdf, png, jpg and gif files can."
    )
    expect(tray_row(alice, "huge.png")).to_contain_text("huge.png is larger than 10 MB.")
    for name in ("evil.svg", "huge.png"):
        expect(tray_row(alice, name).get_by_role("progressbar")).to_have_count(0)
        expect(tray_row(alice, name).get_by_role("button", name="Retry")).to_have_count(0)
    assert requests == []

    alice.set_input_files(
        "#file-input",
        files=[{"name": "fake.pdf", "mimeType": "application/pdf", "buffer": b"<html>no</html>"}],
    )
    fake = tray_row(alice, "fake.pdf")
    expect(fake).to_contain_text("This file is not a real PDF document.")
    expect(fake.get_by_role("button", name="Retry")).to_have_count(0)
    assert requests == ["x"]

    fake.get_by_role("button", name="Dismiss").click()
    expect(fake).to_have_count(0)
    expect(alice.locator("#messages .message")).to_have_count(0)
    expect(bob.locator("#messages .message")).to_have_count(0)
    assert stored_by(live_server.database_path, "carol") == (0, 0)


def test_a_retried_upload_keeps_its_client_id_and_stores_one_message(pair, live_server):
    """The first attempt reaches the server but its answer is lost: the row offers Retry;
    the retry carries the same client_id, and everyone sees the file once."""
    alice, bob = pair("erin", "frank")
    client_ids: list[bytes] = []

    def lose_the_answer(route: Route) -> None:
        client_ids.append(CLIENT_ID.search(route.request.post_data_buffer or b"").group(1))
        if len(client_ids) == 1:
            route.fetch()  # the server stores it, then the connection drops
            route.abort("connectionreset")
        else:
            route.continue_()

    alice.route(UPLOAD_URL, lose_the_answer)
    alice.set_input_files(
        "#file-input",
        files=[{"name": "minutes.txt", "mimeType": "text/plain", "buffer": b"agenda\n" * 300}],
    )
    row = tray_row(alice, "minutes.txt")
    expect(row).to_contain_text("The upload failed. Check your connection and try again.")
    row.get_by_role("button", name="Retry").click()
    expect(row).to_have_count(0)

    assert len(client_ids) == 2
    assert client_ids[0] == client_ids[1]
    for page in (alice, bob):
        card = page.locator("#messages .attachment-file")
        expect(card).to_have_count(1)
        expect(card.locator(".file-name")).to_have_text("minutes.txt")
        expect(card.locator(".file-meta")).to_have_text("TXT · 2 KB")
        expect(card.get_by_role("link", name="Download")).to_have_attribute(
            "href", re.compile(r"^/uploads/\d+$")
        )
    assert stored_by(live_server.database_path, "erin") == (1, 1)


def test_a_cancelled_upload_sends_nothing(pair, live_server, tmp_path):
    """Cancel stops the upload: the row goes and no message is made (the next message
    alice writes is the only one bob gets, and the only one stored)."""
    alice, bob = pair("grace", "heidi")
    picture = random_png(tmp_path / "big.png", (1200, 900))
    slow_uploads(alice)
    alice.set_input_files("#file-input", picture)
    row = tray_row(alice, "big.png")
    expect(row.get_by_role("progressbar")).to_be_visible()
    row.get_by_role("button", name="Cancel").click()
    expect(row).to_have_count(0)
    expect(alice.get_by_role("status").filter(has_text="cancelled")).to_have_text(
        "Sending big.png cancelled."
    )
    # A later message: once bob has it, a cancelled upload that had gone through anyway
    # would be there before it.
    ui.send_message(alice, "Never mind the picture")
    expect(bob.locator("#messages .message")).to_have_count(1)
    expect(ui.message_bodies(bob)).to_have_text(["Never mind the picture"])
    assert stored_by(live_server.database_path, "grace") == (1, 0)


def test_files_fit_a_phone_screen(pair, tmp_path):
    """On a 390 px phone, a wide picture, a long file name and a tray row fit the width
    (no sideways scrolling) and the controls stay 44 px tall."""
    alice, bob = pair("ivan", "judy")
    alice.set_viewport_size({"width": 390, "height": 844})
    alice.reload()
    wait_until_chat_is_open(alice)
    wide = tmp_path / "panorama.png"
    Image.new("RGB", (2000, 500), (30, 120, 200)).save(wide)
    long_name = tmp_path / ("minutes-of-the-very-long-meeting-about-the-next-meeting-" * 2 + ".txt")
    long_name.write_text("agenda\n")
    alice.set_input_files("#file-input", [wide, long_name])
    expect(alice.locator("#messages").get_by_role("img", name="panorama.png")).to_be_visible()
    expect(alice.locator("#messages .attachment-file")).to_be_visible()
    refused = tmp_path / ("a-picture-we-do-not-take-" * 4 + ".svg")
    refused.write_text("<svg/>")
    alice.set_input_files("#file-input", refused)
    dismiss = alice.get_by_role("button", name="Dismiss")
    expect(dismiss).to_be_visible()

    widths = alice.evaluate(
        """() => ({
            page: document.documentElement.scrollWidth,
            history: document.querySelector('#history').scrollWidth
                - document.querySelector('#history').clientWidth,
            composer: document.querySelector('#composer').scrollWidth
                - document.querySelector('#composer').clientWidth,
        })"""
    )
    assert widths == {"page": 390, "history": 0, "composer": 0}
    picture = alice.locator("#messages").get_by_role("img", name="panorama.png").bounding_box()
    assert picture["x"] >= 0 and picture["x"] + picture["width"] <= 390
    for control in (alice.get_by_role("button", name="Attach a file"), dismiss):
        assert control.bounding_box()["height"] >= 44


def test_a_pasted_picture_is_sent_under_a_name_of_its_own(pair):
    """A picture pasted into the text box (a screenshot, say) is sent as
    pasted-<date>-<time>.png, with what was typed as its caption."""
    alice, bob = pair("kim", "lee")
    composer = alice.get_by_label("Message", exact=True)
    composer.fill("Look at this")
    composer.evaluate(
        """async (box) => {
            const canvas = document.createElement('canvas');
            canvas.width = 64;
            canvas.height = 48;
            canvas.getContext('2d').fillRect(0, 0, 64, 48);
            const blob = await new Promise((done) => canvas.toBlob(done, 'image/png'));
            const data = new DataTransfer();
            data.items.add(new File([blob], 'image.png', {type: 'image/png'}));
            box.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true,
                                                           cancelable: true}));
        }"""
    )
    name = re.compile(r"^pasted-\d{8}-\d{6}\.png$")
    thumbnail = bob.locator("#messages").get_by_role("img", name=name)
    expect(thumbnail).to_be_visible()
    wait_until_loaded(bob, thumbnail)
    expect(bob.locator("#messages .message-body")).to_have_text(["Look at this"])
    expect(composer).to_have_value("")
