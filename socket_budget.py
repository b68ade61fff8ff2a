"""Each socket's fair share of the server: a yield between one socket's events, and a bound
on the bytes waiting to be sent to a socket.

With ``async_handlers=False`` a socket's reader runs its events itself, one after another.
Reading a frame that is already in the socket's buffer does not wait, so the reader used to
run every frame of a burst before any other socket had a turn: 60,000 frames from one
client held everyone else for 17 s. ``yield_between_events`` lets the event loop run the
other sockets after each event; one socket's events keep their order (one reader runs them).

python-engineio queues a socket's outgoing packets in ``Socket.queue`` without a bound;
the WebSocket writer takes them all whenever it is free and blocks in ``send`` while the
client does not read, and a long-polling client takes them with its next GET. A client that
never reads made that queue grow by gigabytes. ``bound_unsent_bytes`` gives each socket a
queue that counts the bytes not yet handed to the kernel (those queued, and the batch the
writer is sending: the writer asks for more only once it has sent a batch) and, past the
limit, drops what comes next and disconnects the socket: its TCP connection is shut down,
so its reader ends and the ordinary disconnect (presence included) follows. Its page
catches up on reconnect (``list_chats``, ``join_chat`` with ``after_id``), as after any drop.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any

log = logging.getLogger("chat")


def install(server: Any, max_unsent_bytes: int) -> None:
    """Give every socket of the python-socketio ``server`` its fair share."""
    yield_between_events(server.eio)
    bound_unsent_bytes(server.eio, max_unsent_bytes)


def yield_between_events(eio: Any) -> None:
    """Let the event loop serve other sockets after each Engine.IO message of a socket."""
    handle = eio.handlers["message"]
    sleep = eio.sleep

    def handle_then_yield(sid: str, data: Any) -> Any:
        try:
            return handle(sid, data)
        finally:
            sleep(0)

    eio.handlers["message"] = handle_then_yield


def packet_size(pkt: Any) -> int:
    """The bytes an outgoing Engine.IO packet carries (its encoded Socket.IO packet)."""
    data = getattr(pkt, "data", None)
    if isinstance(data, str):
        # Frames are UTF-8 (wire_json): text that is not ASCII takes more bytes than
        # characters. ``isascii`` is a flag of the string, not a scan.
        return len(data) if data.isascii() else len(data.encode())
    return len(data) if isinstance(data, bytes) else 0


class UnsentBytes:
    """Mixed into the server's queue class: the bytes of a socket not yet sent, bounded.

    The counts move in ``_put`` and ``_get``, which both eventlet's queue and the standard
    library's call with the queue's own consistency (one thread; the queue's mutex held), so
    they need no lock of their own (eventlet's green lock would double the cost of a put).
    """

    limit: int
    eio: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.queued = 0  # in the queue
        self.in_flight = 0  # taken by the writer, which may still be sending them
        self.overflowed = False
        # The TCP connection of the socket's WebSocket (see TrackedWebSocket), if any.
        self.connection: Any = None
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Queue a packet, unless the socket is over its limit (then it is disconnected)."""
        if item is not None and (self.overflowed or self._over(item)):
            if not self.overflowed:
                self.overflowed = True
                self.eio.start_background_task(disconnect_overflowed, self.eio, self)
            return  # the client is being disconnected; it catches up when it reconnects
        super().put(item, block, timeout)  # type: ignore[misc]

    def _over(self, item: Any) -> bool:
        # A packet bigger than the limit still goes to a client that has read the rest.
        unsent = self.queued + self.in_flight
        return unsent > 0 and unsent + packet_size(item) > self.limit

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Take a packet; a blocking take means the writer sent all it took before."""
        if block:
            self.in_flight = 0
        return super().get(block, timeout)  # type: ignore[misc]

    def _put(self, item: Any) -> None:
        self.queued += packet_size(item)
        super()._put(item)  # type: ignore[misc]

    def _get(self) -> Any:
        item = super()._get()  # type: ignore[misc]
        size = packet_size(item)
        self.queued -= size
        self.in_flight += size
        return item


def disconnect_overflowed(eio: Any, queue: UnsentBytes) -> None:
    """End the socket whose unsent bytes passed the limit, through the ordinary disconnect."""
    peer = "a long-polling client"
    if queue.connection is not None:
        with contextlib.suppress(OSError):
            host, port = queue.connection.getpeername()[:2]
            peer = f"{host}:{port}"
    log.warning(
        "Disconnecting a socket of %s: its client does not read (more than %d bytes unsent)",
        peer,
        queue.limit,
    )
    if queue.connection is not None:
        # The writer blocked in send and the reader fail at once; the reader's exit closes
        # the Engine.IO socket and runs the disconnect handlers.
        with contextlib.suppress(OSError):  # already closed
            queue.connection.shutdown(socket.SHUT_RDWR)
        return
    engine_socket = next((s for s in list(eio.sockets.values()) if s.queue is queue), None)
    if engine_socket is not None and not engine_socket.closed:
        engine_socket.close(wait=False, abort=True, reason=eio.reason.TRANSPORT_ERROR)


def bound_unsent_bytes(eio: Any, limit: int) -> None:
    """Give each socket of ``eio`` a queue that disconnects it past ``limit`` unsent bytes."""
    if limit <= 0:
        raise ValueError("MAX_UNSENT_BYTES_PER_SOCKET must be a positive number of bytes.")
    drivers = dict(eio._async)  # this server's copy: the driver module's table is shared
    base = drivers["queue"]
    drivers["queue"] = type("UnsentBytesQueue", (UnsentBytes, base), {"limit": limit, "eio": eio})
    websocket = drivers.get("websocket")
    if websocket is not None and getattr(websocket, "__module__", "").endswith(".eventlet"):
        drivers["websocket"] = type("TrackedWebSocket", (TrackedWebSocket, websocket), {})
    eio._async = drivers


class TrackedWebSocket:
    """Mixed into python-engineio's eventlet WebSocket: tells the socket's queue which TCP
    connection carries it, so a socket over its limit can be cut off at once."""

    handler: Any

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        engine_socket = getattr(self.handler, "__self__", None)  # Socket._websocket_handler
        queue = getattr(engine_socket, "queue", None)
        if isinstance(queue, UnsentBytes) and "eventlet.input" in environ:
            queue.connection = environ["eventlet.input"].get_socket()
        return super().__call__(environ, start_response)  # type: ignore[misc]
