"""Pictures: refused by their size in pixels before a pixel is decoded, thumbnails made
without holding full-size copies, and no file left behind by a failed or cut-short upload."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from PIL import Image, ImageFile

import attachments
import db_commands
from bench.picture_files import RGB, huge_png
from bench.servers import limit_overrides
from tests.conftest import query, received, register
from tests.live_server import RealClient, csrf_token, start_server
from tests.test_attachments import attachment_rows, stored_files, upload

ROOT = Path(__file__).resolve().parents[1]
HOUR = 3600


@pytest.fixture
def decoded(monkeypatch) -> list[str]:
    """The pictures whose pixels Pillow decoded during the test (by format)."""
    seen: list[str] = []
    original = ImageFile.ImageFile.load

    def load(self):
        seen.append(self.format)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return seen


def test_a_picture_over_40_megapixels_is_refused_before_a_pixel_is_decoded(
    app, alice, bob, chat, decoded
):
    data = huge_png(7000, 6000)  # 42 megapixels in a file of a few dozen KB
    assert len(data) < 100_000
    response = upload(alice, chat, "big.png", data)
    assert response.status_code == 413
    assert response.get_json() == {
        "ok": False,
        "error": "This picture is 7000×6000 pixels (42.0 megapixels); "
        "pictures of at most 40 megapixels can be sent.",
    }
    assert decoded == []
    assert stored_files(app) == []
    assert attachment_rows(app) == 0
    assert received(bob.tab) == []


def test_a_picture_past_pillows_own_guard_gets_the_same_clear_refusal(app, alice, chat, decoded):
    response = upload(alice, chat, "bomb.png", huge_png(20_000, 20_000, rows=8))
    assert response.status_code == 413
    assert response.get_json()["error"] == (
        "This picture has far too many pixels; pictures of at most 40 megapixels can be sent."
    )
    assert decoded == []
    assert stored_files(app) == []


def test_a_picture_just_under_the_limit_is_accepted_with_a_correct_thumbnail(app, alice, bob, chat):
    response = upload(alice, chat, "under.png", huge_png(6320, 6320))  # 39.9 megapixels
    assert response.status_code == 201, response.get_json()
    attachment = response.get_json()["message"]["attachment"]
    assert (attachment["width"], attachment["height"]) == (6320, 6320)
    thumbnail = bob.http.get(attachment["thumbnail_url"])
    assert thumbnail.status_code == 200
    assert thumbnail.headers["Content-Type"] == "image/png"
    small = Image.open(io.BytesIO(thumbnail.data))
    assert (small.format, small.size) == ("PNG", (480, 480))
    assert small.getpixel((240, 240)) == 0  # black, as the picture
    assert len(stored_files(app)) == 2


def test_the_limit_is_the_max_picture_megapixels_setting(make_app):
    app = make_app(MAX_PICTURE_MEGAPIXELS=1)
    http = app.test_client()
    register(http, "dave")

    def send(client_id: str, size: tuple[int, int]):
        data = huge_png(*size)
        return http.post(
            "/upload",
            data={"chat_id": "1", "client_id": client_id, "file": (io.BytesIO(data), "p.png")},
            content_type="multipart/form-data",
            headers={"Accept": "application/json"},
        )

    assert send("at", (1000, 1000)).status_code == 201
    over = send("over", (1001, 1000))
    assert over.status_code == 413
    assert "at most 1 megapixels" in over.get_json()["error"]


def jpeg(size: tuple[int, int], orientation: int | None = None) -> bytes:
    """A JPEG whose left half is red and right half blue, with an EXIF orientation."""
    picture = Image.new("RGB", size, (220, 0, 0))
    picture.paste((0, 0, 220), (size[0] // 2, 0, size[0], size[1]))
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


def test_a_turned_photo_gets_an_upright_thumbnail_and_its_shown_size(alice, bob, chat):
    # Orientation 6: the camera was turned; shown turned a quarter clockwise, the left
    # half (red) comes on top.
    response = upload(alice, chat, "turned.jpg", jpeg((1200, 800), orientation=6))
    attachment = response.get_json()["message"]["attachment"]
    assert (attachment["width"], attachment["height"]) == (800, 1200)
    small = Image.open(io.BytesIO(bob.http.get(attachment["thumbnail_url"]).data))
    assert (small.format, small.size) == ("JPEG", (320, 480))
    top, bottom = small.getpixel((160, 60)), small.getpixel((160, 420))
    assert top[0] > 180 and top[2] < 60, top  # red
    assert bottom[2] > 180 and bottom[0] < 60, bottom  # blue


def test_a_large_photo_gets_a_thumbnail_of_the_right_shape(alice, bob, chat):
    response = upload(alice, chat, "wide.jpg", jpeg((6000, 2000)))
    attachment = response.get_json()["message"]["attachment"]
    assert (attachment["width"], attachment["height"]) == (6000, 2000)
    small = Image.open(io.BytesIO(bob.http.get(attachment["thumbnail_url"]).data))
    assert (small.format, small.size) == ("JPEG", (480, 160))
    assert small.getpixel((60, 80))[0] > 180 and small.getpixel((420, 80))[2] > 180


PEAK_MEMORY = """
import io, json, resource, sys, tempfile
from pathlib import Path
import attachments
data = Path(sys.argv[1]).read_bytes()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
folder = Path(tempfile.mkdtemp(dir=sys.argv[2]))
kept = attachments.store_upload(io.BytesIO(data), sys.argv[1], folder, 10 << 20, 40_000_000)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"grown_bytes": (after - before) * 1024, "width": kept.width}))
"""


def peak_memory_of_storing(picture: Path, tmp_path: Path) -> int:
    """How much a fresh process grew (peak) while storing ``picture``."""
    result = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY, str(picture), str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)["grown_bytes"]


def test_a_big_picture_is_decoded_once_never_copied_at_full_size(tmp_path):
    picture = tmp_path / "big.png"
    picture.write_bytes(huge_png(6324, 6324, RGB))
    full_size = 6324 * 6324 * 4  # Pillow keeps an RGB pixel in 4 bytes
    grown = peak_memory_of_storing(picture, tmp_path)
    # One decoded picture and small change; the full copy exif_transpose made was another.
    assert grown < 1.5 * full_size, f"{grown / 1e6:.0f} MB for a {full_size / 1e6:.0f} MB picture"


def test_a_big_photo_is_decoded_at_a_fraction_of_its_size(tmp_path):
    picture = tmp_path / "big.jpg"
    Image.new("L", (7000, 5000), 128).save(picture, "JPEG")
    full_size = 7000 * 5000
    grown = peak_memory_of_storing(picture, tmp_path)
    assert grown < 0.5 * full_size, f"{grown / 1e6:.0f} MB for a {full_size / 1e6:.0f} MB photo"


def test_an_upload_whose_database_write_fails_leaves_no_files(app, alice, chat, monkeypatch):
    def failing_insert(*args, **kwargs):
        raise OSError("disk I/O error")

    monkeypatch.setattr(db_commands, "insert_message", failing_insert)
    picture = huge_png(800, 600)
    response = upload(alice, chat, "pic.png", picture, client_id="retry-me")
    assert response.status_code == 500
    assert response.get_json()["ok"] is False
    assert stored_files(app) == []
    monkeypatch.undo()
    retried = upload(alice, chat, "pic.png", picture, client_id="retry-me")
    assert retried.status_code == 201
    assert len(stored_files(app)) == 2  # one picture and its thumbnail, not two copies
    assert attachment_rows(app) == 1


def age(path: Path, seconds: float) -> Path:
    """Make ``path`` look ``seconds`` old."""
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_the_sweep_removes_old_leftovers_and_keeps_what_a_row_names(app, alice, chat):
    upload(alice, chat, "kept.png", huge_png(800, 600))
    folder = Path(app.config["UPLOAD_PATH"])
    kept = {p.name for p in stored_files(app)}
    for path in stored_files(app):
        age(path, 2 * HOUR)
    part = folder / "0123abcd.png.part"  # a crash in the middle of an upload
    part.write_bytes(b"half")
    orphan = folder / "89abcdef.png"
    orphan.write_bytes(huge_png(10, 10))
    orphan_thumbnail = folder / "89abcdef.thumb.png"
    orphan_thumbnail.write_bytes(huge_png(10, 10))
    young = folder / "fedcba98.txt"  # an upload in flight: stored, its row not yet written
    young.write_bytes(b"soon named")
    for path in (part, orphan, orphan_thumbnail):
        age(path, 2 * HOUR)

    with app.app_context():
        referenced = db_commands.list_stored_names()
    removed = attachments.sweep_leftovers(folder, referenced)

    assert removed == sorted([part.name, orphan.name, orphan_thumbnail.name])
    assert {p.name for p in stored_files(app)} == kept | {young.name}
    assert query(app, "SELECT COUNT(*) AS n FROM attachments")[0]["n"] == 1


def test_the_sweep_of_a_missing_folder_does_nothing(tmp_path):
    assert attachments.sweep_leftovers(tmp_path / "never-made", []) == []


# -- a real server (python app.py on eventlet) ----------------------------------------------


def upload_over_http(server, person, name: str, data: bytes) -> requests.Response:
    """POST /upload as the browser does it, with the page's CSRF token."""
    token = csrf_token(person.http.get(f"{server.url}/chats").text)
    return person.http.post(
        f"{server.url}/upload",
        data={"chat_id": "1", "client_id": uuid.uuid4().hex},
        files={"file": (name, data)},
        headers={"X-CSRFToken": token, "Accept": "application/json"},
        timeout=120,
    )


