"""Attachments: allowed types proved by content, safe storage, members-only download."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import query, received, register


def picture(fmt: str, size: tuple[int, int] = (1200, 800)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(buffer, fmt)
    return buffer.getvalue()


PNG = picture("PNG")
ALLOWED = {
    "notes.txt": ("Grüße — plain UTF-8 text\n".encode(), "text/plain; charset=utf-8"),
    "paper.pdf": (b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n", "application/pdf"),
    "pic.png": (PNG, "image/png"),
    "photo.jpg": (picture("JPEG"), "image/jpeg"),
    "photo.jpeg": (picture("JPEG"), "image/jpeg"),
    "anim.gif": (picture("GIF"), "image/gif"),
}


def upload(user, chat_id, name, data, client_id="u-1", caption=None):
    form = {"chat_id": str(chat_id), "client_id": client_id, "file": (io.BytesIO(data), name)}
    if caption is not None:
        form["caption"] = caption
    return user.http.post(
        "/upload",
        data=form,
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )


def stored_files(app) -> list[Path]:
    folder = Path(app.config["UPLOAD_PATH"])
    return sorted(folder.iterdir()) if folder.exists() else []


def attachment_rows(app) -> int:
    return query(app, "SELECT COUNT(*) AS n FROM attachments")[0]["n"]


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_each_allowed_type_becomes_a_message_everyone_receives(app, alice, bob, chat, name):
    data, mime_type = ALLOWED[name]
    response = upload(alice, chat, name, data, caption="  look  ")
    assert response.status_code == 201, response.get_json()
    message = response.get_json()["message"]
    assert message["body"] == "look"
    attachment = message["attachment"]
    assert attachment["name"] == name
    assert attachment["mime_type"] == mime_type
    assert attachment["size"] == len(data)
    assert attachment["url"] == f"/uploads/{attachment['id']}"
    assert received(bob.tab, "message_received_from_current_chat") == [{"message": message}]
    download = bob.http.get(attachment["url"])
    assert download.status_code == 200
    assert download.data == data
    assert download.headers["Content-Type"].startswith(mime_type.split(";")[0])
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    picture_type = mime_type.startswith("image/")
    disposition = download.headers.get("Content-Disposition", "")
    assert disposition.startswith("inline" if picture_type else "attachment")
    assert (attachment["thumbnail_url"] is not None) == picture_type
    names = [p.name for p in stored_files(app)]
    assert name not in names  # kept under a name the server chose


def test_pictures_get_a_thumbnail_of_at_most_480_pixels_made_once(app, alice, bob, chat):
    message = upload(alice, chat, "wide.png", picture("PNG", (2000, 500))).get_json()["message"]
    attachment = message["attachment"]
    assert (attachment["width"], attachment["height"]) == (2000, 500)
    files_after_upload = stored_files(app)
    assert len(files_after_upload) == 2  # the picture and its thumbnail
    response = bob.http.get(attachment["thumbnail_url"])
    assert response.status_code == 200
    thumb = Image.open(io.BytesIO(response.data))
    assert max(thumb.size) == 480
    assert thumb.size == (480, 120)
    bob.http.get(attachment["thumbnail_url"])
    assert stored_files(app) == files_after_upload


def test_a_pdf_has_no_thumbnail(alice, chat):
    message = upload(alice, chat, "a.pdf", ALLOWED["paper.pdf"][0]).get_json()["message"]
    assert alice.http.get(f"/uploads/{message['attachment']['id']}/thumbnail").status_code == 404


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("tool.exe", b"MZ\x90\x00binary", "Only txt, pdf, png, jpg and gif files can be sent."),
        ("logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "Only txt, pdf, png"),
        ("page.html", b"<script>alert(1)</script>", "Only txt, pdf, png, jpg and gif"),
        ("noextension", b"hello", "Only txt, pdf, png, jpg and gif files can be sent."),
        ("page.png", b"<html><script>alert(1)</script></html>", "not a real PNG picture"),
        ("really-png.jpg", PNG, "not a real JPEG picture"),
        ("really-png.gif", PNG, "not a real GIF picture"),
        ("truncated.png", PNG[: len(PNG) // 2], "not a real PNG picture"),
        ("fake.pdf", b"<html>not a pdf</html>", "not a real PDF document"),
        ("latin1.txt", "café".encode("latin-1"), "must be UTF-8 text"),
        ("nul.txt", b"abc\x00def", "without NUL bytes"),
        ("empty.txt", b"", "The file is empty."),
        ("empty.png", b"", "The file is empty."),
    ],
)
def test_refused_files_get_a_message_and_nothing_is_kept(app, alice, bob, chat, name, data, error):
    response = upload(alice, chat, name, data)
    assert response.status_code == 400
    assert response.get_json()["ok"] is False
    assert error in response.get_json()["error"]
    assert stored_files(app) == []
    assert attachment_rows(app) == 0
    assert received(bob.tab) == []


def test_too_big_is_refused_with_413_json(make_app):
    app = make_app(MAX_UPLOAD_MB=1)
    http = app.test_client()
    register(http, "dave")

    def send(client_id: str, size: int):
        return http.post(
            "/upload",
            data={
                "chat_id": "1",
                "client_id": client_id,
                "file": (io.BytesIO(b"a" * size), "a.txt"),
            },
            content_type="multipart/form-data",
            headers={"Accept": "application/json"},
        )

    just_over = send("big", 1024 * 1024 + 1)  # under the request limit, over the file limit
    assert just_over.status_code == 413
    assert just_over.get_json() == {"ok": False, "error": "The file is larger than 1 MB."}
    far_over = send("huge", 2 * 1024 * 1024)  # refused from its Content-Length alone
    assert far_over.status_code == 413
    assert far_over.get_json()["ok"] is False
    assert stored_files(app) == []


def test_a_stranger_cannot_upload_into_a_chat(app, carol, chat):
    response = upload(carol, chat, "pic.png", PNG)
    assert response.status_code == 404
    assert response.get_json()["error"] == "This chat does not exist or you are not in it."
    assert stored_files(app) == []


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"chat_id": "abc", "client_id": "x"}, "chat_id must be a positive integer."),
        ({"chat_id": "1", "client_id": "bad id"}, "client_id must be 1 to 64"),
        ({"chat_id": "1", "client_id": "x"}, "Choose a file to send."),
    ],
)
def test_malformed_upload_forms_are_refused(alice, form, error):
    response = alice.http.post(
        "/upload",
        data=form,
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 400
    assert error in response.get_json()["error"]


def test_logged_out_upload_gets_401_json(client):
    response = client.post("/upload", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.get_json() == {"ok": False, "error": "Please log in again."}


def test_two_files_with_the_same_name_both_survive(app, alice, bob, chat):
    first = upload(alice, chat, "same.txt", b"first", client_id="a").get_json()["message"]
    second = upload(alice, chat, "same.txt", b"second", client_id="b").get_json()["message"]
    assert bob.http.get(first["attachment"]["url"]).data == b"first"
    assert bob.http.get(second["attachment"]["url"]).data == b"second"


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd.txt",
        "Отчёт 2026.txt",
        "<img src=x onerror=alert(1)>.txt",
        "..txt",
        "a/b/c.txt",
    ],
)
def test_odd_names_are_stored_safely_and_offered_as_sent(app, alice, bob, chat, name):
    response = upload(alice, chat, name, b"text")
    assert response.status_code == 201
    attachment = response.get_json()["message"]["attachment"]
    assert attachment["name"] == name
    for path in stored_files(app):
        assert path.parent == Path(app.config["UPLOAD_PATH"])
    download = bob.http.get(attachment["url"])
    assert download.status_code == 200
    assert "filename" in download.headers["Content-Disposition"]


def test_unicode_names_are_offered_with_filename_star(alice, bob, chat):
    attachment = upload(alice, chat, "Отчёт.txt", b"text").get_json()["message"]["attachment"]
    disposition = bob.http.get(attachment["url"]).headers["Content-Disposition"]
    assert "filename*=UTF-8''%D0%9E%D1%82%D1%87%D1%91%D1%82.txt" in disposition


def test_only_members_can_download_and_strangers_get_the_missing_404(alice, bob, carol, chat):
    attachment = upload(alice, chat, "pic.png", PNG).get_json()["message"]["attachment"]
    stranger = carol.http.get(attachment["url"])
    missing = carol.http.get("/uploads/999999")
    assert stranger.status_code == missing.status_code == 404
    # The same page, but for the logout form's CSRF token, signed with the second it was made.
    token = re.compile(rb'name="csrf_token" value="[^"]*"')
    assert token.sub(b"", stranger.data) == token.sub(b"", missing.data)
    assert carol.http.get(attachment["thumbnail_url"]).status_code == 404
    assert bob.http.get(attachment["thumbnail_url"]).status_code == 200


def test_a_retried_upload_makes_one_message(app, alice, bob, chat):
    first = upload(alice, chat, "pic.png", PNG, client_id="retry")
    again = upload(alice, chat, "pic.png", PNG, client_id="retry")
    assert first.status_code == 201
    assert again.status_code == 200
    assert first.get_json()["message"] == again.get_json()["message"]
    assert len(received(bob.tab, "message_received_from_current_chat")) == 1
    assert attachment_rows(app) == 1
    assert len(stored_files(app)) == 2  # one picture and its thumbnail


def test_an_upload_counts_as_unread_and_moves_the_chat_up(alice, bob):
    chat = alice.direct_chat_with(bob)
    bob.tab.get_received()
    upload(alice, chat, "pic.png", PNG)
    listed = bob.call("list_chats")["chats"]
    assert listed[0]["id"] == chat
    assert listed[0]["unread_count"] == 1
    assert listed[0]["last_message"]["attachment"]["name"] == "pic.png"
    history = bob.call("join_chat", {"chat_id": chat})["messages"]
    assert history[0]["attachment"]["name"] == "pic.png"


def test_uploads_need_the_pages_csrf_token_and_a_logged_out_browser_hears_401(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    assert (
        app.test_client().post("/upload", headers={"Accept": "application/json"}).status_code == 401
    )
    http = app.test_client()
    page = http.get("/register").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    form = {"username": "alice", "password": "password123", "confirmation": "password123"}
    http.post("/register", data={**form, "csrf_token": token})
    token = re.search(
        r'name="csrf-token" content="([^"]+)"', http.get("/chats").get_data(as_text=True)
    ).group(1)

    def send(headers):
        data = {
            "chat_id": "1",
            "client_id": f"c{len(headers)}",
            "file": (io.BytesIO(b"hi"), "a.txt"),
        }
        return http.post(
            "/upload",
            data=data,
            content_type="multipart/form-data",
            headers={"Accept": "application/json", **headers},
        )

    assert send({}).status_code == 400
    assert send({"X-CSRFToken": token}).status_code == 201
