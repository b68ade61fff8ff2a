"""People in a real browser: a private channel made, its invitation arriving live, the
member list with presence and roles, the topic, leaving; the settings with a picture; the
admin page on a desktop and a phone. Each test has a server of its own, so its first
account is the admin."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE
from tests.browser.ui import (
    chat_in_list,
    meet,
    open_chat,
    open_direct_chat_from,
    register,
    send_message,
    wait_until_history_is_loaded,
)
from tests.live_server import LiveServer, start_server

SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "people"


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A server of this test's own: the first person it registers is the admin."""
    server = start_server(tmp_path / "server")
    yield server
    server.stop()


def shoot(page: Page, name: str) -> None:
    """A screenshot to look at (tests/artifacts/people/), not a reference."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), animations="disabled", caret="hide")


def members_panel(page: Page):
    return page.get_by_role("complementary", name="Members")


def test_a_private_channel_invitation_member_list_topic_and_leaving(page_for):
    """bob (the first account: admin) and alice; alice makes a private channel, which bob
    does not see until she invites him; then it is in his list at once, the member list
    shows both online with bob's role, a topic reaches both headers, and bob leaves."""
    alice, bob = meet(page_for, "alice", "bob")
    alice.get_by_label("New channel").fill("Secret plans")
    private = alice.get_by_role("button", name="Private", exact=True)
    private.click()
    expect(private).to_have_attribute("aria-pressed", "true")
    alice.get_by_role("button", name="Create").click()
    expect(alice.locator("#chat-title")).to_have_text("Secret plans")
    wait_until_history_is_loaded(alice)
    expect(private).to_have_attribute("aria-pressed", "false")
    expect(chat_in_list(alice, "Secret plans")).to_have_accessible_name(
        re.compile(r"^Private channel Secret plans")
    )
    bob.reload()
    expect(bob.get_by_role("list", name="Your chats").get_by_role("link").first).to_be_visible()
    expect(bob.get_by_text("Secret plans")).to_have_count(0)

    alice.get_by_role("button", name="Members").click()
    panel = members_panel(alice)
    panel.get_by_label("Invite by username").fill("bob")
    panel.get_by_role("button", name="Invite").click()
    expect(panel.locator(".member-name")).to_have_text(["alice", "bob"])
    expect(panel.locator(".member", has_text="bob").locator(".role-tag")).to_have_text("admin")
    expect(panel.locator(".member.is-online")).to_have_count(2)
    shoot(alice, "members-desktop")

    expect(chat_in_list(bob, "Secret plans")).to_be_visible()  # live, no reload
    panel.get_by_label("Topic").fill("The surprise party")
    panel.get_by_role("button", name="Save").click()
    expect(alice.locator("#chat-topic")).to_have_text("The surprise party")
    open_chat(bob, "Secret plans")
    expect(bob.locator("#chat-topic")).to_have_text("The surprise party")
    send_message(bob, "Count me in")

    bob.get_by_role("button", name="Members").click()
    members_panel(bob).get_by_role("button", name="Leave this channel").click()
    expect(chat_in_list(bob, "Secret plans")).to_have_count(0)
    expect(bob.locator("#chat-title")).to_have_text("No chat open")


def test_the_member_list_on_a_phone_and_no_leaving_the_default_channel(page_for):
    """On a phone: the default channel's topic under its title and its member list, which
    offers no Leave; nothing scrolls sideways."""
    page = page_for("carol", **PHONE)
    register(page, "carol")
    open_chat(page, "General Talk")
    page.get_by_role("button", name="Members").click()
    panel = members_panel(page)
    expect(panel.locator(".member-name")).to_have_text(["carol"])
    expect(panel.locator(".role-tag")).to_have_text("admin")
    expect(panel.get_by_role("button", name="Leave this channel")).to_be_hidden()
    panel.get_by_label("Topic").fill("Say hello here")
    panel.get_by_role("button", name="Save").click()
    expect(page.locator("#chat-topic")).to_have_text("Say hello here")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shoot(page, "members-phone")