def test_others_are_served_in_order_while_a_big_picture_is_processed(tmp_path):
    """While alice's 39.9-megapixel picture is being checked and shrunk (its ".part" file
    is in the upload folder), bob's messages are answered, every one, in order."""
    server = start_server(tmp_path, **limit_overrides(ROOT))
    try:
        alice = RealClient(server, "alice").register()
        bob = RealClient(server, "bob").register()
        bob.connect()
        uploads = tmp_path / "uploads"
        picture = huge_png(6320, 6320, RGB)
        with ThreadPoolExecutor(1) as pool:
            sent = pool.submit(upload_over_http, server, alice, "big.png", picture)
            while not list(uploads.glob("*.part")):  # the server has started storing it
                assert not sent.done(), sent.result().text
            acks, answered_while_processing = [], 0
            while not sent.done():
                processing = bool(list(uploads.glob("*.part")))
                acks.append(
                    bob.call(
                        "message_sent",
                        {"chat_id": 1, "body": f"bob {len(acks)}", "client_id": uuid.uuid4().hex},
                    )
                )
                if processing and list(uploads.glob("*.part")):
                    answered_while_processing += 1
            response = sent.result()
        assert response.status_code == 201, response.text
        assert all(ack["ok"] for ack in acks), acks
        ids = [ack["message"]["id"] for ack in acks]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert answered_while_processing > 0, "bob waited for the picture"
        attachment = response.json()["message"]["attachment"]
        thumbnail = alice.http.get(server.url + attachment["thumbnail_url"])
        assert Image.open(io.BytesIO(thumbnail.content)).size == (480, 480)
        bob.disconnect()
    finally:
        server.stop()


