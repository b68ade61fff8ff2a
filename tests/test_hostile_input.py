"""Hostile input answered cleanly: ids too large for any database get a 404 or the event's
own error, never a server error; names cannot pass for other names; text no database can
store is refused with a sentence."""

from __future__ import annotations

import io

import pytest

from helpers import MAX_ID
from tests.conftest import query

SERVER_ERROR = "Something went wrong on the server. Please try again."
# Past SQLite's and PostgreSQL's 64-bit integers, past JSON's exact integers, and past the
# 4,300 digits Python's int() accepts at all.
HUGE_IDS = ["99999999999999999999", str(2**63), str(MAX_ID + 1), "9" * 5000]


# -- 13.7: huge ids ------------------------------------------------------------------------


@pytest.mark.parametrize("huge", HUGE_IDS)
def test_huge_ids_in_pages_are_a_404_not_a_server_error(alice, huge):
    """On both databases: a URL id nobody could have is the 404 of a missing thing."""
    for url in (f"/uploads/{huge}", f"/uploads/{huge}/thumbnail", f"/chats?chat={huge}"):
        response = alice.http.get(url)
        assert response.status_code == 404, (url[:40], response.status_code)
        assert b"Something went wrong" not in response.data


@pytest.mark.parametrize("huge", HUGE_IDS)
def test_huge_ids_in_forms_get_the_forms_own_error(app, alice, huge):
    before = query(app, "SELECT COUNT(*) AS n FROM chats")
    response = alice.http.post("/add", data={"user_id": huge})
    assert response.status_code == 400
    assert b"user_id must be a positive integer." in response.data
    upload = alice.http.post(
        "/upload",
        data={"chat_id": huge, "client_id": "u1", "file": (io.BytesIO(b"hi"), "a.txt")},
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )
    assert upload.status_code == 400
    assert upload.get_json() == {"ok": False, "error": "chat_id must be a positive integer."}
    assert query(app, "SELECT COUNT(*) AS n FROM chats") == before


def test_the_largest_id_is_still_an_id(alice):
    """MAX_ID itself is a well-formed id: simply one that does not exist."""
    assert alice.http.get(f"/uploads/{MAX_ID}").status_code == 404
    response = alice.http.get(f"/chats?chat={MAX_ID}")
    assert response.status_code == 404
    assert b"This chat does not exist or you are not in it." in response.data


# -- 13.8: look-alike names ----------------------------------------------------------------

LOOK_ALIKES = [
    "General\u200bTalk",  # zero-width space
    "General\u200cTalk",  # zero-width non-joiner
    "General\u200dTalk",  # zero-width joiner between letters
    "General\u200eTalk",  # left-to-right mark
    "General Talk\u200f",  # right-to-left mark
    "\u202eklaT lareneG",  # right-to-left override
    "General \u2066Talk\u2069",  # isolate
    "General\u2060Talk",  # word joiner
    "\ufeffGeneral Talk",  # byte-order mark
    "General Talk\ufe0f",  # a variation selector after a letter shows nothing
    "General\u3164Talk",  # Hangul filler: a letter drawn as blank space
    "General\u034fTalk",  # combining grapheme joiner
    "General\x9bTalk",  # a C1 control character
]


@pytest.mark.parametrize("name", LOOK_ALIKES)
def test_channel_names_with_invisible_or_reordering_characters_are_refused(app, alice, name):
    before = query(app, "SELECT COUNT(*) AS n FROM chats")
    ack = alice.call("create_channel", {"name": name})
    assert ack["ok"] is False
    assert ack["error"] in {
        "A channel name cannot hold invisible or text-direction characters"
        " (zero-width spaces, right-to-left marks or overrides).",
        "A channel name cannot hold control characters.",
    }
    assert query(app, "SELECT COUNT(*) AS n FROM chats") == before


@pytest.mark.parametrize(
    "name",
    [
        "Café crème",
        "שלום עולם",
        "مرحبا",
        "Team 👩\u200d💻 devs",  # a joiner inside an emoji is part of the picture
        "Pride 🏳\ufe0f\u200d🌈",
        "Room 1\ufe0f\u20e3",
        "Thumbs 👍🏽",
    ],
)
def test_channel_names_in_any_script_and_with_emoji_are_fine(alice, name):
    ack = alice.call("create_channel", {"name": name})
    assert ack["ok"], ack
    assert ack["chat"]["name"] == name


