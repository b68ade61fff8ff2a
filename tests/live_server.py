"""A real chat server for tests that need one: ``python app.py`` (eventlet, as in
production) in its own process on a free loopback port, everything it writes under a
folder of the test's, and real clients that log in through the real pages.

The servers and clients themselves are ``bench.servers`` and ``bench.clients``, shared with
the benchmarks; this module only turns a server that never answered into a failed test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bench import servers
from bench.clients import RealClient, csrf_token
from bench.servers import ROOT, wait_until_up

LiveServer = servers.Server
T = TypeVar("T")
EVENT_TIMEOUT_S = 5.0

__all__ = [
    "ROOT",
    "LiveServer",
    "RealClient",
    "csrf_token",
    "launch_server",
    "or_fail",
    "start_server",
    "wait_for",
    "wait_until_up",
]


def launch_server(folder: Path, **settings: str) -> LiveServer:
    """Start ``python app.py`` on a free port, keeping its database, sessions, uploads and
    secret key under ``folder`` (a second start on the same folder reopens the same data)."""
    return servers.launch_chat(folder, {**servers.data_settings(folder), **settings})


def start_server(
    folder: Path, attempts: int = servers.START_ATTEMPTS, **settings: str
) -> LiveServer:
    """A running server that answers GET /login, or a failed test with its output."""
    return or_fail(servers.start_one, lambda: launch_server(folder, **settings), attempts=attempts)


def or_fail(start: Callable[..., T], *args: Any, **options: Any) -> T:
    """``start(*args, **options)`` (``bench.servers.start_one`` or ``start_together``);
    a server that never answered fails the test with its output instead of an error."""
    try:
        return start(*args, **options)
    except servers.StartFailed as error:
        pytest.fail(str(error), pytrace=False)


def wait_for(check: Callable[[], T], what: str, timeout: float = EVENT_TIMEOUT_S) -> T:
    """Poll ``check`` until it returns something true; fail saying ``what`` never happened.
    The timeout only bounds a failure: a passing test waits for the event, not the clock."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"Within {timeout:.0f} s, never: {what}", pytrace=False)
        time.sleep(0.02)
