"""How ``python app.py`` listens: a backlog for a crowd reconnecting after a restart."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from serving import LISTEN_BACKLOG
from tests.live_server import start_server

# It starts real servers: `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow


def test_the_server_queues_a_crowd_of_connections_not_fifty(tmp_path):
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) is needed to read a listening socket's backlog")
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    server = start_server(tmp_path)
    try:
        port = urlsplit(server.url).port
        listening = subprocess.run(
            ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
        ).stdout.split()
        # For a listening socket, ss's Send-Q column is the backlog the kernel allows.
        assert int(listening[2]) == min(LISTEN_BACKLOG, somaxconn)
    finally:
        server.stop()


def test_responses_larger_than_a_connections_buffers_arrive_whole(tmp_path):
    """Each connection's read and write buffers are small (connections.py); a long request
    head and a response far larger than either still go through byte for byte."""
    import urllib.request

    from connections import HeadDeadlineProtocol

    script = Path(__file__).resolve().parents[1] / "static" / "chat.js"
    assert script.stat().st_size > 4 * HeadDeadlineProtocol.wbufsize
    server = start_server(tmp_path)
    try:
        request = urllib.request.Request(
            f"{server.url}/static/chat.js",
            # A head several times the read buffer.
            headers={"X-Padding": "p" * (3 * HeadDeadlineProtocol.rbufsize)},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.read() == script.read_bytes()
    finally:
        server.stop()