def picture_file(folder: Path) -> Path:
    path = folder / "me.png"
    image = Image.new("RGB", (240, 160), (30, 120, 200))
    for x in range(80, 160):
        for y in range(40, 120):
            image.putpixel((x, y), (250, 200, 40))
    image.save(path)
    return path


def test_settings_with_a_display_name_and_a_picture(page_for, tmp_path):
    """bob sets a display name and a picture; alice sees both beside his message and in
    her chat list."""
    alice, bob = meet(page_for, "alice", "bob")
    bob.get_by_role("link", name="bob: settings").click()
    expect(bob).to_have_url(re.compile(r"/settings$"))
    bob.get_by_label("Shown beside your messages").fill("Bob Builder")
    bob.get_by_role("button", name="Save the name").click()
    expect(bob.get_by_role("status")).to_have_text("Display name saved.")
    bob.get_by_label("A png, jpg or gif picture").set_input_files(picture_file(tmp_path))
    bob.get_by_role("button", name="Upload").click()
    expect(bob.get_by_role("status")).to_have_text("Picture saved.")
    expect(bob.get_by_role("img", name="Your picture")).to_be_visible()
    shoot(bob, "settings-desktop")

    open_direct_chat_from(bob, alice, "alice")
    send_message(bob, "Look at my new picture")
    message = alice.locator("#messages .message").last
    expect(message.locator(".sender")).to_have_text("Bob Builder")
    expect(message.locator("img.person-avatar")).to_be_visible()
    alice.reload()
    expect(chat_in_list(alice, "Bob Builder").locator(".chat-picture img")).to_be_visible()
    shoot(alice, "picture-in-chat-desktop")


def test_the_admin_page_on_a_desktop_and_a_phone(page_for):
    """root (the first account) sees Admin; bob does not and gets 403; root makes a
    sign-in link with its QR code, deactivates bob (his open page is logged out at once),
    and opens registration by invite link; on a phone too."""
    root = page_for("root")
    register(root, "root")
    bob = page_for("bob")
    register(bob, "bob")
    expect(bob.get_by_role("link", name="Admin")).to_have_count(0)
    assert bob.goto("/admin").status == 403
    bob.goto("/chats")
    wait_until_history_is_loaded(bob)

    root.get_by_role("link", name="Admin").click()
    expect(root.get_by_role("heading", name="Admin")).to_be_visible()
    row = root.locator(".admin-user", has_text="@bob")
    expect(row.locator(".role-tag")).to_have_text("member")
    row.get_by_role("button", name="Sign-in link").click()
    expect(root.get_by_role("img", name="QR code of the sign-in link")).to_be_visible()
    link = root.get_by_role("textbox", name="Sign-in link").input_value()
    assert re.search(r"/sign-in/[\w-]{20,}$", link)
    shoot(root, "admin-desktop")

    row = root.locator(".admin-user", has_text="@bob")
    row.get_by_role("button", name="Deactivate").click()
    expect(row.locator(".role-deactivated")).to_be_visible()
    expect(bob.get_by_role("heading", name="You are logged out")).to_be_visible()

    root.get_by_label("By invite link only").check()
    root.get_by_role("button", name="Save").click()
    expect(root.get_by_role("img", name="QR code of the invite link")).to_be_visible()

    phone = page_for("root-phone", **PHONE)
    phone.goto("/login")
    phone.get_by_label("Username").fill("root")
    phone.get_by_label("Password").fill("correct horse battery")
    with phone.expect_navigation():
        phone.get_by_role("button", name="Log in").click()
    phone.goto("/admin")
    expect(phone.get_by_role("heading", name="Admin")).to_be_visible()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "nothing scrolls sideways on a phone"
    shoot(phone, "admin-phone")
    phone.goto("/settings")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shoot(phone, "settings-phone")