def test_leftovers_are_swept_when_the_server_starts_and_named_files_are_kept(tmp_path):
    server = start_server(tmp_path)
    try:
        alice = RealClient(server, "alice").register()
        kept = upload_over_http(server, alice, "kept.png", huge_png(800, 600))
        assert kept.status_code == 201
    finally:
        server.stop()
    uploads = tmp_path / "uploads"
    named = sorted(p.name for p in uploads.iterdir())
    assert len(named) == 2  # the picture and its thumbnail
    leftovers = {
        "0123abcd.png.part": b"cut short by a crash",
        "89abcdef.png": huge_png(10, 10),
        "89abcdef.thumb.png": huge_png(10, 10),
    }
    for name, data in leftovers.items():
        (uploads / name).write_bytes(data)
    for path in uploads.iterdir():
        age(path, 2 * HOUR)
    (uploads / "fedcba98.txt").write_bytes(b"young: maybe an upload in flight")

    server = start_server(tmp_path)
    try:
        assert sorted(p.name for p in uploads.iterdir()) == sorted([*named, "fedcba98.txt"])
        alice.http.get(server.url + "/login")  # same session cookie, same secret key
        attachment = kept.json()["message"]["attachment"]
        assert alice.http.get(server.url + attachment["url"]).status_code == 200
    finally:
        server.stop()
