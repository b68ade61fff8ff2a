"""Sessions: nothing stored for anonymous visitors, forms still protected, and sockets that
end with the login session they were opened with."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import cachelib.file
import pytest

import broadcast
from app import socketio
from tests.conftest import PASSWORD, Clock, register

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


# -- sockets end with their session --------------------------------------------------------


def test_logging_in_as_bob_where_alice_was_logged_in_closes_her_sockets(app, alice, bob):
    """No logout in between: alice's session is replaced, and her open tabs close with it;
    her session on another device keeps its socket."""
    tabs = [alice.open_tab(), alice.open_tab()]
    phone = app.test_client()
    assert log_in(phone, "alice") == 303
    on_phone = socketio.test_client(app, flask_test_client=phone)
    assert log_in(alice.http, "bob") == 303
    assert [tab.is_connected() for tab in tabs] == [False, False]
    assert on_phone.is_connected()
    assert on_phone.emit("list_chats", {}, callback=True)["ok"]
    with alice.http.session_transaction() as session:
        assert session["user_id"] == bob.id
    on_phone.disconnect()


def test_a_socket_closes_once_its_session_expires_and_a_refreshed_one_stays(make_app, monkeypatch):
    """Sessions slide: a request pushes the expiry on. A socket whose session was not kept
    alive closes at the next check; the socket of a session in use stays."""
    clock = Clock()
    clock.now = time.time()
    monkeypatch.setattr(cachelib.file, "time", clock)
    app = make_app(PERMANENT_SESSION_LIFETIME=60)
    alice, bob = app.test_client(), app.test_client()
    register(alice, "alice")
    register(bob, "bob")
    alice_tab = socketio.test_client(app, flask_test_client=alice)
    bob_tab = socketio.test_client(app, flask_test_client=bob)
    clock.now += 30
    assert bob.get("/chats").status_code == 200  # bob's session now ends at +90
    broadcast.close_sockets_of_ended_sessions(app)
    assert alice_tab.is_connected() and bob_tab.is_connected()
    clock.now += 31
    broadcast.close_sockets_of_ended_sessions(app)
    assert not alice_tab.is_connected()
    assert bob_tab.is_connected()
    assert bob_tab.emit("list_chats", {}, callback=True)["ok"]
    assert alice.get("/chats").status_code == 302, "her session has ended for HTTP too"
    bob_tab.disconnect()


def log_in(http, name: str) -> int:
    return http.post("/login", data={"username": name, "password": PASSWORD}).status_code


@pytest.fixture(scope="module")
def short_sessions_server(tmp_path_factory):
    from tests.live_server import start_server

    server = start_server(
        tmp_path_factory.mktemp("short-sessions"),
        PERMANENT_SESSION_LIFETIME="3",
        PRESENCE_TTL_SECONDS="3",  # a heartbeat, and so a check, every second
    )
    yield server
    server.stop()


def test_on_a_real_server_a_socket_is_logged_out_when_its_session_expires(
    short_sessions_server,
):
    """Logins last 3 s after the last request here. Alice only keeps her socket open: it
    hears ``logged_out`` and closes. Carol keeps loading a page: her socket stays."""
    from tests.live_server import RealClient

    server = short_sessions_server
    alice = RealClient(server, "alice").register()
    carol = RealClient(server, "carol").register()
    alice.connect()
    carol.connect()
    deadline = time.monotonic() + 30
    while alice.sio.connected and time.monotonic() < deadline:
        assert carol.http.get(f"{server.url}/find?q=a", allow_redirects=False).status_code == 200
        time.sleep(0.5)
    assert not alice.sio.connected, "alice's socket outlived her session"
    assert alice.received("logged_out") == [{}]
    assert carol.sio.connected
    assert carol.call("list_chats")["ok"]
    assert carol.received("logged_out") == []
    carol.disconnect()


# -- a polling session belongs to the login that opened it ---------------------------------

POLLING = "/socket.io/?EIO=4&transport=polling"


def open_polling_session(http) -> str:
    """An Engine.IO polling handshake in this browser; its session id."""
    response = http.get(POLLING)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_data(as_text=True)
    assert body.startswith("0{"), body
    return json.loads(body[1:])["sid"]


def test_jsonp_is_refused_with_an_error_and_gives_no_session_id(app, alice):
    response = alice.http.get(POLLING + "&j=0")
    assert response.status_code == 400
    assert response.get_data(as_text=True) == "JSONP is not served."
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "___eio" not in response.get_data(as_text=True)


@pytest.mark.parametrize("query", ["", "&sid=unknown"])
def test_every_socketio_answer_carries_nosniff(app, alice, query):
    response = alice.http.get(POLLING + query)
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_polling_session_answers_only_the_cookie_it_was_opened_with(app, alice, bob):
    """alice's Engine.IO id, leaked, is useless in bob's browser or in one without cookies;
    alice's own requests go on."""
    sid = open_polling_session(alice.http)
    connected = alice.http.post(f"{POLLING}&sid={sid}", data="40")
    assert connected.status_code == 200
    for thief in (bob.http, app.test_client()):
        stolen = thief.get(f"{POLLING}&sid={sid}")
        assert stolen.status_code == 403
        assert stolen.get_data(as_text=True) == "This connection belongs to another login."
        assert thief.post(f"{POLLING}&sid={sid}", data='42["message_sent",{}]').status_code == 403
    answer = alice.http.get(f"{POLLING}&sid={sid}")
    assert answer.status_code == 200
    packets = answer.get_data(as_text=True).split("\x1e")
    assert any(packet.startswith("40{") for packet in packets), "alice's socket connected"
    alice.http.post(f"{POLLING}&sid={sid}", data="1")  # Engine.IO close


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from tests.live_server import start_server

    server = start_server(tmp_path_factory.mktemp("socket-guard"))
    yield server
    server.stop()


