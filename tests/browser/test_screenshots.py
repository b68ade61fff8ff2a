"""The pictures of the README: a hiking club's chat as alice sees it on a desktop and on a
phone, with several people, a channel, a picture, a file, a link, formatting, a reply,
reactions, a mention of alice and two days of history.

They are written under tests/artifacts/screenshots; with ``UPDATE_SCREENSHOTS=1`` they
replace the ones in docs/screenshots instead:

    UPDATE_SCREENSHOTS=1 .venv/bin/python -m pytest tests/browser/test_screenshots.py
"""

from __future__ import annotations

import io
import math
import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Page, expect

from bench import seed
from tests.browser.conftest import PHONE, ROOT
from tests.browser.ui import PASSWORD, chat_in_list, message_bodies
from tests.live_server import LiveServer, RealClient

UPDATE = os.environ.get("UPDATE_SCREENSHOTS", "").strip() == "1"
FOLDER = ROOT / "docs" / "screenshots" if UPDATE else ROOT / "tests" / "artifacts" / "screenshots"
CHANNEL = "Hiking club"
DESKTOP = {"width": 1280, "height": 900}
LINK = "https://www.openstreetmap.org/#map=14/46.5580/7.9350"


def mountain_photo() -> bytes:
    """A JPEG of a mountain lake at dawn, drawn here so that nothing comes from elsewhere."""
    width, height = 1200, 675
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / height
        draw.line(
            [(0, y), (width, y)],
            fill=(int(255 - 120 * t), int(180 + 20 * t), int(140 + 100 * t)),
        )
    draw.ellipse((820, 130, 940, 250), fill=(255, 236, 190))
    ranges = [
        ((96, 112, 150), 0.38, [(0, 0.62), (0.18, 0.3), (0.34, 0.5), (0.55, 0.22), (0.8, 0.45)]),
        ((58, 76, 110), 0.5, [(0, 0.66), (0.25, 0.42), (0.45, 0.58), (0.7, 0.36), (1, 0.6)]),
    ]
    for colour, snow, peaks in ranges:
        points = [(x * width, y * height) for x, y in peaks]
        draw.polygon([(0, height), *points, (width, points[-1][1]), (width, height)], fill=colour)
        for (x1, y1), (x2, y2) in zip(points, points[1:], strict=False):
            if y2 < y1:
                continue
            cap = (y2 - y1) * (1 - snow) * 0.35
            run = (x2 - x1) * (1 - snow) * 0.35
            draw.polygon([(x1, y1), (x1 + run, y1 + cap), (x1 - run * 0.6, y1 + cap)], fill="white")
    lake_top = int(height * 0.72)
    draw.rectangle((0, lake_top, width, height), fill=(70, 110, 150))
    for i in range(14):
        y = lake_top + 12 + i * 6
        x = 880 + int(40 * math.sin(i))
        draw.line([(x - 50 + i * 2, y), (x + 50 - i * 2, y)], fill=(230, 215, 180), width=2)
    draw.polygon(
        [(0, height), (0, int(height * 0.8)), (260, int(height * 0.86)), (420, height)],
        fill=(40, 70, 50),
    )
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def packing_list_pdf() -> bytes:
    """A one-page PDF: a packing list."""
    lines = ["Packing list", "", "- 2 litres of water", "- Rain jacket", "- Map and compass"]
    text = " T* ".join(f"({line}) Tj" for line in lines)
    stream = f"BT /F1 14 Tf 72 720 Td 18 TL {text} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    # A real packing list would be a few dozen KB; the padding is a PDF comment.
    out = bytearray(b"%PDF-1.4\n" + b"% packing list\n" * 3000)
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def csrf_token(client: RealClient) -> str:
    page = client.http.get(f"{client.server.url}/find").text
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


def open_direct_chat(client: RealClient, other: RealClient) -> int:
    """POST /add as the page's form does; return the chat's id."""
    response = client.http.post(
        f"{client.server.url}/add",
        data={"user_id": other.id, "csrf_token": csrf_token(client)},
        allow_redirects=False,
    )
    return int(re.search(r"chat=(\d+)", response.headers["Location"]).group(1))


