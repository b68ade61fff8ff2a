"""A person on a running chat, as a browser would be: a real HTTP session that registers and
logs in through the real forms (with their CSRF tokens), and a real python-socketio client
with that session's cookie."""

from __future__ import annotations

import re
from typing import Any

import requests
import socketio

from bench.servers import Server


def csrf_token(page: str) -> str:
    """The CSRF token of the first form on a page."""
    field = re.search(r'<input[^>]*name="csrf_token"[^>]*>', page)
    assert field, "the page has no CSRF token"
    return re.search(r'value="([^"]+)"', field.group(0)).group(1)


class RealClient:
    """A person with a real HTTP session and a real python-socketio client."""

    def __init__(self, server: Server, name: str, password: str = "password123"):
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

    @property
    def cookie_header(self) -> str:
        """This person's cookies as the value of one ``Cookie`` header."""
        return "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)

    def connect_socket(self, sio: socketio.Client) -> None:
        """Connect ``sio`` (a client with handlers of its own) over WebSocket with this
        person's login cookie."""
        sio.connect(
            self.server.url,
            headers={"Cookie": self.cookie_header},
            transports=["websocket"],
            wait_timeout=10,
        )

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
