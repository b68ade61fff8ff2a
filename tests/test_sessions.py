"""Sessions: nothing stored for anonymous visitors, forms still protected, and sockets that
end with the login session they were opened with."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import PASSWORD

ANONYMOUS_PAGES = ["/login", "/register", "/", "/chats", "/find?q=a", "/static/style.css", "/nope"]


def stored_sessions(app) -> set[str]:
    """The files of the server's session store."""
    folder = Path(app.root_path, app.config["SESSION_FILE_DIR"])
    return {path.name for path in folder.iterdir()} if folder.exists() else set()


def form_token(page: str) -> str:
    field = re.search(r'<input[^>]*name="csrf_token"[^>]*>', page)
    assert field, "the page has no CSRF token"
    return re.search(r'value="([^"]+)"', field.group(0)).group(1)


def log_in_through_the_form(http, name: str = "alice") -> int:
    token = form_token(http.get("/login").get_data(as_text=True))
    data = {"username": name, "password": PASSWORD, "csrf_token": token}
    return http.post("/login", data=data).status_code


def register_through_the_form(http, name: str) -> int:
    token = form_token(http.get("/register").get_data(as_text=True))
    data = {"username": name, "password": PASSWORD, "confirmation": PASSWORD, "csrf_token": token}
    return http.post("/register", data=data).status_code


@pytest.fixture
def guarded_app(make_app):
    """CSRF protection on, as in production, and a store that prunes past five sessions."""
    return make_app(WTF_CSRF_ENABLED=True, SESSION_FILE_THRESHOLD=5)


def test_anonymous_traffic_writes_no_session_and_cannot_evict_a_logged_in_one(guarded_app):
    app = guarded_app
    alice = app.test_client()
    assert register_through_the_form(alice, "alice") == 303
    before = stored_sessions(app)
    for _ in range(20):
        for path in ANONYMOUS_PAGES:
            app.test_client().get(path)
    assert alice.get("/chats").status_code == 200, "alice's session was evicted"
    assert stored_sessions(app) == before


def test_the_forms_csrf_token_lives_in_a_signed_httponly_cookie_until_login(guarded_app):
    app = guarded_app
    assert register_through_the_form(app.test_client(), "alice") == 303
    visitor = app.test_client()
    page = visitor.get("/login").get_data(as_text=True)
    cookie = visitor.get_cookie("session")
    assert cookie.http_only and cookie.same_site == "Lax"
    assert "." in cookie.value, "a signed cookie, not an id in the store"
    stored = stored_sessions(app)
    token = form_token(page)
    again = visitor.get("/login")
    assert "Set-Cookie" not in again.headers, "the token stays the same while the form is open"
    assert form_token(again.get_data(as_text=True)) is not None
    response = visitor.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303
    assert len(stored_sessions(app) - stored) == 1, "the login, and only it, is stored"
    session_id = visitor.get_cookie("session").value
    assert "." not in session_id and session_id != cookie.value
    assert visitor.get("/chats").status_code == 200


def test_a_token_from_another_visitor_or_a_forged_cookie_is_refused(guarded_app):
    app = guarded_app
    register_through_the_form(app.test_client(), "alice")
    attacker = app.test_client()
    their_token = form_token(attacker.get("/login").get_data(as_text=True))
    victim = app.test_client()
    victim.get("/login")
    data = {"username": "alice", "password": PASSWORD, "csrf_token": their_token}
    refused = victim.post("/login", data=data)
    assert refused.status_code == 400
    assert "The form expired" in refused.get_data(as_text=True)
    forged = app.test_client()
    payload, _, signature = attacker.get_cookie("session").value.partition(".")
    forged.set_cookie("session", f"{payload}.{signature[::-1]}")
    assert forged.post("/login", data=data).status_code == 400
    assert forged.get("/chats").status_code == 302


def test_an_ended_sessions_cookie_makes_an_anonymous_visitor_and_stores_nothing(guarded_app):
    app = guarded_app
    alice = app.test_client()
    register_through_the_form(alice, "alice")
    old_id = alice.get_cookie("session").value
    token = form_token(alice.get("/chats").get_data(as_text=True))
    assert alice.post("/logout", data={"csrf_token": token}).status_code == 303
    before = stored_sessions(app)
    thief = app.test_client()
    thief.set_cookie("session", old_id)
    assert thief.get("/chats").status_code == 302
    assert thief.get("/login").status_code == 200
    assert stored_sessions(app) == before
    assert "." in thief.get_cookie("session").value
    assert log_in_through_the_form(alice) == 303
