"""Settings, the secret key, the schema's versions and a restart on the same database."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

import database
import db_commands
from app import create_app
from serving import lan_address
from settings import DEFAULTS, load_secret_key
from tests.conftest import PASSWORD, make_config, register


def test_settings_come_from_the_environment(make_app, monkeypatch):
    monkeypatch.setenv("MAX_MESSAGE_LENGTH", "123")
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "true")
    monkeypatch.setenv("HOST", "127.0.0.1")
    app = make_app()
    assert app.config["MAX_MESSAGE_LENGTH"] == 123
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["HOST"] == "127.0.0.1"


def test_the_documented_defaults():
    assert DEFAULTS["HOST"] == "0.0.0.0"
    assert DEFAULTS["PORT"] == 5000
    assert DEFAULTS["DATABASE_URL"] == "sqlite:///instance/messenger.db"
    assert DEFAULTS["UPLOAD_FOLDER"] == "uploads"
    assert DEFAULTS["SECRET_KEY"] is None


def test_secret_key_is_generated_once_and_readable_by_its_owner_only(tmp_path):
    first = load_secret_key(tmp_path)
    assert len(first) == 64
    assert load_secret_key(tmp_path) == first
    mode = stat.S_IMODE(os.stat(tmp_path / "secret_key").st_mode)
    assert mode == 0o600


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///instance/messenger.db", "/srv/chat/instance/messenger.db"),
        ("sqlite:////var/lib/chat.db", "/var/lib/chat.db"),
    ],
)
def test_database_url(url, expected):
    assert database.sqlite_path(url, "/srv/chat") == expected


@pytest.mark.parametrize("url", ["postgres://x", "sqlite:///:memory:", "chat.db"])
def test_database_url_refused(url):
    with pytest.raises(ValueError):
        database.sqlite_path(url, "/srv/chat")


def test_schema_is_versioned_and_an_old_sqlite_database_upgrades_in_place(tmp_path):
    path = tmp_path / "old.db"
    sections = database.schema_versions(database.SCHEMA_FILES["sqlite"].read_text())
    newest = sections[-1][0]
    # Versions only grow; gaps are allowed (work done side by side takes its own numbers).
    versions = [v for v, _ in sections]
    assert versions[0] == 1 and versions == sorted(set(versions))
    old = sqlite3.connect(path)  # a database made by the first release
    old.executescript(sections[0][1] + "\nPRAGMA user_version = 1;")
    old.execute("INSERT INTO users (username, password_hash, created_at) VALUES ('x', 'h', 0)")
    old.commit()
    old.close()
    upgraded = database.Database(f"sqlite:///{path}", "/")
    assert upgraded.init_schema() == newest
    assert upgraded.init_schema() == newest  # a second start changes nothing
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT username FROM users").fetchall() == [("x",)]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == newest
    columns = {row[1] for row in conn.execute("PRAGMA table_info(attachments)")}
    assert {"width", "height"} <= columns
    triggers = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
    assert triggers == [("messages_move_last_message",)]
    conn.close()


def test_both_databases_have_the_same_schema_versions():
    versions = {
        dialect: [v for v, _ in database.schema_versions(path.read_text())]
        for dialect, path in database.SCHEMA_FILES.items()
    }
    assert versions["sqlite"] == versions["postgresql"]


def test_a_restart_on_the_same_database_keeps_users_chats_and_messages(tmp_path, database_url):
    config = make_config(tmp_path, DATABASE_URL=database_url)
    app = create_app(config)
    alice = app.test_client()
    register(alice, "alice")
    register(app.test_client(), "bob")
    with app.app_context():
        bob_id = db_commands.get_user_credentials("bob")["id"]
    chat_id = int(alice.post("/add", data={"user_id": bob_id}).headers["Location"].split("=")[1])
    from app import socketio

    tab = socketio.test_client(app, flask_test_client=alice)
    tab.emit(
        "message_sent",
        {"chat_id": chat_id, "body": "still here?", "client_id": "r1"},
        callback=True,
    )
    tab.disconnect()

    restarted = create_app(config)
    bob = restarted.test_client()
    response = bob.post("/login", data={"username": "bob", "password": PASSWORD})
    assert response.status_code == 303
    bob_tab = socketio.test_client(restarted, flask_test_client=bob)
    chats = bob_tab.emit("list_chats", {}, callback=True)["chats"]
    assert [(c["name"], c["unread_count"]) for c in chats][0] == ("alice", 1)
    history = bob_tab.emit("join_chat", {"chat_id": chat_id}, callback=True)["messages"]
    assert [m["body"] for m in history] == ["still here?"]
    bob_tab.disconnect()
    for started in (app, restarted):
        started.extensions["database"].close()


def test_lan_address_is_not_loopback():
    address = lan_address()
    assert address is None or not address.startswith("127.")
