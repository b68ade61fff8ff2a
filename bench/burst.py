"""An innocent user's latency while one socket takes more than its share: a burst of
``join_chat`` frames sent without waiting for answers, then a client that asks for big
pages and never reads. Each checkout of the chat runs as ``python app.py`` with its
default limits.

    python -m bench.burst before=../chat-before now=. --frames 20000 --out burst.json
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests
import socketio
import websocket

from bench.servers import Server, start_chat

GENERAL = 1
BIG_BODY = "\N{GRINNING FACE}" * 4000  # 48 KB of JSON: each emoji travels as two \\u escapes
MAX_ID = 2**53 - 1
PASSWORD = "bench-password-1"


class RawSocketIO:
    """A Socket.IO client spoken by hand over a raw WebSocket, so that frames can go out
    without waiting for their answers, or the answers never be read at all."""

    def __init__(self, url: str, cookie: str, receive_buffer: int = 0):
        options = ((socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer),)
        self.ws = websocket.create_connection(
            url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
            header=[f"Cookie: {cookie}"],
            sockopt=options if receive_buffer else (),
            timeout=60,
        )
        self.sending = threading.Lock()  # a pong must not land inside a burst's bytes
        assert self.ws.recv().startswith("0")  # Engine.IO's open packet
        self.ws.send("40")  # join the default namespace
        while not (frame := self.ws.recv()).startswith("40"):
            assert frame.startswith("42"), frame  # an event emitted while connecting

    @staticmethod
    def frame(ack_id: int, event: str, payload: dict[str, Any]) -> bytes:
        """The WebSocket frame of ``event`` asking for acknowledgement ``ack_id``."""
        text = f"42{ack_id}" + json.dumps([event, payload])
        return websocket.ABNF.create_frame(text, websocket.ABNF.OPCODE_TEXT).format()

    def send_all(self, frames: list[bytes]) -> None:
        """Write every frame at once, as fast as the connection takes them."""
        with self.sending:
            self.ws.sock.sendall(b"".join(frames))

    def acks(self, count: int, seen: list[tuple[int, dict[str, Any]]]) -> None:
        """Read until ``count`` acknowledgements arrived, appending (ack id, answer)."""
        while len(seen) < count:
            frame = self.ws.recv()
            if frame == "2":  # Engine.IO ping
                with self.sending:
                    self.ws.send("3")
            elif frame.startswith("43"):
                ack_id, _bracket, rest = frame[2:].partition("[")
                seen.append((int(ack_id), json.loads("[" + rest)[0]))


class Person:
    """A registered user with an HTTP session and, once connected, a python-socketio client."""

    def __init__(self, url: str, name: str):
        self.url = url
        self.http = requests.Session()
        self.http.trust_env = False
        page = self.http.get(f"{url}/register").text
        token = page.split('name="csrf_token"', 1)[1].split('value="', 1)[1].split('"', 1)[0]
        response = self.http.post(
            f"{url}/register",
            data={
                "username": name,
                "password": PASSWORD,
                "confirmation": PASSWORD,
                "csrf_token": token,
            },
            allow_redirects=False,
        )
        assert response.status_code == 303, response.text[:300]
        self.sio = socketio.Client(reconnection=False)

    @property
    def cookie(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)

    def connect(self) -> None:
        self.sio.connect(
            self.url, headers={"Cookie": self.cookie}, transports=["websocket"], wait_timeout=20
        )

    def call(self, event: str, payload: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
        return self.sio.call(event, payload, timeout=timeout)


def innocent(bob: Person, stop: threading.Event, samples: list[float], errors: list[str]) -> None:
    """Open the chat, send, scroll, send, and now and then list the chats, at a brisk
    person's pace (within every default budget); time each answer (ms)."""
    n = 0
    while not stop.is_set():
        steps = [
            ("join_chat", {"chat_id": GENERAL}),
            ("message_sent", {"chat_id": GENERAL, "body": f"still here {n}"}),
            ("message_history_is_scrolled_to_the_top", {"chat_id": GENERAL, "before_id": MAX_ID}),
            ("message_sent", {"chat_id": GENERAL, "body": f"and here {n}"}),
        ]
        if n % 5 == 0:
            steps.append(("list_chats", {}))
        for event, payload in steps:
            if event == "message_sent":
                payload["client_id"] = uuid.uuid4().hex
            started = time.perf_counter()
            try:
                answer = bob.call(event, payload)
            except Exception as error:  # a timeout is a figure of this benchmark
                errors.append(f"{event}: {error}")
                continue
            samples.append((time.perf_counter() - started) * 1000)
            if not answer.get("ok"):
                errors.append(f"{event}: {answer.get('error')}")
            time.sleep(0.1)
        n += 1


def figures(samples: list[float]) -> dict[str, float]:
    """p50, p99 and the worst of a list of latencies (ms)."""
    if not samples:
        return {"count": 0}
    ordered = sorted(samples)
    return {
        "count": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        "max_ms": round(ordered[-1], 1),
    }