@pytest.mark.parametrize("username", ["ali\u200bce", "\u202eecila", "alice\ufeff"])
def test_usernames_cannot_carry_invisible_characters(client, username):
    response = client.post(
        "/register",
        data={"username": username, "password": "long enough", "confirmation": "long enough"},
    )
    assert response.status_code == 400
    assert b"A username has 3 to 32 characters" in response.data


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("a\u202egnp.txt", "agnp.txt"),  # would read "atxt.png"
        ("photo\u200b.txt", "photo.txt"),
        ("\u2067report\u2069.txt", "report.txt"),
        ("\ufeffnotes.txt", "notes.txt"),
        ("\u200b\u200f.txt", ".txt"),
    ],
)
def test_file_names_lose_the_characters_that_let_them_pretend(app, alice, bob, sent, shown):
    chat = alice.direct_chat_with(bob)
    response = alice.http.post(
        "/upload",
        data={"chat_id": str(chat), "client_id": "n1", "file": (io.BytesIO(b"text"), sent)},
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 201, response.get_json()
    attachment = response.get_json()["message"]["attachment"]
    assert attachment["name"] == shown
    assert query(app, "SELECT original_name FROM attachments") == [{"original_name": shown}]


def test_a_name_stored_before_the_cleaning_is_offered_clean_at_download(app, alice, bob):
    chat = alice.direct_chat_with(bob)
    response = alice.http.post(
        "/upload",
        data={"chat_id": str(chat), "client_id": "n2", "file": (io.BytesIO(b"text"), "a.txt")},
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )
    attachment = response.get_json()["message"]["attachment"]
    with app.app_context():
        import db_commands

        # As an older version stored it: the name exactly as sent.
        db_commands.get_db().execute(
            "UPDATE attachments SET original_name = ? WHERE id = ?",
            ("a\u202egnp.txt", attachment["id"]),
        )
    disposition = bob.http.get(attachment["url"]).headers["Content-Disposition"]
    assert "agnp.txt" in disposition
    assert "%E2%80%AE" not in disposition


# -- 13.9: text no database can store ------------------------------------------------------


def test_a_lone_surrogate_in_a_message_is_a_validation_error(app, alice):
    before = query(app, "SELECT COUNT(*) AS n FROM messages")
    for body in ("a\ud800b", "\udfff", "ok \ud83d"):
        ack = alice.call("message_sent", {"chat_id": 1, "body": body, "client_id": "s-1"})
        assert ack == {
            "ok": False,
            "error": "A message must be valid Unicode text (it holds a lone surrogate).",
        }
    assert query(app, "SELECT COUNT(*) AS n FROM messages") == before
    # A surrogate pair written as JSON escapes is one real character, and is fine.
    assert alice.send(1, "smile \U0001f600")["body"] == "smile \U0001f600"


def test_a_lone_surrogate_in_a_channel_name_is_a_validation_error(app, alice):
    before = query(app, "SELECT COUNT(*) AS n FROM chats")
    ack = alice.call("create_channel", {"name": "Talk \ud800"})
    assert ack == {
        "ok": False,
        "error": "A channel name must be valid Unicode text (it holds a lone surrogate).",
    }
    assert query(app, "SELECT COUNT(*) AS n FROM chats") == before


def test_captions_refuse_nul_and_take_broken_utf8_as_replacement_characters(app, alice, bob):
    """A form cannot carry a lone surrogate (its encoded bytes are not UTF-8: the form
    reader turns them into U+FFFD); a NUL, which PostgreSQL cannot store, is refused."""
    chat = alice.direct_chat_with(bob)

    def send(caption: bytes, client_id: str):
        boundary = "XyZ"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="chat_id"\r\n\r\n{chat}\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="client_id"\r\n\r\n'
                f"{client_id}\r\n"
                f'--{boundary}\r\nContent-Disposition: form-data; name="caption"\r\n\r\n'
            ).encode()
            + caption
            + (
                f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="file";'
                f' filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n'
            ).encode()
        )
        return alice.http.post(
            "/upload",
            data=body,
            content_type=f"multipart/form-data; boundary={boundary}",
            headers={"Accept": "application/json"},
        )

    refused = send(b"a\x00b", "c-nul")
    assert refused.status_code == 400
    assert refused.get_json() == {"ok": False, "error": "A caption cannot hold NUL characters."}
    assert query(app, "SELECT COUNT(*) AS n FROM attachments")[0]["n"] == 0
    cesu = send(b"x\xed\xa0\x80y", "c-cesu")  # U+D800 as (invalid) UTF-8 bytes
    assert cesu.status_code == 201, cesu.get_json()
    assert cesu.get_json()["message"]["body"] == "x\ufffd\ufffd\ufffdy"
