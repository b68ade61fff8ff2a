"""Roles and administration: the first account is the admin, deactivation, the admin page
and its actions, one-time sign-in links, registration open / closed / by invite, the
password change, and ``flask users``."""

from __future__ import annotations

import re
import threading

import pytest

import accounts
from tests.conftest import PASSWORD, query, received, register


def role_of(app, name):
    return query(app, "SELECT role FROM users WHERE username = ?", (name,))[0]["role"]


def test_the_first_account_is_the_admin_and_the_others_members(app, alice, bob):
    assert role_of(app, "alice") == "admin"
    assert role_of(app, "bob") == "member"
    with app.app_context():
        assert accounts.is_admin(alice.id) and not accounts.is_admin(bob.id)


def test_two_registering_at_once_make_one_admin(app):
    """The admin is claimed in the account's own transaction: never two."""
    results = []

    def sign_up(name):
        results.append(register(app.test_client(), name).status_code)

    threads = [threading.Thread(target=sign_up, args=(f"user{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [303] * 6
    roles = [row["role"] for row in query(app, "SELECT role FROM users")]
    assert sorted(roles) == ["admin"] + ["member"] * 5


def test_only_admins_reach_the_admin_page_and_its_actions(app, alice, bob, client):
    assert alice.http.get("/admin").status_code == 200
    assert bob.http.get("/admin").status_code == 403
    assert client.get("/admin").status_code == 302  # to the login page
    for action in ("deactivate", "make-admin", "sign-in-link", "activate"):
        assert bob.http.post(f"/admin/users/{alice.id}/{action}").status_code == 403
    assert bob.http.post("/admin/registration", data={"registration": "closed"}).status_code == 403
    assert role_of(app, "bob") == "member"
    assert query(app, "SELECT registration FROM site")[0]["registration"] == "open"


def test_an_admin_makes_another_admin(app, alice, bob):
    assert alice.http.post(f"/admin/users/{bob.id}/make-admin").status_code == 303
    assert role_of(app, "bob") == "admin"
    assert bob.http.get("/admin").status_code == 200


def test_deactivation_closes_every_socket_keeps_messages_and_refuses_login(app, alice, bob, chat):
    message = bob.send(chat, "still here")
    tabs = [bob.tab, bob.open_tab()]
    response = alice.http.post(f"/admin/users/{bob.id}/deactivate")
    assert response.status_code == 303
    for tab in tabs:
        assert not tab.is_connected()
    assert bob.http.get("/chats").status_code == 302  # his session ended too
    login = bob.http.post("/login", data={"username": "bob", "password": PASSWORD})
    assert login.status_code == 403
    assert b"deactivated" in login.data
    history = alice.call("join_chat", {"chat_id": chat})["messages"]
    assert message["id"] in [m["id"] for m in history]

    assert alice.http.post(f"/admin/users/{bob.id}/activate").status_code == 303
    login = bob.http.post("/login", data={"username": "bob", "password": PASSWORD})
    assert login.status_code == 303


def test_an_admin_cannot_deactivate_themselves(alice):
    assert alice.http.post(f"/admin/users/{alice.id}/deactivate").status_code == 400
    assert alice.http.get("/admin").status_code == 200


def sign_in_path(response):
    return re.search(rb'value="http://localhost(/sign-in/[^"]+)"', response.data).group(1).decode()


def test_a_sign_in_link_works_once_then_asks_for_a_new_password(app, alice, bob, client):
    path = sign_in_path(alice.http.post(f"/admin/users/{bob.id}/sign-in-link"))
    rows = query(app, "SELECT token_hash FROM sign_in_links")
    assert path.rsplit("/", 1)[1] not in str(rows), "only the hash is stored"
    assert client.get(path).status_code == 200  # a preview does not use it
    response = client.post(path)
    assert response.status_code == 303 and response.headers["Location"] == "/settings"
    assert b"choose a new password" in client.get("/settings").data
    changed = client.post(
        "/settings/password", data={"password": "new password 1", "confirmation": "new password 1"}
    )
    assert changed.status_code == 303
    assert app.test_client().post(path).status_code == 410
    login = app.test_client().post("/login", data={"username": "bob", "password": "new password 1"})
    assert login.status_code == 303


def test_a_sign_in_link_expires_after_an_hour(app, alice, bob, monkeypatch):
    import db_commands
    from helpers import now_ms

    path = sign_in_path(alice.http.post(f"/admin/users/{bob.id}/sign-in-link"))
    an_hour_later = now_ms() + accounts.SIGN_IN_LINK_SECONDS * 1000 + 1000
    monkeypatch.setattr(db_commands, "now_ms", lambda: an_hour_later)
    assert app.test_client().get(path).status_code == 410
    assert app.test_client().post(path).status_code == 410


def test_registration_closed_refuses_and_the_invite_link_admits(app, alice):
    alice.http.post("/admin/registration", data={"registration": "closed"})
    assert register(app.test_client(), "dave").status_code == 403
    assert app.test_client().get("/register").status_code == 403

    alice.http.post("/admin/registration", data={"registration": "invite"})
    page = alice.http.get("/admin").data
    link = re.search(rb'value="http://localhost(/register\?invite=[^"]+)"', page).group(1).decode()
    assert b"QR code of the invite link" in page
    assert register(app.test_client(), "dave").status_code == 403
    visitor = app.test_client()
    assert visitor.get(link).status_code == 200
    invite = link.split("=", 1)[1]
    response = visitor.post(
        "/register",
        data={"username": "dave", "password": PASSWORD, "confirmation": PASSWORD, "invite": invite},
    )
    assert response.status_code == 303

    alice.http.post("/admin/registration", data={"reset_invite": "1"})
    response = app.test_client().post(
        "/register",
        data={"username": "erin", "password": PASSWORD, "confirmation": PASSWORD, "invite": invite},
    )
    assert response.status_code == 403


def test_a_password_change_needs_the_current_one_and_ends_the_other_sessions(app, make_user):
    alice = make_user("alice")
    phone = app.test_client()
    assert phone.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 303
    from flask_socketio import SocketIOTestClient

    from app import socketio

    phone_tab = socketio.test_client(app, flask_test_client=phone)
    own_tab = alice.tab
    wrong = alice.http.post(
        "/settings/password",
        data={
            "current_password": "nope",
            "password": "brand new pw",
            "confirmation": "brand new pw",
        },
    )
    assert wrong.status_code == 400
    assert phone.get("/chats").status_code == 200
    response = alice.http.post(
        "/settings/password",
        data={
            "current_password": PASSWORD,
            "password": "brand new pw",
            "confirmation": "brand new pw",
        },
    )
    assert response.status_code == 303
    assert not phone_tab.is_connected()
    assert phone.get("/chats").status_code == 302
    assert own_tab.is_connected()
    assert alice.http.get("/chats").status_code == 200
    refused = socketio.test_client(app, flask_test_client=phone)
    assert not refused.is_connected()
    assert isinstance(refused, SocketIOTestClient)


@pytest.mark.parametrize("admin_flag", [False, True])
def test_flask_users_commands(app, admin_flag):
    runner = app.test_cli_runner()
    args = ["users", "create", "root", "--password", PASSWORD]
    result = runner.invoke(args=args + (["--admin"] if admin_flag else []))
    assert result.exit_code == 0, result.output
    assert "Created root (admin)." in result.output  # the first account, either way
    result = runner.invoke(args=["users", "create", "bob", "--password", PASSWORD])
    assert "Created bob (member)." in result.output
    assert runner.invoke(args=["users", "create", "bob", "--password", PASSWORD]).exit_code == 1
    assert runner.invoke(args=["users", "create", "x!", "--password", PASSWORD]).exit_code == 1

    assert runner.invoke(args=["users", "make-admin", "bob"]).exit_code == 0
    assert role_of(app, "bob") == "admin"
    assert runner.invoke(args=["users", "deactivate", "bob"]).exit_code == 0
    listed = runner.invoke(args=["users", "list"]).output
    assert "bob\tadmin\tdeactivated" in listed and "root\tadmin\tactive" in listed
    assert runner.invoke(args=["users", "reset-link", "bob"]).exit_code == 1
    assert runner.invoke(args=["users", "activate", "bob"]).exit_code == 0
    result = runner.invoke(args=["users", "reset-link", "bob"])
    assert result.exit_code == 0
    url = result.output.strip()
    assert re.fullmatch(r"http://localhost:\d+/sign-in/[\w-]+", url)
    visitor = app.test_client()
    assert visitor.post(url.split(":", 2)[2].split("/", 1)[1].join(["/", ""])).status_code == 303
    assert runner.invoke(args=["users", "deactivate", "nobody"]).exit_code == 1


def test_a_deactivated_user_is_not_found_and_cannot_be_invited(app, alice, bob, carol):
    alice.http.post(f"/admin/users/{carol.id}/deactivate")
    found = alice.http.get("/find?q=carol", headers={"Accept": "application/json"}).get_json()
    assert found == []
    chat = alice.call("create_channel", {"name": "Inner", "private": True})["chat"]
    ack = alice.call("invite_to_channel", {"chat_id": chat["id"], "user_id": carol.id})
    assert ack == {"ok": False, "error": "There is no such person."}
    assert received(bob.tab, "chat_added") == []