def upload(
    client: RealClient, chat_id: int, name: str, data: bytes, mime: str, caption: str = ""
) -> int:
    """Send a file through POST /upload; return its message's id."""
    response = client.http.post(
        f"{client.server.url}/upload",
        data={"chat_id": str(chat_id), "client_id": os.urandom(16).hex(), "caption": caption},
        files={"file": (name, data, mime)},
        headers={"X-CSRFToken": csrf_token(client), "Accept": "application/json"},
    )
    assert response.status_code == 201, response.text
    return response.json()["message"]["id"]


def set_time(server: LiveServer, message_id: int, moment: datetime) -> None:
    with seed.connect(server) as conn:
        conn.execute(
            "UPDATE messages SET created_at = ? WHERE id = ?", (seed.ms(moment), message_id)
        )


@pytest.fixture(scope="module")
def hiking_club(live_server: LiveServer) -> dict[str, int]:
    """Alice, bob, carol and dave, their hiking club's channel with two days of talk,
    and direct chats; bob is online. Returns the chats' ids by name."""
    people = {
        name: RealClient(live_server, name, PASSWORD).register()
        for name in ("alice", "bob", "carol", "dave")
    }
    alice, bob, carol, dave = people.values()
    for person in people.values():
        person.connect()
    channel = alice.call("create_channel", {"name": CHANNEL})["chat"]["id"]
    for person in (bob, carol, dave):
        person.call("join_channel", {"chat_id": channel})
    chats = {CHANNEL: channel, "General Talk": seed.channel_id(live_server, "General Talk")}
    for other in (carol, dave, bob):
        chats[other.name] = open_direct_chat(alice, other)

    now = datetime.now().astimezone()
    today = now - timedelta(minutes=30)
    yesterday = now.replace(hour=18, minute=4) - timedelta(days=1)
    seed.add_messages(
        live_server,
        chats["General Talk"],
        [("dave", "Welcome to the club chat, everyone", yesterday - timedelta(hours=3))],
    )
    seed.add_messages(
        live_server,
        channel,
        [
            ("carol", "Who is in for Saturday? The forecast says sunny.", yesterday),
            ("dave", "Count me in!", yesterday + timedelta(minutes=2)),
            ("bob", "Me too. Which trail?", yesterday + timedelta(minutes=3)),
            ("carol", "The **ridge loop**, about 14 km.", yesterday + timedelta(minutes=5)),
            ("carol", "We can stop at the lake for lunch.", yesterday + timedelta(minutes=5)),
            ("carol", f"Route and meeting point: {LINK}", today),
            ("bob", "Packing list, in case anyone needs one", today + timedelta(minutes=9)),
        ],
    )
    packing = upload(bob, channel, "packing-list.pdf", packing_list_pdf(), "application/pdf")
    set_time(live_server, packing, today + timedelta(minutes=9))
    reply = alice.call(
        "message_sent",
        {
            "chat_id": channel,
            "body": "Great, I will bring the snacks. See you at *8* at the station!",
            "client_id": os.urandom(16).hex(),
            "reply_to_id": packing,
        },
    )["message"]["id"]
    set_time(live_server, reply, today + timedelta(minutes=21))
    caption = "The view from the top last time. Worth the climb, @alice!"
    photo = upload(dave, channel, "viewpoint.jpg", mountain_photo(), "image/jpeg", caption)
    set_time(live_server, photo, today + timedelta(minutes=24))
    for person, emoji in (
        (bob, "\N{HEAVY BLACK HEART}"),
        (carol, "\N{HEAVY BLACK HEART}"),
        (carol, "\N{PARTY POPPER}"),
    ):
        assert person.call("reaction_toggled", {"message_id": photo, "emoji": emoji})["ok"]
    seed.add_messages(
        live_server,
        chats["carol"],
        [
            ("carol", "Did you book the train tickets?", yesterday + timedelta(minutes=40)),
            ("alice", "Yes, a group ticket for four", yesterday + timedelta(minutes=42)),
        ],
    )
    seed.add_messages(
        live_server,
        chats["dave"],
        [("dave", "Can I borrow your poles on Saturday?", today - timedelta(hours=2))],
    )
    read = seed.add_messages(
        live_server, chats["bob"], [("alice", "Are you taking the early train?", today)]
    )
    seed.add_messages(
        live_server,
        chats["bob"],
        [
            ("bob", "Yes, the 7:40", today + timedelta(minutes=44)),
            ("bob", "Could you bring the spare map?", today + timedelta(minutes=45)),
        ],
    )
    with seed.connect(live_server) as conn:
        conn.execute(
            "UPDATE chat_members SET last_read_message_id ="
            " (SELECT COALESCE(last_message_id, 0) FROM chats WHERE id = chat_id)"
            " WHERE user_id = (SELECT id FROM users WHERE username = 'alice')"
        )
    seed.set_read_pointer(live_server, chats["bob"], "alice", read[0])
    for person in (alice, carol, dave):
        person.disconnect()
    yield chats
    bob.disconnect()


