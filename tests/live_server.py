"""A real chat server for tests that need one: ``python app.py`` (eventlet, as in
production) in its own process on a free loopback port, everything it writes under a
folder of the test's, and real clients that log in through the real pages."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio

from bench.servers import answers, free_port

ROOT = Path(__file__).resolve().parents[1]
SERVER_START_TIMEOUT_S = 20.0
SERVER_STOP_TIMEOUT_S = 5.0
LOG_TAIL_LINES = 60


@dataclass
class LiveServer:
    """A running ``python app.py``: where to reach it, its files and its output."""

    url: str
    folder: Path
    database_url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def database_path(self) -> Path:
        """The SQLite file (for the tests that look at SQLite itself)."""
        return Path(self.database_url.removeprefix("sqlite:///"))

    def query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        """Rows of ``sql`` read straight from the server's database, whichever it is."""
        from database import Database

        db = Database(self.database_url, str(ROOT), pool_size=1)
        conn = db.connect()
        try:
            return conn.all(sql, params)
        finally:
            db.release(conn)
            db.close()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines the server wrote to stdout and stderr."""
        if not self.log_path.exists():
            return "(no output)"
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(text) or "(no output)"

    def describe(self) -> str:
        """Whether the server still runs, then the tail of its output."""
        code = self.process.poll()
        state = "still running" if code is None else f"EXITED with code {code}"
        return f"(server pid {self.process.pid}: {state})\n{self.log_tail()}"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if the server has not exited after a few seconds."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def crash(self) -> None:
        """Kill the server with SIGKILL: no shutdown code runs, as in a crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def launch_server(folder: Path, **settings: str) -> LiveServer:
    """Start ``python app.py`` on a free port, keeping its database, sessions, uploads and
    secret key under ``folder`` (a second start on the same folder reopens the same data)."""
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32))
    port = free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{folder / 'chat.db'}",
        "SECRET_KEY": key_file.read_text(),
        "SESSION_FILE_DIR": str(folder / "sessions"),
        "UPLOAD_FOLDER": str(folder / "uploads"),
        "PYTHONUNBUFFERED": "1",
        **settings,
    }
    log_path = folder / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return LiveServer(f"http://127.0.0.1:{port}", folder, env["DATABASE_URL"], log_path, process)


def wait_until_up(server: LiveServer) -> str | None:
    """Wait for GET /login to answer; None when it does, else why it never will."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not answers(f"{server.url}/login"):
        if server.process.poll() is not None:
            return f"The server exited with code {server.process.returncode} before answering"
        if time.monotonic() > deadline:
            server.stop()
            return f"The server did not answer within {SERVER_START_TIMEOUT_S:.0f} s"
        time.sleep(0.1)
    return None


def start_server(folder: Path, attempts: int = 3, **settings: str) -> LiveServer:
    """A running server that answers GET /login, or a failed test with its output."""
    for attempt in range(1, attempts + 1):
        server = launch_server(folder, **settings)
        problem = wait_until_up(server)
        if problem is None:
            return server
        # Another process can take the free port before the server binds it.
        if "Address already in use" not in server.log_tail() or attempt == attempts:
            break
    pytest.fail(
        f"{problem} GET {server.url}/login. Its output:\n{server.log_tail()}", pytrace=False
    )


def csrf_token(page: str) -> str:
    """The CSRF token of the first form on a page."""
    field = re.search(r'<input[^>]*name="csrf_token"[^>]*>', page)
    assert field, "the page has no CSRF token"
    return re.search(r'value="([^"]+)"', field.group(0)).group(1)


class RealClient:
    """A person with a real HTTP session and a real python-socketio client."""

    def __init__(self, server: LiveServer, name: str, password: str = "password123"):
        self.server = server
        self.name = name
        self.password = password
        self.http = requests.Session()
        self.http.trust_env = False  # loopback only, never through a proxy
        self.sio: socketio.Client | None = None
        self.events: list[tuple[str, Any]] = []

    def register(self) -> RealClient:
        """Register through the real form (with its CSRF token)."""
        self._post_form("/register", confirmation=self.password)
        return self

    def login(self) -> RealClient:
        """Log in through the real form (with its CSRF token)."""
        self._post_form("/login")
        return self

    def _post_form(self, path: str, **extra: str) -> None:
        token = csrf_token(self.http.get(self.server.url + path).text)
        response = self.http.post(
            self.server.url + path,
            data={"username": self.name, "password": self.password, "csrf_token": token, **extra},
            allow_redirects=False,
        )
        assert response.status_code == 303, response.text[:500]

    @property
    def id(self) -> int:
        found = self.http.get(f"{self.server.url}/find", params={"q": self.name}).json()
        return next(user["id"] for user in found if user["username"] == self.name)

    def connect(self, transport: str = "websocket") -> socketio.Client:
        """Open a Socket.IO connection with this person's session cookie, sent with every
        request as a browser does (a long-poll without it is refused)."""
        http = requests.Session()
        http.trust_env = False
        http.cookies.update(self.http.cookies)
        client = socketio.Client(reconnection=False, http_session=http)
        client.on("*", lambda event, data=None: self.events.append((event, data)))
        client.connect(self.server.url, transports=[transport], wait_timeout=10)
        self.sio = client
        return client

    def call(self, event: str, payload: Any = None, timeout: float = 10) -> Any:
        """Emit ``event`` and wait for its acknowledgement."""
        assert self.sio is not None
        return self.sio.call(event, payload if payload is not None else {}, timeout=timeout)

    def disconnect(self) -> None:
        if self.sio is not None and self.sio.connected:
            self.sio.disconnect()

    def received(self, name: str) -> list[Any]:
        """Payloads of the events of this name received so far."""
        return [data for event, data in self.events if event == name]