def test_on_a_real_server_a_leaked_engineio_id_is_useless_without_the_cookie(live):
    """On ``python app.py``: alice's polling session refuses a thief's polls and posts and
    a WebSocket upgrade with her id; alice's own polls are answered."""
    import requests
    import websocket

    from tests.live_server import RealClient

    alice = RealClient(live, "alice").register()
    url = f"{live.url}{POLLING}"
    handshake = alice.http.get(url)
    assert handshake.headers["X-Content-Type-Options"] == "nosniff"
    sid = json.loads(handshake.text[1:])["sid"]
    assert alice.http.post(f"{url}&sid={sid}", data="40").status_code == 200
    thief = requests.Session()
    thief.trust_env = False
    assert thief.get(f"{url}&sid={sid}").status_code == 403
    assert thief.post(f"{url}&sid={sid}", data='42["list_chats",{}]').status_code == 403
    upgrade = (
        live.url.replace("http://", "ws://") + f"/socket.io/?EIO=4&transport=websocket&sid={sid}"
    )
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(upgrade, timeout=5)
    assert refused.value.status_code == 403
    packets = alice.http.get(f"{url}&sid={sid}").text.split("\x1e")
    assert any(packet.startswith("40{") for packet in packets)
    alice.http.post(f"{url}&sid={sid}", data="1")


def test_with_redis_anonymous_visitors_store_nothing_and_ended_sessions_are_found(make_app):
    """Several workers keep sessions in Redis: anonymous visitors store nothing there, and
    the check behind closing sockets finds a session that Redis no longer has. (Socket.IO's
    test client cannot run with a message queue; the check is asked directly.)"""
    from tests.redis_server import TEST_REDIS_URL, redis_client, redis_prefix

    with redis_prefix() as prefix:
        app = make_app(REDIS_URL=TEST_REDIS_URL, REDIS_PREFIX=prefix, WTF_CSRF_ENABLED=True)
        alice, bob = app.test_client(), app.test_client()
        assert register_through_the_form(alice, "alice") == 303
        assert register_through_the_form(bob, "bob") == 303
        redis = redis_client()
        stored = set(redis.scan_iter(f"{prefix}:session:*"))
        assert len(stored) == 2
        for path in ANONYMOUS_PAGES:
            app.test_client().get(path)
        assert set(redis.scan_iter(f"{prefix}:session:*")) == stored
        ids = {alice.get_cookie("session").value, bob.get_cookie("session").value}
        assert app.session_interface.list_ended(ids) == set()
        redis.delete(f"{prefix}:session:{alice.get_cookie('session').value}")  # as on expiry
        assert app.session_interface.list_ended(ids) == {alice.get_cookie("session").value}
