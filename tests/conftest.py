"""Fixtures: an app on a fresh database, named users with their own browsers' cookies,
and Socket.IO test clients that share those users' sessions."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_socketio import SocketIOTestClient

from app import create_app, socketio
from bench.servers import in_process_settings
from tests.postgres import postgres_schema

PASSWORD = "correct horse battery"


class Clock:
    """A time source that moves only when a test moves it (``clock.now += 5``)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def make_config(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """The settings of an app that keeps everything under ``tmp_path`` (its database too,
    unless ``DATABASE_URL`` is among the overrides)."""
    # Every count at once, so a test sees each change; tests/test_presence.py checks
    # the spacing with the interval set.
    return in_process_settings(tmp_path, **{"ONLINE_COUNT_INTERVAL_SECONDS": 0.0, **overrides})


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind: every test using it runs on both."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'chat.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def make_app(tmp_path: Path, database_url: str) -> Iterator[Any]:
    """``make_app(SETTING=value)``: an app on this test's database with some settings
    changed; its database connections are closed at the end of the test."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        folder = tmp_path / f"app{len(apps)}"
        built = create_app(make_config(folder, DATABASE_URL=database_url, **overrides))
        apps.append(built)
        return built

    yield make
    for built in apps:
        built.extensions["database"].close()


@pytest.fixture
def app(make_app: Any) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@dataclass
class User:
    """A person using the chat: their id, their browser (cookies) and their open tabs."""

    app: Flask
    name: str
    id: int
    http: FlaskClient
    tabs: list[SocketIOTestClient] = field(default_factory=list)

    def open_tab(self) -> SocketIOTestClient:
        """A new Socket.IO connection sharing this user's login, like a second tab."""
        tab = socketio.test_client(self.app, flask_test_client=self.http)
        assert tab.is_connected(), f"{self.name}'s socket was refused"
        self.tabs.append(tab)
        return tab

    @property
    def tab(self) -> SocketIOTestClient:
        """The user's first tab, opened on first use."""
        return self.tabs[0] if self.tabs else self.open_tab()

    def call(self, event: str, payload: Any = None, tab: SocketIOTestClient | None = None) -> Any:
        """Emit ``event`` and return its acknowledgement."""
        args = () if payload is None else (payload,)
        return (tab or self.tab).emit(event, *args, callback=True)

    def send(self, chat_id: int, body: str, client_id: str | None = None) -> dict[str, Any]:
        """Send a message and return the stored message from the ack."""
        ack = self.call(
            "message_sent",
            {"chat_id": chat_id, "body": body, "client_id": client_id or next(_client_ids)},
        )
        assert ack["ok"], ack
        return ack["message"]

    def direct_chat_with(self, other: User) -> int:
        """Open (or create) the direct chat with ``other`` through POST /add."""
        response = self.http.post("/add", data={"user_id": other.id})
        assert response.status_code == 303, response.data
        return int(response.headers["Location"].rsplit("=", 1)[1])


_client_ids = (f"c{n}" for n in itertools.count())


def query(app: Flask, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    """Rows of ``sql`` from the app's database, whichever database that is."""
    import db_commands

    with app.app_context():
        return db_commands.get_db().all(sql, params)


def register(http: FlaskClient, name: str, password: str = PASSWORD) -> Any:
    return http.post(
        "/register", data={"username": name, "password": password, "confirmation": password}
    )


@pytest.fixture
def make_user(app: Flask) -> Iterator[Any]:
    """Register a user with their own cookie jar and return a ``User``."""
    users: list[User] = []

    def make(name: str) -> User:
        http = app.test_client()
        response = register(http, name)
        assert response.status_code == 303, response.data
        with http.session_transaction() as session:
            user_id = session["user_id"]
        user = User(app, name, user_id, http)
        users.append(user)
        return user

    yield make
    for user in users:
        for tab in user.tabs:
            if tab.is_connected():
                tab.disconnect()


@pytest.fixture
def alice(make_user: Any) -> User:
    return make_user("alice")


@pytest.fixture
def bob(make_user: Any) -> User:
    return make_user("bob")


@pytest.fixture
def carol(make_user: Any) -> User:
    return make_user("carol")


@pytest.fixture
def chat(alice: User, bob: User) -> int:
    """A direct chat of alice and bob that bob has open, his tab's earlier events read."""
    chat_id = alice.direct_chat_with(bob)
    bob.call("join_chat", {"chat_id": chat_id})
    bob.tab.get_received()
    return chat_id


PRESENCE_EVENTS = {"presence_updated", "online_users_updated"}


def received(tab: SocketIOTestClient, name: str | None = None) -> list[dict[str, Any]]:
    """The payloads of the events ``tab`` received since the last call: of one name, or
    (``name=None``) every event but the presence broadcasts that go to everyone."""
    events = tab.get_received()
    if name is None:
        return [e["args"][0] for e in events if e["name"] not in PRESENCE_EVENTS]
    return [e["args"][0] for e in events if e["name"] == name]
