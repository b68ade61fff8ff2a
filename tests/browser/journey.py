"""The first day of two colleagues on the chat, run as it is by several tests: over
WebSocket, forced onto long-polling, and on a network with no way out."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, Page, Route, WebSocket, expect

from tests.browser.ui import (
    chat_in_list,
    create_channel,
    join_channel,
    message_bodies,
    message_senders,
    open_chat,
    register,
    send_message,
    start_direct_chat,
    unread_badge,
    wait_until_chat_is_open,
)

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def first_day(alice: Page, bob: Page, alice_name: str, bob_name: str, channel: str) -> None:
    """Both register; alice finds bob and writes to him; he sees it arrive as unread,
    opens it and replies; she sees the reply live. Alice creates a channel; bob finds it
    under "Channels you can join", joins, and they talk there."""
    register(bob, bob_name)
    register(alice, alice_name)

    start_direct_chat(alice, bob_name)
    expect(alice.locator("#chat-title")).to_have_text(bob_name)
    send_message(alice, f"Hi {bob_name}, welcome aboard!")

    expect(unread_badge(bob, alice_name)).to_have_text("1")
    open_chat(bob, alice_name)
    expect(message_bodies(bob)).to_have_text([f"Hi {bob_name}, welcome aboard!"])
    expect(unread_badge(bob, alice_name)).to_be_hidden()
    send_message(bob, "Thanks! Where do we talk about the release?")
    expect(message_bodies(alice)).to_have_text(
        [f"Hi {bob_name}, welcome aboard!", "Thanks! Where do we talk about the release?"]
    )

    create_channel(alice, channel)
    send_message(alice, "Release notes go here")
    joinable = bob.get_by_role("list", name="Channels you can join")
    expect(joinable.get_by_text(channel, exact=True)).to_be_visible()
    join_channel(bob, channel)
    wait_until_chat_is_open(bob)
    expect(message_bodies(bob)).to_have_text(["Release notes go here"])
    expect(chat_in_list(bob, channel)).to_be_visible()
    send_message(bob, "I will write the first draft")
    expect(message_bodies(alice)).to_have_text(
        ["Release notes go here", "I will write the first draft"]
    )
    expect(message_senders(alice)).to_have_text([alice_name, bob_name])


def keep_on_the_lan(context: BrowserContext) -> list[str]:
    """Refuse every request (and WebSocket) to a host that is not this machine, as on a
    LAN without internet; return the list of what was refused, filled as it happens."""
    refused: list[str] = []

    def only_local(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    def check_socket(socket: WebSocket) -> None:
        if urlsplit(socket.url).hostname not in LOCAL_HOSTS:
            refused.append(socket.url)

    context.route("**/*", only_local)
    context.on("page", lambda page: page.on("websocket", check_socket))
    for page in context.pages:
        page.on("websocket", check_socket)
    return refused
