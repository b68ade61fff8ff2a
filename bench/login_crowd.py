"""Another user's round trips while a crowd logs in at once, with the real password hash.

Starts ``python app.py`` from ``--app-dir`` (scrypt, the default method), registers
``--people`` users and bob, connects bob's socket, then ``--rounds`` times logs everyone in
together while bob sends messages one after another; prints bob's round-trip times.
Compare two checkouts with ``--app-dir``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests
import socketio

from bench.servers import ROOT, start_chat

PASSWORD = "correct horse battery"


def http_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # loopback only, never through a proxy
    return session


def post_form(url: str, http: requests.Session, path: str, **fields: str) -> None:
    """Submit the login or register form with its CSRF token; it must log in."""
    page = http.get(url + path).text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = http.post(url + path, data={"csrf_token": token, **fields}, allow_redirects=False)
    if response.status_code != 303:
        raise RuntimeError(f"{path} answered {response.status_code}")


def measure(url: str, people: int, rounds: int) -> list[float]:
    """Bob's round trips in milliseconds during ``rounds`` crowds of ``people`` logins."""
    names = [f"user{n}" for n in range(people)]
    bob_http = http_session()
    for name, http in [*((name, http_session()) for name in names), ("bob", bob_http)]:
        fields = {"username": name, "password": PASSWORD, "confirmation": PASSWORD}
        post_form(url, http, "/register", **fields)
    bob = socketio.Client(reconnection=False, http_session=bob_http)
    bob.connect(url, transports=["websocket"], wait_timeout=10)
    chat = bob.call("list_chats", {}, timeout=10)["chats"][0]["id"]
    rtts: list[float] = []
    try:
        for round_ in range(rounds):
            crowd = [
                threading.Thread(
                    target=post_form,
                    args=(url, http_session(), "/login"),
                    kwargs={"username": name, "password": PASSWORD},
                )
                for name in names
            ]
            for thread in crowd:
                thread.start()
            sent = 0
            while sent == 0 or any(thread.is_alive() for thread in crowd):
                started = time.perf_counter()
                payload = {"chat_id": chat, "body": "x", "client_id": f"r{round_}-{sent}"}
                ack = bob.call("message_sent", payload, timeout=60)
                rtts.append((time.perf_counter() - started) * 1000)
                if not ack["ok"]:
                    raise RuntimeError(f"bob's message was refused: {ack}")
                sent += 1
            for thread in crowd:
                thread.join()
    finally:
        bob.disconnect()
    return rtts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app-dir", type=Path, default=ROOT)
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="login-crowd-"))
    server = start_chat(folder, args.app_dir.resolve(), PASSWORD_HASH_METHOD="scrypt")
    try:
        rtts = sorted(measure(server.url, args.people, args.rounds))
    finally:
        server.stop()
    p99 = rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))]
    print(
        f"{args.app_dir.resolve().name}: {args.rounds} x {args.people} logins at once; "
        f"bob's round trips n={len(rtts)} p50={statistics.median(rtts):.1f} ms "
        f"p99={p99:.1f} ms max={rtts[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
