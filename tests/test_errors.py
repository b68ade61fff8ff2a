"""Bad input gets a readable error and changes nothing; the connection keeps working.
Error pages carry the right status code."""

from __future__ import annotations

import pytest

from events import HANDLERS
from tests.conftest import query

ID_FIELDS = {
    "join_chat": ["chat_id", "after_id"],
    "message_history_is_scrolled_to_the_top": ["chat_id", "before_id"],
    "message_history_is_scrolled_to_the_bottom": ["chat_id", "after_id"],
    "message_sent": ["chat_id"],
    "new_message_count_updated": ["chat_id", "last_read_id"],
    "join_channel": ["chat_id"],
    "typing": ["chat_id"],
    "list_members": ["chat_id"],
}
BAD_IDS = [True, False, "1", 1.0, 1.5, -1, 0, 2**53, [1], {"id": 1}]


def valid_payload(event: str, chat_id: int) -> dict:
    return {
        "join_chat": {"chat_id": chat_id},
        "message_history_is_scrolled_to_the_top": {"chat_id": chat_id, "before_id": 10},
        "message_history_is_scrolled_to_the_bottom": {"chat_id": chat_id, "after_id": 1},
        "message_sent": {"chat_id": chat_id, "body": "hi", "client_id": "ok-1"},
        "new_message_count_updated": {"chat_id": chat_id, "last_read_id": 1},
        "join_channel": {"chat_id": chat_id},
        "typing": {"chat_id": chat_id},
        "list_members": {"chat_id": chat_id},
        "create_channel": {"name": "fine"},
        "list_chats": {},
    }[event]


def count_rows(app) -> tuple[int, ...]:
    counts = [
        query(app, f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]
        for table in ("users", "chats", "chat_members", "messages")
    ]
    pointers = query(app, "SELECT SUM(last_read_message_id) AS n FROM chat_members")[0]["n"]
    return (*counts, pointers)


def test_every_event_has_a_validity_case():
    assert set(ID_FIELDS) | {"create_channel", "list_chats"} == set(HANDLERS)


@pytest.mark.parametrize(
    ("event", "field"), [(e, f) for e, fields in ID_FIELDS.items() for f in fields]
)
def test_ids_that_are_not_positive_integers_are_refused(app, alice, event, field):
    general = 1
    before = count_rows(app)
    for bad in BAD_IDS:
        payload = {**valid_payload(event, general), field: bad}
        ack = alice.call(event, payload)
        assert ack == {"ok": False, "error": f"{field} must be a positive integer."}, (bad, ack)
    assert count_rows(app) == before
    assert alice.call("list_chats")["ok"]  # the connection still works


@pytest.mark.parametrize("event", sorted(HANDLERS))
@pytest.mark.parametrize("payload", ["text", 42, [1, 2], True])
def test_a_payload_that_is_not_an_object_is_refused(app, alice, event, payload):
    before = count_rows(app)
    assert alice.call(event, payload) == {
        "ok": False,
        "error": "The request must be a JSON object.",
    }
    assert count_rows(app) == before
    assert alice.tab.is_connected()


@pytest.mark.parametrize("event", sorted(set(ID_FIELDS) - {"join_channel"}))
def test_unknown_chat_is_refused(alice, event):
    ack = alice.call(event, valid_payload(event, 987654))
    assert ack == {"ok": False, "error": "This chat does not exist or you are not in it."}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("", "A message cannot be empty."),
        ("   \n\t ", "A message cannot be empty."),
        ("x" * 4001, "A message has at most 4000 characters."),
        (None, "A message must be text."),
        (12, "A message must be text."),
        ("a\x00b", "A message cannot hold NUL characters."),
    ],
)
def test_message_bodies_are_checked(app, alice, body, error):
    before = count_rows(app)
    ack = alice.call("message_sent", {"chat_id": 1, "body": body, "client_id": "c-1"})
    assert ack == {"ok": False, "error": error}
    assert count_rows(app) == before


def test_a_message_of_exactly_4000_characters_after_trimming_is_fine(alice):
    assert alice.send(1, "  " + "x" * 4000 + "\n")["body"] == "x" * 4000


@pytest.mark.parametrize("client_id", [None, "", "x" * 65, "has space", 5, "ü"])
def test_client_ids_are_checked(alice, client_id):
    ack = alice.call("message_sent", {"chat_id": 1, "body": "hi", "client_id": client_id})
    assert ack == {"ok": False, "error": "client_id must be 1 to 64 letters, digits, '_' or '-'."}


def test_an_event_without_payload_gets_an_error_ack(alice):
    assert alice.tab.emit("join_chat", callback=True) == {
        "ok": False,
        "error": "chat_id must be a positive integer.",
    }


def test_a_failure_inside_a_handler_answers_an_error_and_keeps_serving(alice, monkeypatch):
    import db_commands

    def broken(*_args):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(db_commands, "list_chats_for_member", broken)
    ack = alice.call("list_chats")
    assert ack == {"ok": False, "error": "Something went wrong on the server. Please try again."}
    monkeypatch.undo()
    assert alice.call("list_chats")["ok"]


def test_unknown_page_is_a_404_apology(alice):
    response = alice.http.get("/no-such-page")
    assert response.status_code == 404
    assert b"404" in response.data


def test_json_callers_get_json_errors(alice):
    response = alice.http.get("/no-such-page", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.get_json()["ok"] is False


def test_a_strangers_chat_page_is_a_404(alice, bob, carol):
    chat_id = alice.direct_chat_with(bob)
    response = carol.http.get(f"/chats?chat={chat_id}")
    assert response.status_code == 404
    assert b"This chat does not exist or you are not in it." in response.data
    assert carol.http.get("/chats?chat=abc").status_code == 404


def test_a_server_error_is_a_500_apology(app, alice, monkeypatch):
    import db_commands

    monkeypatch.setattr(
        db_commands, "list_chats_for_member", lambda *_: (_ for _ in ()).throw(RuntimeError())
    )
    response = alice.http.get("/")
    assert response.status_code == 500
    assert b"Something went wrong" in response.data


def test_wrong_method_is_a_405_apology(alice):
    assert alice.http.get("/add").status_code == 405