def measure(
    server: Server, disturbance: str, frames: int, pages: int, quiet_s: float
) -> dict[str, Any]:
    """The innocent user's figures when quiet, then during one disturbance ("burst" or
    "never_reads"), each on a fresh server so that one's memory does not hide the other's."""
    url = server.url
    tag = uuid.uuid4().hex[:6]
    alice, bob, mallory, carol = (
        Person(url, f"{n}-{tag}") for n in ("alice", "bob", "mallory", "carol")
    )
    left_open: list[RawSocketIO] = []
    bob.connect()
    result: dict[str, Any] = {}

    def phase(name: str, disturb: Any) -> None:
        stop = threading.Event()
        samples: list[float] = []
        errors: list[str] = []
        worker = threading.Thread(target=innocent, args=(bob, stop, samples, errors))
        memory_before = server.rss_kib()
        worker.start()
        extra = disturb()
        stop.set()
        worker.join()
        result[name] = {
            **figures(samples),
            "errors": len(errors),
            "first_errors": errors[:3],
            "server_rss_growth_mb": round((server.rss_kib() - memory_before) / 1024, 1),
            **extra,
        }
        print(name, result[name], flush=True)

    phase("quiet", lambda: time.sleep(quiet_s) or {})

    def burst() -> dict[str, Any]:
        raw = RawSocketIO(url, mallory.cookie)
        answers: list[tuple[int, dict[str, Any]]] = []
        reader = threading.Thread(target=raw.acks, args=(frames, answers), daemon=True)
        reader.start()
        started = time.perf_counter()
        raw.send_all([raw.frame(n, "join_chat", {"chat_id": GENERAL}) for n in range(frames)])
        reader.join(600)
        refused = sum(1 for _, answer in answers if answer.get("code") == "rate_limited")
        raw.ws.close()
        return {
            "burst_frames": frames,
            "burst_answered": len(answers),
            "burst_refused_as_too_fast": refused,
            "burst_seconds": round(time.perf_counter() - started, 1),
        }

    if disturbance == "burst":
        phase("burst", burst)
        bob.sio.disconnect()
        return result

    # Big messages for the client that never reads to ask for.
    alice.connect()
    first_id = 0
    for n in range(40):
        if n == 20:
            time.sleep(2.1)  # SEND_RATE_LIMIT: 20 per 2 seconds
        sent = alice.call(
            "message_sent", {"chat_id": GENERAL, "body": BIG_BODY, "client_id": f"b{n}"}
        )
        assert sent["ok"], sent
        first_id = first_id or sent["message"]["id"]
    alice.sio.disconnect()

    def never_reads() -> dict[str, Any]:
        # The page after the first message: up to MAX_MESSAGES_PER_FETCH (500) messages, here
        # the 39 big ones after it, 1.9 MB of JSON unless the reply is capped in bytes.
        raw = RawSocketIO(url, carol.cookie, receive_buffer=4096)
        left_open.append(raw)
        request = {"chat_id": GENERAL, "after_id": first_id}
        raw.send_all(
            [
                raw.frame(n, "message_history_is_scrolled_to_the_bottom", request)
                for n in range(pages)
            ]
        )
        time.sleep(quiet_s)
        return {"pages_asked": pages}

    phase("never_reads", never_reads)
    for raw in left_open:
        raw.ws.close()
    bob.sio.disconnect()
    return result


def main() -> None:
    """Measure each checkout in turn and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="+", help="label=path of a checkout of the chat")
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--pages", type=int, default=150)
    parser.add_argument("--quiet-seconds", type=float, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    runs = [
        (label, path, disturbance)
        for label, path in (item.split("=", 1) for item in args.checkouts)
        for disturbance in ("burst", "never_reads")
    ]
    for label, path, disturbance in runs:
        app_dir = Path(path).resolve()
        with tempfile.TemporaryDirectory() as folder:
            # The limits as shipped (start_chat raises them for the throughput benchmarks).
            server = start_chat(
                Path(folder),
                app_dir,
                SEND_RATE_LIMIT="20 per 2 seconds",
                TYPING_RATE_LIMIT="10 per 10 seconds",
                REGISTER_RATE_LIMIT="1000 per hour",
                JOIN_CHAT_RATE_LIMIT="60 per 10 seconds",
                LIST_CHATS_RATE_LIMIT="30 per 10 seconds",
                PAGING_RATE_LIMIT="120 per 10 seconds",
                READ_REPORT_RATE_LIMIT="100 per 10 seconds",
            )
            try:
                print(f"== {label}: {disturbance}", flush=True)
                results.setdefault(label, {})[disturbance] = measure(
                    server, disturbance, args.frames, args.pages, args.quiet_seconds
                )
            finally:
                server.stop()
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
