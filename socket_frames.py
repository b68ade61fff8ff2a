"""Socket.IO frames no client of ours sends: refused before any handler runs, answered
when they carry an acknowledgement id, and logged in one short line each, at most
``REFUSED_LOG_LINES`` lines a window per worker however many arrive.

python-socketio dispatches a frame such as ``42[]`` (an event without a name) or
``42[{}]`` (a name that is not text) and fails with a traceback per frame; a deeply nested
JSON payload raises ``RecursionError`` and gets no answer. Here the frame is checked while
it is decoded (``CheckedPacket``, given to python-socketio as its serializer; nesting too
deep is an ordinary decoding error of ``wire_json``, its json module), and ``install`` puts
a guard around the server's frame handler that turns a refusal into a log line and, when
the frame asked for one, an error acknowledgement.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import socketio
from socketio import packet

log = logging.getLogger("chat")

# At most this many lines about refused frames per window and worker; the rest are counted
# and the count is logged with the next line.
REFUSED_LOG_LINES = 10
REFUSED_LOG_WINDOW_S = 60.0
# How much of a refused frame a log line quotes.
QUOTED_CHARS = 40
UNREADABLE = "The request could not be read."
# The packets a client may send; the chat takes no binary events (uploads go over HTTP)
# and a CONNECT_ERROR only ever goes from server to client.
CLIENT_PACKET_TYPES = frozenset({packet.CONNECT, packet.DISCONNECT, packet.EVENT, packet.ACK})


class RefusedFrame(ValueError):
    """A frame no client of ours sends; ``frame`` holds what could be decoded of it."""

    def __init__(self, reason: str, frame: packet.Packet):
        super().__init__(reason)
        self.reason = reason
        self.frame = frame


class CheckedPacket(packet.Packet):
    """A Socket.IO packet that refuses, while decoding, every frame a handler could not
    take: unreadable JSON, binary frames, unknown packet types, events without a name."""

    # The chat neither takes nor sends binary data, so no packet is searched for bytes (a
    # walk through every value of every message sent, 5 µs a packet).
    uses_binary_events = False

    def decode(self, encoded_packet: Any) -> int:
        """Decode a frame, or raise RefusedFrame."""
        if not isinstance(encoded_packet, str):
            raise RefusedFrame("a binary frame", self)
        try:
            attachments = super().decode(encoded_packet)
        except (ValueError, TypeError, IndexError) as error:
            raise RefusedFrame(f"unreadable ({brief(str(error))})", self) from None
        if self.packet_type not in CLIENT_PACKET_TYPES:
            raise RefusedFrame(f"packet type {self.packet_type!r}", self)
        if self.packet_type == packet.EVENT and not (
            isinstance(self.data, list) and self.data and isinstance(self.data[0], str)
        ):
            raise RefusedFrame("an event without a name", self)
        return attachments


class RefusalLog:
    """One short line per refused frame, at most ``lines`` per ``window_s`` seconds; the
    lines left out are counted and reported with the next line logged."""

    def __init__(
        self,
        lines: int = REFUSED_LOG_LINES,
        window_s: float = REFUSED_LOG_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.lines = lines
        self.window_s = window_s
        self.clock = clock
        self._lock = threading.Lock()
        self._window_start = -window_s
        self._logged = 0
        self._left_out = 0

    def note(self, message: str, *args: Any) -> bool:
        """Log ``message`` unless this window's lines are used up; True if it was logged."""
        with self._lock:
            now = self.clock()
            if now - self._window_start >= self.window_s:
                self._window_start, self._logged = now, 0
            if self._logged >= self.lines:
                self._left_out += 1
                return False
            self._logged += 1
            left_out, self._left_out = self._left_out, 0
        if left_out:
            message += " (and %d more not logged)"
            args = (*args, left_out)
        log.warning(message, *args)
        return True


REFUSALS = RefusalLog()


def brief(text: str) -> str:
    """``text`` on one line, printable ASCII, at most QUOTED_CHARS characters."""
    return ascii(text)[1:-1][:QUOTED_CHARS]


def quoted(frame: Any) -> str:
    """The start of a frame, safe to put in one log line."""
    text = frame if isinstance(frame, str) else f"<{len(frame)} bytes>"
    return ascii(text[:QUOTED_CHARS]) + ("..." if len(text) > QUOTED_CHARS else "")


def install(server: socketio.Server, refusals: RefusalLog = REFUSALS) -> None:
    """Put the guard around ``server``'s frame handler (after ``init_app``)."""
    handle_frame = server._handle_eio_message

    def guarded(eio_sid: str, frame: Any) -> None:
        try:
            if not frame:  # python-socketio would not decode it, and dispatch nothing
                raise RefusedFrame("an empty frame", server.packet_class(data=None))
            handle_frame(eio_sid, frame)
        except RefusedFrame as refused:
            answer_refused(server, eio_sid, refused.frame)
            address = server.environ.get(eio_sid, {}).get("REMOTE_ADDR", "?")
            refusals.note(
                "Refused a Socket.IO frame from %s: %s: %s", address, refused.reason, quoted(frame)
            )

    server.eio.on("message", guarded)


def answer_refused(server: socketio.Server, eio_sid: str, frame: packet.Packet) -> None:
    """Answer a refused event that asked for an acknowledgement, so its caller hears why."""
    if frame.packet_type != packet.EVENT or frame.id is None:
        return
    namespace = frame.namespace or "/"
    sid = server.manager.sid_from_eio_sid(eio_sid, namespace)
    if sid is None or not server.manager.is_connected(sid, namespace):
        return
    ack = server.packet_class(
        packet.ACK, namespace=namespace, id=frame.id, data=[{"ok": False, "error": UNREADABLE}]
    )
    # python-socketio has no public call to answer an id it did not dispatch.
    server._send_packet(eio_sid, ack)


class BriefEngineErrors(logging.Filter):
    """python-engineio logs a whole traceback for each long-polling body it cannot read
    (``x``, bytes that are not UTF-8, too many packets); here each is one refusal line,
    under the same limit as refused frames."""

    def __init__(self, refusals: RefusalLog = REFUSALS):
        super().__init__()
        self.refusals = refusals

    def filter(self, record: logging.LogRecord) -> bool:
        """Let every other record through unchanged."""
        if record.getMessage() != "post request handler error":
            return True
        error = record.exc_info[1] if record.exc_info else None
        self.refusals.note(
            "Refused a long-polling request: %s: %s", type(error).__name__, quoted(str(error))
        )
        return False


BRIEF_ENGINE_ERRORS = BriefEngineErrors()


def install_engine_filter() -> None:
    """Shorten python-engineio's unreadable-request tracebacks (once per process)."""
    engine_log = logging.getLogger("engineio.server")
    if BRIEF_ENGINE_ERRORS not in engine_log.filters:
        engine_log.addFilter(BRIEF_ENGINE_ERRORS)
