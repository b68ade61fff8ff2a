"""Safe on a shared network: every event and route checked, hostile payloads refused,
floods slowed, sessions ended for real, and the headers that keep a browser safe."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import create_app, socketio
from events import HANDLERS
from rate_limits import TOO_FAST
from tests.conftest import PASSWORD, make_config, query, received, register
from tests.postgres import postgres_schema

# -- every event and every route is checked -------------------------------------------------

# How to aim each event at a chat; events that name no chat are listed with the reason.
CHAT_EVENTS = {
    "join_chat": lambda chat: {"chat_id": chat},
    "message_history_is_scrolled_to_the_top": lambda chat: {"chat_id": chat, "before_id": 99},
    "message_history_is_scrolled_to_the_bottom": lambda chat: {"chat_id": chat, "after_id": 1},
    "message_sent": lambda chat: {"chat_id": chat, "body": "hi", "client_id": "sec-1"},
    "new_message_count_updated": lambda chat: {"chat_id": chat, "last_read_id": 1},
    "typing": lambda chat: {"chat_id": chat},
    "join_channel": lambda chat: {"chat_id": chat},
    "list_members": lambda chat: {"chat_id": chat},
}
NO_CHAT_EVENTS = {
    "create_channel": "creates a chat; anyone logged in may",
    "list_chats": "lists only the caller's own chats",
}


def test_every_event_is_in_the_access_table():
    """A handler added without a row here fails the suite until its checks are tested."""
    assert set(HANDLERS) == set(CHAT_EVENTS) | set(NO_CHAT_EVENTS)


@pytest.mark.parametrize("event", sorted(HANDLERS))
def test_every_event_refuses_a_socket_without_a_logged_in_user(app, event):
    with app.test_request_context("/socket.io/"):
        assert HANDLERS[event]({}) == {"ok": False, "error": "Please log in again."}


def test_a_logged_out_browser_cannot_open_a_socket(app, alice):
    alice.http.post("/logout")
    tab = socketio.test_client(app, flask_test_client=alice.http)
    assert not tab.is_connected()


@pytest.mark.parametrize("event", sorted(CHAT_EVENTS))
def test_every_chat_event_refuses_a_stranger_and_changes_nothing(app, alice, bob, carol, event):
    chat = alice.direct_chat_with(bob)
    alice.send(chat, "private")
    before = snapshot(app)
    ack = carol.call(event, CHAT_EVENTS[event](chat))
    assert ack["ok"] is False
    assert ack["error"] in {
        "This chat does not exist or you are not in it.",
        "This channel does not exist.",
    }
    assert snapshot(app) == before


ROUTES = {
    # rule: (method, example url, needs a login, member-only)
    "/static/<path:filename>": ("GET", "/static/style.css", False, False),
    "/manifest.webmanifest": ("GET", "/manifest.webmanifest", False, False),
    "/sw.js": ("GET", "/sw.js", False, False),
    "/offline": ("GET", "/offline", False, False),
    "/register": ("GET", "/register", False, False),
    "/login": ("GET", "/login", False, False),
    "/logout": ("POST", "/logout", False, False),
    "/": ("GET", "/", True, False),
    "/find": ("GET", "/find?q=a", True, False),
    "/add": ("POST", "/add", True, False),
    "/chats": ("GET", "/chats?chat={chat}", True, True),
    "/upload": ("POST", "/upload", True, True),
    "/uploads/<id:attachment_id>": ("GET", "/uploads/{attachment}", True, True),
    "/uploads/<id:attachment_id>/thumbnail": (
        "GET",
        "/uploads/{attachment}/thumbnail",
        True,
        True,
    ),
}


def test_every_route_is_in_the_access_table(app):
    assert {rule.rule for rule in app.url_map.iter_rules()} == set(ROUTES)


@pytest.fixture
def private_things(alice, bob):
    import io

    from PIL import Image

    chat = alice.direct_chat_with(bob)
    buffer = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buffer, "PNG")
    response = alice.http.post(
        "/upload",
        data={
            "chat_id": str(chat),
            "client_id": "p",
            "file": (io.BytesIO(buffer.getvalue()), "p.png"),
        },
        content_type="multipart/form-data",
    )
    return {"chat": chat, "attachment": response.get_json()["message"]["attachment"]["id"]}


@pytest.mark.parametrize("rule", sorted(ROUTES))
def test_every_route_refuses_the_logged_out_and_strangers(app, carol, private_things, rule):
    method, url, needs_login, member_only = ROUTES[rule]
    url = url.format(**private_things)
    form = {"chat_id": str(private_things["chat"]), "client_id": "x"} if rule == "/upload" else {}
    logged_out = app.test_client().open(url, method=method, data=form)
    if needs_login:
        assert logged_out.status_code in {302, 401}
        if logged_out.status_code == 302:
            assert logged_out.headers["Location"].startswith("/login")
    else:
        assert logged_out.status_code in {200, 303}
    if member_only:
        assert carol.http.open(url, method=method, data=form).status_code == 404


# -- hostile payloads ---------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = ["chat_id", "before_id", "after_id", "last_read_id", "body", "client_id", "name"]
PAYLOADS = JSON_VALUES | st.dictionaries(
    st.sampled_from(FIELDS),
    st.integers(-(2**64), 2**64) | st.sampled_from([1, 2, 3]) | JSON_VALUES,
    max_size=4,
)


def snapshot(app) -> tuple:
    """What a refused payload must not change."""
    return (
        query(app, "SELECT COUNT(*) AS n FROM users"),
        query(app, "SELECT id, kind, name, last_message_id FROM chats ORDER BY id"),
        query(
            app,
            "SELECT chat_id, user_id, last_read_message_id FROM chat_members"
            " ORDER BY chat_id, user_id",
        ),
        query(app, "SELECT id, body FROM messages ORDER BY id"),
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzz_world(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    with contextlib.ExitStack() as stack:
        url = (
            f"sqlite:///{folder / 'chat.db'}"
            if request.param == "sqlite"
            else stack.enter_context(postgres_schema())
        )
        app = create_app(make_config(folder, DATABASE_URL=url, RATELIMIT_ENABLED=False))
        stack.callback(app.extensions["database"].close)
        yield from _fuzz_people(app)


def _fuzz_people(app):
    people = {}
    for name in ("alice", "bob", "carol"):
        http = app.test_client()
        register(http, name)
        people[name] = (http, socketio.test_client(app, flask_test_client=http))
    alice_http = people["alice"][0]
    with alice_http.session_transaction() as session:
        alice_id = session["user_id"]
    bob_http = people["bob"][0]
    bob_http.post("/add", data={"user_id": alice_id})  # chat 2: alice and bob; carol is not in it
    yield app, people
    for _, tab in people.values():
        tab.disconnect()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=st.sampled_from(sorted(HANDLERS)), payload=PAYLOADS)
def test_fuzzed_payloads_never_break_the_server_or_change_data_when_refused(
    fuzz_world, event, payload
):
    app, people = fuzz_world
    carol_tab = people["carol"][1]
    before = snapshot(app)
    ack = carol_tab.emit(event, payload, callback=True)
    assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), ack
    if not ack["ok"]:
        assert isinstance(ack["error"], str) and ack["error"].endswith((".", "?"))
        assert ack["error"] != "Something went wrong on the server. Please try again."
        assert snapshot(app) == before
    assert carol_tab.is_connected()
    bob_tab = people["bob"][1]
    assert bob_tab.emit("list_chats", {}, callback=True)["ok"]  # everyone else is served


# -- floods ------------------------------------------------------------------------------


def test_a_flood_of_messages_is_slowed_and_others_keep_their_service(app, alice, bob):
    oks = [
        alice.call("message_sent", {"chat_id": 1, "body": f"spam {n}", "client_id": f"s{n}"})
        for n in range(25)
    ]
    assert [ack["ok"] for ack in oks] == [True] * 20 + [False] * 5
    assert oks[-1]["error"] == TOO_FAST == "You are sending too fast. Please wait a moment."
    assert oks[-1]["code"] == "rate_limited"
    assert 1 <= oks[-1]["retry_after"] <= 2
    assert bob.send(1, "I can still talk")["body"] == "I can still talk"


def test_typing_and_channel_creation_are_limited(app, alice):
    typing = [alice.call("typing", {"chat_id": 1})["ok"] for _ in range(12)]
    assert typing == [True] * 10 + [False] * 2
    created = [alice.call("create_channel", {"name": f"c{n}"}) for n in range(6)]
    assert [ack["ok"] for ack in created] == [True] * 5 + [False]
    assert created[-1]["error"] == TOO_FAST


def test_uploads_are_limited(make_app):
    import io

    app = make_app(UPLOAD_RATE_LIMIT="2 per minute")
    http = app.test_client()
    register(http, "alice")
    codes = [
        http.post(
            "/upload",
            data={"chat_id": "1", "client_id": f"u{n}", "file": (io.BytesIO(b"hi"), "a.txt")},
            content_type="multipart/form-data",
            headers={"Accept": "application/json"},
        )
        for n in range(3)
    ]
    assert [r.status_code for r in codes] == [201, 201, 429]
    assert codes[-1].get_json() == {"ok": False, "error": TOO_FAST, "code": "rate_limited"}
    assert int(codes[-1].headers["Retry-After"]) > 0


def test_login_is_throttled_per_account_with_one_answer_for_every_failure(make_app):
    app = make_app(LOGIN_RATE_LIMIT="3 per minute")
    register(app.test_client(), "alice")
    attacker = app.test_client()
    answers = [
        attacker.post("/login", data={"username": "alice", "password": f"guess {n}"})
        for n in range(3)
    ]
    assert {r.status_code for r in answers} == {400}
    blocked = attacker.post("/login", data={"username": "alice", "password": PASSWORD})
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.get_data(as_text=True)
    with attacker.session_transaction() as session:
        assert "user_id" not in session


def test_login_is_throttled_per_address_across_accounts(make_app):
    app = make_app(LOGIN_RATE_LIMIT="3 per minute")
    attacker = app.test_client()
    codes = [
        attacker.post("/login", data={"username": f"user{n}", "password": "x"}).status_code
        for n in range(4)
    ]
    assert codes == [400, 400, 400, 429]


def test_successful_logins_do_not_use_up_the_limit(make_app):
    app = make_app(LOGIN_RATE_LIMIT="2 per minute")
    register(app.test_client(), "alice")
    for _ in range(4):
        http = app.test_client()
        assert (
            http.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 303
        )


def test_registration_is_throttled_per_address(make_app):
    app = make_app(REGISTER_RATE_LIMIT="2 per hour")
    codes = [register(app.test_client(), f"user{n}").status_code for n in range(3)]
    assert codes == [303, 303, 429]


def test_socket_messages_are_bounded_in_size(app):
    assert socketio.server.eio.max_http_buffer_size == app.config["SOCKET_MAX_MESSAGE_BYTES"]


# -- sessions -------------------------------------------------------------------------------


def test_session_cookie_is_httponly_and_samesite_lax(client):
    response = register(client, "alice")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_session_cookie_is_secure_when_served_over_https(make_app):
    app = make_app(SESSION_COOKIE_SECURE=True)
    assert "Secure" in register(app.test_client(), "alice").headers["Set-Cookie"]


def test_logout_destroys_the_session_on_the_server(app, alice):
    stolen = alice.http.get_cookie("session").value
    alice.http.post("/logout")
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/chats").status_code == 302


def test_logout_closes_that_sessions_sockets_at_once(app, alice):
    other_device = app.test_client()
    other_device.post("/login", data={"username": "alice", "password": PASSWORD})
    elsewhere = socketio.test_client(app, flask_test_client=other_device)
    tabs = [alice.open_tab(), alice.open_tab()]
    alice.http.post("/logout")
    assert [tab.is_connected() for tab in tabs] == [False, False]
    assert elsewhere.is_connected()
    assert elsewhere.emit("list_chats", {}, callback=True)["ok"]
    elsewhere.disconnect()


def test_a_stolen_sockets_session_copy_dies_with_the_logout(app, alice, bob):
    chat = alice.direct_chat_with(bob)
    tab = alice.open_tab()
    alice.http.post("/logout")
    assert not tab.is_connected()
    bob.call("join_chat", {"chat_id": chat})
    bob.tab.get_received()
    assert received(bob.tab) == []


# -- headers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/login", "/register", "/chats", "/find?q=", "/static/style.css", "/nope"]
)
def test_every_response_carries_the_protective_headers(alice, path):
    response = alice.http.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_pages_have_no_inline_script_or_handler(alice):
    import re

    for path in ["/login", "/register", "/", "/find", "/chats"]:
        page = alice.http.get(path).get_data(as_text=True)
        for attributes, content in re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.S):
            if 'type="application/json"' not in attributes:
                assert "src=" in attributes and not content.strip(), (path, attributes)
        assert not re.search(r"\son[a-z]+\s*=", page), path
        assert not re.search(r"\sstyle\s*=", page), path


# -- cross-site WebSocket hijacking --------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from tests.live_server import start_server

    server = start_server(
        tmp_path_factory.mktemp("origin"), PUBLIC_ORIGIN="https://chat.example.org"
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def live_same_origin(tmp_path_factory):
    from tests.live_server import start_server

    server = start_server(tmp_path_factory.mktemp("same-origin"))
    yield server
    server.stop()


def logged_in_cookie(server) -> str:
    from tests.live_server import RealClient

    person = RealClient(server, "victim").register()
    return person.cookie_header


def polling_handshake(server, origin: str | None, cookie: str):
    import requests

    headers = {"Cookie": cookie, **({"Origin": origin} if origin else {})}
    return requests.get(
        f"{server.url}/socket.io/?EIO=4&transport=polling",
        headers=headers,
        timeout=5,
        proxies={"http": "", "https": ""},
    )


def websocket_handshake(server, origin: str, cookie: str) -> bool:
    """True if the server accepted a WebSocket opened from ``origin``."""
    import websocket

    url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    try:
        conn = websocket.create_connection(url, origin=origin, cookie=cookie, timeout=5)
    except websocket.WebSocketException:
        return False
    try:
        conn.recv()  # Engine.IO's open packet
        conn.send("40")  # Socket.IO CONNECT to the default namespace
        for _ in range(10):  # broadcasts may come before the answer to CONNECT
            frame = conn.recv()
            if frame.startswith("40"):
                return True
            if frame.startswith("44"):
                return False
        return False
    finally:
        conn.close()


@pytest.mark.slow
def test_a_foreign_page_cannot_open_a_socket_with_our_cookies(live_same_origin):
    cookie = logged_in_cookie(live_same_origin)
    own = live_same_origin.url
    assert polling_handshake(live_same_origin, own, cookie).status_code == 200
    assert polling_handshake(live_same_origin, "http://evil.example", cookie).status_code == 400
    assert websocket_handshake(live_same_origin, own, cookie) is True
    assert websocket_handshake(live_same_origin, "http://evil.example", cookie) is False


@pytest.mark.slow
def test_the_public_origin_setting_admits_the_proxy_origin_only(live):
    cookie = logged_in_cookie(live)
    assert polling_handshake(live, "https://chat.example.org", cookie).status_code == 200
    assert polling_handshake(live, "http://evil.example", cookie).status_code == 400
    assert websocket_handshake(live, "https://chat.example.org", cookie) is True
    assert websocket_handshake(live, "https://evil.example", cookie) is False


def test_forwarded_addresses_count_only_behind_a_declared_proxy(make_app):
    """Without TRUSTED_PROXIES a forged X-Forwarded-For cannot dodge the login limit."""

    def codes(app) -> list[int]:
        return [
            app.test_client()
            .post(
                "/login",
                data={"username": f"u{n}", "password": "x"},
                headers={"X-Forwarded-For": f"10.0.0.{n}"},
            )
            .status_code
            for n in range(3)
        ]

    assert codes(make_app(LOGIN_RATE_LIMIT="2 per minute")) == [400, 400, 429]
    behind_proxy = make_app(LOGIN_RATE_LIMIT="2 per minute", TRUSTED_PROXIES=1)
    assert codes(behind_proxy) == [400, 400, 400]


def test_logged_in_pages_are_not_kept_in_the_browsers_cache(alice, client):
    assert alice.http.get("/chats").headers["Cache-Control"] == "no-store"
    assert alice.http.get("/find?q=").headers["Cache-Control"] == "no-store"
    assert "no-store" not in client.get("/login").headers.get("Cache-Control", "")
