"""Accounts: register, log in, log out, and pages that need a login."""

from __future__ import annotations

import re

import pytest

from helpers import MAX_USERNAME_LENGTH, MIN_PASSWORD_LENGTH, MIN_USERNAME_LENGTH
from tests.conftest import PASSWORD, register


def session_cookie(http) -> str | None:
    cookie = http.get_cookie("session")
    return cookie.value if cookie else None


def test_register_logs_in_and_lands_on_the_chats(client):
    response = register(client, "alice")
    assert response.status_code == 303
    assert response.headers["Location"] == "/chats"
    assert client.get("/chats").status_code == 200


@pytest.mark.parametrize(
    ("username", "password", "confirmation", "field", "message"),
    [
        ("al", PASSWORD, PASSWORD, "username", "A username has 3 to 32 characters"),
        ("a" * 33, PASSWORD, PASSWORD, "username", "A username has 3 to 32 characters"),
        ("al ice", PASSWORD, PASSWORD, "username", "A username has 3 to 32 characters"),
        ("<b>x</b>", PASSWORD, PASSWORD, "username", "A username has 3 to 32 characters"),
        ("", PASSWORD, PASSWORD, "username", "Please choose a username."),
        ("alice", "short", "short", "password", "A password has at least 8 characters."),
        ("alice", PASSWORD, PASSWORD + "x", "confirmation", "The passwords do not match."),
    ],
)
def test_register_refuses_bad_input_with_the_reason(
    client, username, password, confirmation, field, message
):
    response = client.post(
        "/register",
        data={"username": username, "password": password, "confirmation": confirmation},
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page
    assert session_cookie(client) is None or client.get("/chats").status_code == 302


def test_the_register_form_shows_the_limits_its_checks_enforce(client):
    """The form's hints and its browser-side limits come from the same constants."""
    page = client.get("/register").get_data(as_text=True)
    assert f'minlength="{MIN_USERNAME_LENGTH}" maxlength="{MAX_USERNAME_LENGTH}"' in page
    assert f"{MIN_USERNAME_LENGTH} to {MAX_USERNAME_LENGTH} characters" in page
    assert f'minlength="{MIN_PASSWORD_LENGTH}"' in page
    assert f"At least {MIN_PASSWORD_LENGTH} characters" in page


def test_register_keeps_the_typed_username_on_error(client):
    response = client.post(
        "/register", data={"username": "alice", "password": "x", "confirmation": "x"}
    )
    assert 'value="alice"' in response.get_data(as_text=True)


def test_username_is_unique_ignoring_case(client, app):
    assert register(client, "Alice").status_code == 303
    other = app.test_client()
    response = register(other, "aLICE")
    assert response.status_code == 400
    assert "This username is taken." in response.get_data(as_text=True)


def test_allowed_username_characters(client):
    assert register(client, "a.b-c_9").status_code == 303


def test_login_with_the_right_password(app, client):
    register(client, "alice")
    fresh = app.test_client()
    response = fresh.post("/login", data={"username": "ALICE", "password": PASSWORD})
    assert response.status_code == 303
    assert response.headers["Location"] == "/chats"


@pytest.mark.parametrize(
    ("username", "password"), [("alice", "wrong password"), ("nobody", PASSWORD), ("", "")]
)
def test_wrong_username_or_password_gets_one_message_and_no_login(app, client, username, password):
    register(client, "alice")
    fresh = app.test_client()
    response = fresh.post("/login", data={"username": username, "password": password})
    assert response.status_code == 400
    assert "Wrong username or password." in response.get_data(as_text=True)
    with fresh.session_transaction() as session:
        assert "user_id" not in session
    assert fresh.get("/chats").status_code == 302


def test_session_id_changes_at_login(app, client):
    register(client, "alice")
    fresh = app.test_client()
    fresh.get("/login")
    with fresh.session_transaction() as session:
        session["visited"] = True  # a session exists before login
    before = session_cookie(fresh)
    assert before
    fresh.post("/login", data={"username": "alice", "password": PASSWORD})
    after = session_cookie(fresh)
    assert after and after != before


def test_logout_needs_post_and_ends_the_session(client):
    register(client, "alice")
    assert client.get("/logout").status_code == 405
    response = client.post("/logout")
    assert response.status_code == 303
    assert client.get("/chats").status_code == 302


@pytest.mark.parametrize("path", ["/", "/chats", "/find", "/chats?chat=1"])
def test_pages_need_a_login_and_come_back_after_it(app, client, path):
    register(app.test_client(), "alice")
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    next_url = response.headers["Location"].split("next=", 1)[1]
    login = client.post(f"/login?next={next_url}", data={"username": "alice", "password": PASSWORD})
    assert login.status_code == 303
    assert login.headers["Location"] == path


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:x"]
)
def test_login_never_sends_you_to_another_site(app, client, target):
    register(app.test_client(), "alice")
    response = client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "next": target}
    )
    assert response.headers["Location"] == "/chats"


def test_passwords_are_stored_hashed(app, client):
    register(client, "alice")
    with app.app_context():
        from db_commands import get_user_credentials

        stored = get_user_credentials("alice")["password_hash"]
    assert PASSWORD not in stored
    assert stored.startswith(("scrypt:", "pbkdf2:"))


def test_forms_carry_a_csrf_token_and_refuse_a_post_without_it(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    http = app.test_client()
    page = http.get("/register").get_data(as_text=True)
    assert 'name="csrf_token"' in page
    response = http.post(
        "/register", data={"username": "alice", "password": PASSWORD, "confirmation": PASSWORD}
    )
    assert response.status_code == 400
    assert "The form expired" in response.get_data(as_text=True)
    match = re.search(r'<input[^>]*name="csrf_token"[^>]*>', page)
    token = re.search(r'value="([^"]+)"', match.group(0)).group(1)
    response = http.post(
        "/register",
        data={
            "username": "alice",
            "password": PASSWORD,
            "confirmation": PASSWORD,
            "csrf_token": token,
        },
    )
    assert response.status_code == 303
