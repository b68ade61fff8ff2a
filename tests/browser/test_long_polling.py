"""Browsers without WebSocket: with ``SOCKETIO_TRANSPORTS=polling`` the page talks over HTTP
long-polling only, never tries a WebSocket, and the whole first day works the same."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.journey import first_day, keep_on_the_lan
from tests.live_server import LiveServer, start_server


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The chat with long-polling as its only transport (this module's server)."""
    server = start_server(tmp_path_factory.mktemp("polling-server"), SOCKETIO_TRANSPORTS="polling")
    yield server
    server.stop()


def test_first_day_over_long_polling_only(page_for):
    """Alice and bob register, talk, create and join a channel, over long-polling: the
    engine's transport is "polling" from start to end and no page opens a WebSocket."""
    alice = page_for("alice")
    bob = page_for("bob")
    sockets: list[str] = []
    for page in (alice, bob):
        page.on("websocket", lambda socket: sockets.append(socket.url))
    refused = [keep_on_the_lan(alice.context), keep_on_the_lan(bob.context)]

    first_day(alice, bob, "alice", "bob", "Polling")

    for page in (alice, bob):
        assert page.locator("#chat-app").get_attribute("data-transport") == "polling"
    assert sockets == []
    assert refused == [[], []]
