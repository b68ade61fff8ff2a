"""Logging in under attack: guesses limited without locking the owner out, the same work
for an unknown name as for a wrong password, and password hashes that never stall the
other users of a real server."""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlencode

import pytest
import requests
from requests.adapters import HTTPAdapter
from werkzeug import security

from tests.conftest import PASSWORD, register
from tests.live_server import RealClient, csrf_token, start_server

# -- the same work for every failed login -------------------------------------------------


@pytest.fixture
def hashes(monkeypatch) -> list[str]:
    """The method of every password hash computed from now on, in order."""
    computed: list[str] = []
    real = security._hash_internal

    def counting(method: str, salt: str, password: str) -> tuple[str, str]:
        computed.append(method)
        return real(method, salt, password)

    monkeypatch.setattr(security, "_hash_internal", counting)
    return computed


@pytest.mark.parametrize("username", ["nobody", ""])
def test_an_unknown_name_costs_one_hash_of_the_same_method_as_a_wrong_password(
    app, client, hashes, username
):
    """Timing cannot tell which names exist: both failures compute one hash, same method."""
    register(client, "alice")
    hashes.clear()
    wrong = app.test_client().post("/login", data={"username": "alice", "password": "wrong!!"})
    assert wrong.status_code == 400
    assert len(hashes) == 1
    method_of_a_real_check = hashes.pop()
    unknown = app.test_client().post("/login", data={"username": username, "password": "x"})
    assert unknown.status_code == 400
    assert "Wrong username or password." in unknown.get_data(as_text=True)
    assert hashes == [method_of_a_real_check]


# -- guessing from many addresses ------------------------------------------------------------


def attempt(app, address: str, password: str, http=None) -> int:
    """One login as alice from ``address`` (in a fresh browser unless ``http`` is given)."""
    browser = http or app.test_client()
    response = browser.post(
        "/login",
        data={"username": "alice", "password": password},
        environ_base={"REMOTE_ADDR": address},
    )
    return response.status_code


def test_guesses_from_many_addresses_stop_at_the_account_limit_and_spare_the_owner(make_app):
    """A guess spread over addresses is stopped for the account, even with the right
    password from a new browser; the owner's own browser still logs in."""
    app = make_app(LOGIN_RATE_LIMIT="3 per minute", LOGIN_ACCOUNT_RATE_LIMIT="5 per minute")
    owner = app.test_client()
    assert register(owner, "alice").status_code == 303
    owner.post("/logout")
    guesses = [attempt(app, f"10.0.0.{n}", f"guess {n}") for n in range(1, 9)]
    assert guesses == [400] * 5 + [429] * 3
    assert attempt(app, "10.0.1.1", PASSWORD) == 429, "a new browser waits like the guesser"
    assert attempt(app, "10.0.2.2", PASSWORD, http=owner) == 303
    assert owner.get("/chats").status_code == 200


def test_the_owners_browser_still_counts_against_its_own_address(make_app):
    """Sparing the owner's browser from the account limit does not let it guess freely."""
    app = make_app(LOGIN_RATE_LIMIT="3 per minute", LOGIN_ACCOUNT_RATE_LIMIT="100 per minute")
    owner = app.test_client()
    register(owner, "alice")
    codes = [attempt(app, "10.0.0.9", f"guess {n}", http=owner) for n in range(4)]
    assert codes == [400, 400, 400, 429]


def test_a_forged_device_cookie_spares_nothing(make_app):
    app = make_app(LOGIN_RATE_LIMIT="3 per minute", LOGIN_ACCOUNT_RATE_LIMIT="2 per minute")
    register(app.test_client(), "alice")
    forger = app.test_client()
    forger.set_cookie("login_device", '["alice"]')
    codes = [attempt(app, f"10.0.0.{n}", "guess", http=forger) for n in range(1, 4)]
    assert codes == [400, 400, 429]


def test_a_shared_browser_is_spared_for_each_account_it_logged_in_to(make_app):
    """alice and bob share a computer; both accounts are guessed at from elsewhere; each
    still logs in there."""
    app = make_app(LOGIN_RATE_LIMIT="100 per minute", LOGIN_ACCOUNT_RATE_LIMIT="2 per minute")
    shared = app.test_client()
    register(shared, "alice")
    register(shared, "bob")
    for name in ("alice", "bob"):
        codes = [
            app.test_client()
            .post(
                "/login",
                data={"username": name, "password": "guess"},
                environ_base={"REMOTE_ADDR": f"10.0.0.{n}"},
            )
            .status_code
            for n in range(3)
        ]
        assert codes == [400, 400, 429]
    for name in ("alice", "bob"):
        response = shared.post("/login", data={"username": name, "password": PASSWORD})
        assert response.status_code == 303