def log_in(page: Page, name: str, chat_id: int | None = None) -> None:
    page.goto("/login" + (f"?next={quote(f'/chats?chat={chat_id}')}" if chat_id else ""))
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()


def wait_for_the_picture(page: Page) -> None:
    picture = page.get_by_role("img", name="viewpoint.jpg")
    expect(picture).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=picture.element_handle()
    )


def shoot(page: Page, name: str) -> Path:
    FOLDER.mkdir(parents=True, exist_ok=True)
    path = FOLDER / f"{name}.png"
    # No blinking caret or half-faded state in the picture.
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.screenshot(path=str(path), animations="disabled", caret="hide")
    return path


def test_desktop_and_phone_screenshots(page_for, hiking_club):
    """Alice's chats page on a desktop (her club's channel open), and on a phone: first
    the list, then the channel. Each shows what it should before it is taken."""
    desktop = page_for("alice", permissions=["notifications"], viewport=DESKTOP)
    log_in(desktop, "alice", hiking_club[CHANNEL])
    expect(desktop.locator("#chat-title")).to_have_text(CHANNEL)
    wait_for_the_picture(desktop)
    expect(desktop.locator(".day-separator")).to_have_text(["Yesterday", "Today"])
    expect(desktop.get_by_role("link", name=LINK)).to_have_attribute("rel", "noopener noreferrer")
    expect(chat_in_list(desktop, "bob").locator(".badge")).to_have_text("2")
    expect(message_bodies(desktop).last).to_have_text(re.compile("^The view from the top"))
    expect(desktop.locator(".message-body strong")).to_have_text("ridge loop")
    expect(desktop.locator(".reply-quote")).to_contain_text("bob")
    expect(desktop.locator(".mentions-me")).to_have_count(1)
    expect(desktop.locator(".reaction")).to_have_count(2)
    expect(desktop.locator("#status")).to_contain_text("2 online")
    shoot(desktop, "chats-desktop")

    # Twice the pixels of the layout (not three times): sharp, and a smaller file.
    phone = page_for(
        "alice-phone", permissions=["notifications"], **{**PHONE, "device_scale_factor": 2}
    )
    log_in(phone, "alice")
    phone.goto("/chats")
    expect(chat_in_list(phone, CHANNEL)).to_be_visible()
    expect(phone.get_by_role("button", name="Back")).to_be_hidden()
    shoot(phone, "phone-list")

    chat_in_list(phone, CHANNEL).tap()
    expect(phone.locator("#chat-title")).to_have_text(CHANNEL)
    wait_for_the_picture(phone)
    expect(phone.get_by_role("button", name="Back")).to_be_visible()
    expect(message_bodies(phone).last).to_be_in_viewport()
    shoot(phone, "phone-conversation")
