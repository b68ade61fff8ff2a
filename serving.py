"""Serving the chat on eventlet (``python app.py``): the process's set-up, the listener, the
addresses and QR code printed at start, and the server loop.

Importing it starts nothing and imports no eventlet: ``deploy/cluster.py`` uses
``print_addresses`` from here without loading the application.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Flask

# Connections the kernel queues before the server accepts them (capped by somaxconn).
LISTEN_BACKLOG = 4096


def prepare_process() -> None:
    """What every server process sets first: owner-only files, picture memory given back
    at once, and the log's format."""
    import attachments
    import private_files

    # Everything this process creates from now on is its owner's only (private_files.py).
    os.umask(private_files.PROCESS_UMASK)
    attachments.do_give_back_picture_memory()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def listen(settings: Mapping[str, Any]) -> Any:
    """The listening socket on ``HOST:PORT``, opened first of all, so that a second server
    on the same port stops before touching anything; then psycopg2 made green."""
    import connections

    listener = connections.open_listener(settings["HOST"], settings["PORT"], LISTEN_BACKLOG)
    if os.environ.get("DATABASE_URL", "").startswith(("postgresql:", "postgres:")):
        # psycopg2 waits on its socket through eventlet's hub instead of blocking the process.
        from eventlet.support import psycopg2_patcher

        psycopg2_patcher.make_psycopg_green()
    return listener


def lan_address() -> str | None:
    """This machine's address on the local network, or None when it has none."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        # Connecting a UDP socket sends nothing; it only asks the kernel which local
        # address would route to a documentation-range address (RFC 5737).
        probe.connect(("192.0.2.1", 9))
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


def raise_open_files_limit(wanted: int) -> int:
    """Raise the soft open-files limit towards ``wanted`` (one file per connection)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard) if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if target != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def print_addresses(
    host: str,
    port: int,
    scheme: str = "http",
    local_name: str | None = None,
    ca_pem: bytes | None = None,
) -> None:
    """Tell the person who started the chat where to open it, with a QR code for phones,
    the mDNS name beside it, and where to get the CA certificate when the chat made one."""
    import segno

    print(f"\n  Chat is running.\n  On this computer:  {scheme}://localhost:{port}/")
    lan = lan_address() if host in {"0.0.0.0", "::"} else None
    if lan:
        url = f"{scheme}://{lan}:{port}/"
        print(f"  On your network:   {url}")
        if local_name:
            print(f"  or by name:        {scheme}://{local_name}:{port}/")
        print("  Point a phone's camera at this code:\n")
        # The raw address: Android resolves .local names unreliably.
        segno.make(url, error="m").terminal(compact=True)
    if ca_pem is not None:
        import local_tls

        base = f"{scheme}://{lan or 'localhost'}:{port}"
        print(
            f"\n  Trust its certificate once on each device: {base}/ca\n"
            f"  (the file: {base}/ca.crt, SHA-256 fingerprint\n"
            f"  {local_tls.get_fingerprint(ca_pem)})"
        )
        if lan:
            print("  A phone's camera opens the install steps from this code:\n")
            segno.make(f"{base}/ca", error="m").terminal(compact=True)
    print(flush=True)


def disable_websocket_compression() -> None:
    """Answer no to the browser's offer of permessage-deflate on eventlet's WebSockets.

    Chat frames are small JSON: compressing each one for each socket saves few bytes, yet
    it took a tenth of the server's time per message and a zlib state per socket.
    eventlet has no setting for it, hence the patch of its negotiation.
    """
    from eventlet import websocket

    websocket.WebSocketWSGI._negotiate_permessage_deflate = lambda self, extensions: None


def apply_websocket_mask(
    data: bytes, mask: Sequence[int], length: int | None = None, offset: int = 0
) -> bytes:
    """``data``'s first ``length`` bytes XORed with the 4-byte ``mask``, starting at byte
    ``offset`` of the mask's cycle (RFC 6455, 5.3): what eventlet's ``_apply_mask`` returns,
    computed as one XOR of two big integers instead of a bytes object per byte."""
    if length is None:
        length = len(data)
    if length == 0:
        return b""
    key = bytes(mask[(offset + i) % 4] for i in range(4))
    repeated = (key * (length // 4 + 1))[:length]
    unmasked = int.from_bytes(data[:length], "little") ^ int.from_bytes(repeated, "little")
    return unmasked.to_bytes(length, "little")


def speed_up_websocket_masking() -> None:
    """Unmask the frames browsers send (every client frame is masked) in C-speed steps.

    eventlet joins one new bytes object per byte of a frame: ~20 µs for a 150-byte message
    and about 10 ms on the loop for a 64 KiB one, for every socket that sends one.
    """
    from eventlet import websocket

    websocket.RFC6455WebSocket._apply_mask = staticmethod(apply_websocket_mask)


def serve(app: Flask, listener: Any) -> None:
    """What ``socketio.run`` does on eventlet, with a listen backlog for a crowd (after a
    restart every open page reconnects at once, and eventlet's default backlog of 50 would
    leave the rest waiting for SYN retries: 1 s, 3 s, 7 s...), a timeout on every wait for a
    client, and a cap on the connections of one address."""
    import eventlet.wsgi

    import connections
    import lan_announce
    import local_tls

    max_connections = app.config["MAX_CONNECTIONS"]
    raise_open_files_limit(max_connections + 100)
    disable_websocket_compression()
    speed_up_websocket_masking()
    scheme = "https" if local_tls.serves_tls(app.config) else "http"
    if scheme == "https":
        socketio = app.extensions["socketio"]
        listener = local_tls.wrap_listener(listener, app.config, app.root_path, socketio)
    ca_file = local_tls.made_ca_certificate(app.config, app.root_path)
    ca_pem = local_tls.read_certificate_pem(ca_file) if ca_file else None
    announcer = lan_announce.start(app.config, scheme)
    local_name = lan_announce.local_name() if announcer else None
    print_addresses(app.config["HOST"], app.config["PORT"], scheme, local_name, ca_pem)
    # Behind a reverse proxy every connection comes from the proxy: the proxy caps per
    # client address (limit_conn in deploy/nginx.conf), the chat cannot.
    per_address = 0 if app.config["TRUSTED_PROXIES"] else app.config["MAX_CONNECTIONS_PER_ADDRESS"]
    try:
        eventlet.wsgi.server(
            listener,
            # Flask's __call__ only calls wsgi_app: one frame less on the stack every open
            # socket's greenlet keeps while it waits.
            app.wsgi_app,
            # At most max_connections at once (eventlet's default stops accepting at 1,024).
            custom_pool=connections.AddressCappedPool(max_connections, per_address),
            protocol=connections.HeadDeadlineProtocol,
            # Each wait on a client's socket (an upload's next bytes, room to write a reply)
            # ends after this, and a request's whole head is due within it; python-engineio
            # sets its own, longer one (ping interval + ping timeout) on a WebSocket.
            socket_timeout=app.config["HTTP_TIMEOUT_SECONDS"],
            log_output=False,
        )
    finally:
        if announcer:
            announcer.stop()
