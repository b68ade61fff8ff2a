"""How ``python app.py`` holds its connections: one listener per port, a cap per address.

Imported by ``serving`` only, under eventlet; in-process tests never need it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import ssl
from collections import Counter
from collections.abc import Callable
from typing import Any

import eventlet
import eventlet.wsgi

log = logging.getLogger("chat")

_REFUSAL = b"Too many connections from your address.\n"
REFUSED_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\n"
    b"Connection: close\r\n"
    b"\r\n%s" % (len(_REFUSAL), _REFUSAL)
)


class PortInUse(SystemExit):
    """Another server already listens on the port: the chat must not start beside it."""


def open_listener(host: str, port: int, backlog: int) -> Any:
    """A green listening socket on ``host:port``; PortInUse when something listens there.

    eventlet's ``listen`` sets SO_REUSEPORT unless told otherwise, and then a second chat
    started on the same port listens beside the first without a word, the kernel dealing
    the users out between two servers that do not know of each other.
    """
    family, _type, _proto, _name, address = socket.getaddrinfo(host, port)[0]
    try:
        return eventlet.listen(address, family, backlog=backlog, reuse_port=False)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        raise PortInUse(
            f"Cannot listen on port {port} of {host}: {error.strerror}. Another server "
            f"(perhaps the chat, started twice) is using port {port}: stop it, or start "
            f"this one with another PORT."
        ) from None


class HeadDeadlineProtocol(eventlet.wsgi.HttpProtocol):
    """eventlet's HTTP handling, with a request's whole head (its line and headers) due
    within the server's socket timeout: that timeout bounds each wait only, and a client
    sending a byte just before each would otherwise hold its connection for ever."""

    _head_deadline: eventlet.Timeout | None = None
    # Each connection's buffers for reading a request's head and writing a response (8 and
    # 16 KiB in eventlet) stay allocated for the connection's whole life, and a WebSocket
    # lives long and never uses them after its upgrade. 2 KiB each still read any head and
    # write any response (a longer one goes through in more reads, or directly), and ten
    # thousand open sockets take about 50 MiB less (bench/README.md, "Connections").
    wbufsize = 2 << 10
    rbufsize = 2 << 10

    def _read_request_line(self) -> Any:
        timeout = TimeoutError("the request's head came too slowly")
        self._head_deadline = eventlet.Timeout(self.server.socket_timeout, timeout)
        try:
            return super()._read_request_line()
        except ssl.SSLError as error:
            # Over HTTPS the handshake happens in this first read: a phone that does not
            # trust the certificate yet, or plain HTTP sent to the TLS port, ends here.
            log.debug("TLS handshake with %s failed: %s", self.client_address, error)
            return ""

    def parse_request(self) -> bool:
        """Read the headers, still within the head's deadline, then lift it."""
        try:
            return super().parse_request()
        finally:
            self._lift_head_deadline()

    def handle_one_request(self) -> None:
        """One request; the deadline lifted whichever way it ends."""
        try:
            super().handle_one_request()
        finally:
            self._lift_head_deadline()

    def _lift_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None


class AddressCappedPool(eventlet.GreenPool):
    """eventlet.wsgi's pool of connection greenlets, holding at most ``per_address``
    connections from one client address (0: no cap) and ``size`` in all.

    eventlet.wsgi calls ``spawn(process_request, [address, socket, state])`` for each
    accepted connection; one over its address's cap is answered 503 and closed at once,
    without a greenlet, so a single address cannot take every place of the server.
    """

    def __init__(self, size: int, per_address: int):
        super().__init__(size)
        self.per_address = per_address
        self.open_by_address: Counter[str] = Counter()
        self._capped: set[str] = set()

    def spawn(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``function`` for an accepted connection, or refuse it over the cap."""
        connection = args[0]
        address = connection[0][0]
        if self.per_address and self.open_by_address[address] >= self.per_address:
            if address not in self._capped:  # one line per burst, not one per connection
                self._capped.add(address)
                log.warning(
                    "%s holds %d connections; more from it are refused until some close",
                    address,
                    self.per_address,
                )
            _send_refusal(connection[1])
            return _Refused()
        self.open_by_address[address] += 1
        try:
            thread = super().spawn(function, *args, **kwargs)
        except BaseException:
            self._release(None, address)
            raise
        thread.link(self._release, address)
        return thread

    def _release(self, _thread: Any, address: str) -> None:
        left = self.open_by_address[address] - 1
        if left > 0:
            self.open_by_address[address] = left
        else:
            del self.open_by_address[address]
        if left < self.per_address:
            self._capped.discard(address)


class _Refused:
    """Stands for the greenlet a refused connection never gets: eventlet.wsgi links its
    clean-up (which closes the socket) to what ``spawn`` returns."""

    def link(self, function: Callable[..., Any], *args: Any) -> None:
        function(self, *args)


def _send_refusal(client: Any) -> None:
    """Tell the client why, if its socket takes the bytes at once: the accept loop must
    never wait on one client."""
    raw = getattr(client, "fd", client)  # eventlet's GreenSocket wraps a non-blocking socket
    with contextlib.suppress(OSError):
        raw.send(REFUSED_RESPONSE)