class FromAddress(HTTPAdapter):
    """Connections that leave from one loopback address (all of 127.0.0.0/8 is this host)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def browser_at(address: str) -> requests.Session:
    http = requests.Session()
    http.trust_env = False
    http.mount("http://", FromAddress(address))
    return http


def form_login(server, http: requests.Session, password: str) -> int:
    token = csrf_token(http.get(f"{server.url}/login").text)
    response = http.post(
        f"{server.url}/login",
        data={"username": "alice", "password": password, "csrf_token": token},
        allow_redirects=False,
    )
    return response.status_code


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory):
    server = start_server(
        tmp_path_factory.mktemp("guessing"),
        LOGIN_RATE_LIMIT="3 per minute",
        LOGIN_ACCOUNT_RATE_LIMIT="5 per minute",
    )
    yield server
    server.stop()


def test_guessing_from_other_loopback_addresses_does_not_lock_out_the_owner(guarded_server):
    """On a real server: alice registered from 127.0.0.1; someone guesses her password from
    127.0.0.2, .3 and .4 until both limits refuse them; a fresh browser at 127.0.0.5 is
    refused even with the right password; alice at 127.0.0.1 logs in."""
    server = guarded_server
    owner = RealClient(server, "alice", password=PASSWORD)
    owner.http.mount("http://", FromAddress("127.0.0.1"))
    owner.register()
    for cookie in [c for c in owner.http.cookies if c.name == "session"]:
        owner.http.cookies.clear(cookie.domain, cookie.path, cookie.name)  # a closed browser
    codes = []
    for address in ["127.0.0.2", "127.0.0.3", "127.0.0.4"]:
        guesser = browser_at(address)
        codes += [form_login(server, guesser, f"guess {n}") for n in range(3)]
    assert codes == [400] * 5 + [429] * 4
    assert form_login(server, browser_at("127.0.0.5"), PASSWORD) == 429
    assert form_login(server, owner.http, PASSWORD) == 303
    assert owner.http.get(f"{server.url}/chats", allow_redirects=False).status_code == 200


# -- password hashing never stalls the others -------------------------------------------------

# scrypt at eight times the default cost (0.4 s here): long enough that another user's
# requests during a login are many, whatever the machine's load.
HEAVY_SCRYPT = "scrypt:131072:8:1"
PARALLEL_LOGINS = 4
ANSWERED_DURING_THE_LOGINS = 10


@pytest.fixture(scope="module")
def hashing_server(tmp_path_factory):
    server = start_server(
        tmp_path_factory.mktemp("hashing"),
        PASSWORD_HASH_METHOD=HEAVY_SCRYPT,
        SEND_RATE_LIMIT="100000 per second",
    )
    yield server
    server.stop()


def post_login_raw(server, http: requests.Session, name: str, sent: threading.Event) -> bytes:
    """POST /login as ``name`` on a socket of its own; set ``sent`` once the request is
    written; return the status line of the answer."""
    token = csrf_token(http.get(f"{server.url}/login").text)
    body = urlencode({"username": name, "password": PASSWORD, "csrf_token": token})
    cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
    host = server.url.removeprefix("http://")
    request = (
        f"POST /login HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
    ).encode()
    address, port = host.split(":")
    with socket.create_connection((address, int(port)), timeout=60) as conn:
        conn.sendall(request)
        sent.set()
        return conn.makefile("rb").readline()


def test_parallel_logins_hash_off_the_loop_while_another_user_is_served_in_order(
    hashing_server,
):
    """Four people log in at once on a real ``python app.py``; bob, already connected,
    keeps sending. His messages are all stored and acknowledged in order, and many of them
    while the logins are still hashing (on the loop, none could be)."""
    server = hashing_server
    names = [f"user{n}" for n in range(PARALLEL_LOGINS)]
    browsers = []
    for name in names:
        person = RealClient(server, name, password=PASSWORD).register()
        person.http.cookies.clear()
        browsers.append(person.http)
    bob = RealClient(server, "bob", password=PASSWORD).register()
    bob.connect()
    general = bob.call("list_chats")["chats"][0]["id"]
    answers: list[tuple[float, bytes]] = []
    sent = [threading.Event() for _ in names]

    def log_in(index: int) -> None:
        status = post_login_raw(server, browsers[index], names[index], sent[index])
        answers.append((time.monotonic(), status))

    threads = [threading.Thread(target=log_in, args=(n,)) for n in range(PARALLEL_LOGINS)]
    for thread in threads:
        thread.start()
    for event in sent:
        assert event.wait(30), "a login request was never sent"
    acks: list[tuple[float, dict]] = []
    n = 0
    while any(thread.is_alive() for thread in threads):
        ack = bob.call("message_sent", {"chat_id": general, "body": f"m{n}", "client_id": f"b{n}"})
        acks.append((time.monotonic(), ack))
        n += 1
    for thread in threads:
        thread.join()
    bob.disconnect()

    assert sorted(status.split()[1] for _, status in answers) == [b"303"] * PARALLEL_LOGINS
    assert all(ack["ok"] for _, ack in acks), [ack for _, ack in acks if not ack["ok"]][:3]
    bodies = [ack["message"]["body"] for _, ack in acks]
    assert bodies == [f"m{i}" for i in range(len(acks))]
    ids = [ack["message"]["id"] for _, ack in acks]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    first_login_answer = min(at for at, _ in answers)
    during = sum(1 for at, _ in acks if at < first_login_answer)
    assert during >= ANSWERED_DURING_THE_LOGINS, (
        f"only {during} of bob's {len(acks)} messages were answered before the first login"
    )


def test_the_login_crowd_benchmark_runs_and_every_message_is_answered(tmp_path):
    """bench/login_crowd.py on a tiny crowd (no timing asserted: figures are in bench/)."""
    from bench import login_crowd, servers

    server = servers.start_chat(tmp_path, servers.ROOT)
    try:
        rtts = login_crowd.measure(server.url, people=2, rounds=1)
    finally:
        server.stop()
    assert rtts and all(rtt > 0 for rtt in rtts)


def test_guessing_the_current_password_in_settings_is_limited_like_logins(make_app):
    """A password change hashes the current password on the lane logins share: a logged-in
    session guessing it is stopped at the login budget, per user."""
    app = make_app(LOGIN_RATE_LIMIT="3 per minute")
    owner = app.test_client()
    assert register(owner, "alice").status_code == 303
    guess = {
        "current_password": "not it",
        "password": "brand new pw",
        "confirmation": "brand new pw",
    }
    codes = [owner.post("/settings/password", data=guess).status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]
