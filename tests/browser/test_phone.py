"""On a phone (390x844, touch): one panel at a time, the chat list then the conversation with
a Back button; every touch target at least 44 px; nothing scrolls sideways; the text box
stays above the on-screen keyboard."""

from __future__ import annotations

import re

from PIL import Image
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE
from tests.browser.ui import (
    chat_in_list,
    message_bodies,
    register,
    send_message,
    start_direct_chat,
    wait_until_chat_is_open,
)

TOUCH_TARGET_PX = 44
LONG_WORD = "Supercalifragilisticexpialidocious" * 6
LONG_LINK = "https://example.org/" + "very-long-path-segment/" * 12

SMALL_TARGETS = """() => [...document.querySelectorAll(
        'a[href], button, input:not([type=hidden]), textarea, select, [tabindex="0"]')]
    .filter(el => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden')
    // Links inside a sentence are exempt (WCAG 2.5.8): they are as tall as the text.
    .filter(el => !(el.tagName === 'A' && el.closest('p')))
    .map(el => ({el: el.outerHTML.slice(0, 100), box: el.getBoundingClientRect()}))
    .filter(({box}) => box.width < 44 - 0.5 || box.height < 44 - 0.5)
    .map(({el, box}) => `${Math.round(box.width)}x${Math.round(box.height)} ${el}`)"""

SIDEWAYS = """() => {
    const width = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll('body *')]
        .filter(el => el.getClientRects().length > 0)
        .filter(el => !el.closest('.visually-hidden') && !el.classList.contains('skip-link'))
        .filter(el => el.getBoundingClientRect().right > width + 0.5)
        .map(el => el.outerHTML.slice(0, 100));
    return {scrollWidth: document.documentElement.scrollWidth, width, wide: wide.slice(0, 5)};
}"""


def panels(page: Page) -> tuple[bool, bool]:
    """Whether the chat list and the conversation are on screen."""
    return (
        page.get_by_role("region", name="Chat list").is_visible(),
        page.locator(".right-panel").is_visible(),
    )


def assert_fits_the_phone(page: Page, where: str) -> None:
    small = page.evaluate(SMALL_TARGETS)
    assert small == [], f"touch targets under {TOUCH_TARGET_PX} px on {where}: {small}"
    sideways = page.evaluate(SIDEWAYS)
    assert sideways["scrollWidth"] <= sideways["width"], f"{where} scrolls sideways: {sideways}"
    assert sideways["wide"] == [], f"{where} has content past the right edge: {sideways}"


def test_a_phone_shows_the_list_then_the_conversation_with_a_back_button(page_for):
    """Bob on his phone sees his chats; tapping one shows only the conversation, with Back;
    Back (the button, the phone's own back, or Escape) shows only the list again, without
    reloading the page."""
    bob = page_for("bob", **PHONE)
    alice = page_for("alice")
    register(bob, "bob")
    register(alice, "alice")
    assert panels(bob) == (True, False)
    expect(bob.get_by_role("button", name="Back")).to_be_hidden()

    start_direct_chat(alice, "bob")
    send_message(alice, "Are you on your phone?")
    bob.evaluate("window.sameDocument = true")
    chat_in_list(bob, "alice").tap()
    expect(bob.locator("#chat-title")).to_have_text("alice")
    assert panels(bob) == (False, True)
    expect(message_bodies(bob)).to_have_text(["Are you on your phone?"])
    expect(bob).to_have_url(re.compile(r"/chats\?chat=\d+$"))
    wait_until_chat_is_open(bob)
    bob.get_by_label("Message", exact=True).tap()
    bob.keyboard.type("Yes, on the bus")
    bob.get_by_role("button", name="Send").tap()
    expect(message_bodies(alice)).to_have_text(["Are you on your phone?", "Yes, on the bus"])

    bob.get_by_role("button", name="Back").tap()
    assert panels(bob) == (True, False)
    expect(chat_in_list(bob, "alice")).to_be_focused()

    chat_in_list(bob, "alice").tap()
    expect(bob.locator(".right-panel")).to_be_visible()
    bob.go_back()
    expect(bob.get_by_role("region", name="Chat list")).to_be_visible()
    assert panels(bob) == (True, False)

    chat_in_list(bob, "alice").tap()
    expect(bob.locator(".right-panel")).to_be_visible()
    bob.locator("#history").focus()
    bob.keyboard.press("Escape")
    expect(bob.get_by_role("region", name="Chat list")).to_be_visible()
    assert panels(bob) == (True, False)
    assert bob.evaluate("window.sameDocument") is True

    bob.reload()
    assert panels(bob) == (True, False)


def test_touch_targets_are_big_enough_and_nothing_scrolls_sideways(page_for, tmp_path):
    """On the login, find, chat list and conversation pages, with a long word, a long link,
    a wide picture and a file in the conversation: every control is at least 44 px each
    way, and nothing reaches past the right edge."""
    carol = page_for("carol", **PHONE)
    carol.goto("/login")
    assert_fits_the_phone(carol, "the login page")
    register(carol, "carol")
    carol.goto("/find")
    carol.get_by_label("Search people").fill("carol")
    expect(carol.get_by_role("button", name="Notes to self")).to_be_visible()
    assert_fits_the_phone(carol, "the find page")

    carol.get_by_role("button", name="Notes to self").tap()
    expect(carol.locator("#chat-title")).to_have_text("carol (you)")
    wait_until_chat_is_open(carol)
    send_message(carol, LONG_WORD)
    send_message(carol, f"Look: {LONG_LINK} (the map)")
    wide = tmp_path / "panorama.png"
    Image.new("RGB", (2400, 300), (40, 90, 160)).save(wide)
    notes = tmp_path / "notes-with-a-rather-long-name-for-a-small-phone-screen.txt"
    notes.write_text("bring water\n")
    carol.locator("#file-input").set_input_files([wide, notes])
    expect(carol.get_by_role("img", name="panorama.png")).to_be_visible()
    expect(carol.get_by_role("link", name=re.compile("^Download notes-with"))).to_be_visible()
    expect(carol.get_by_role("link", name=LONG_LINK)).to_be_visible()
    assert_fits_the_phone(carol, "the conversation")

    carol.get_by_role("button", name="Back").tap()
    expect(carol.get_by_role("region", name="Chat list")).to_be_visible()
    assert_fits_the_phone(carol, "the chat list")


def test_the_text_box_stays_above_the_on_screen_keyboard(page_for):
    """When the on-screen keyboard takes the lower part of the screen (the visual viewport
    shrinks), the page shrinks with it: the text box and the newest message stay in view."""
    dan = page_for("dan", **PHONE)
    register(dan, "dan")
    chat_in_list(dan, "General Talk").tap()
    wait_until_chat_is_open(dan)
    for n in range(1, 13):
        send_message(dan, f"Line {n} of a long story")
    composer = dan.get_by_label("Message", exact=True)
    composer.tap()

    keyboard_top = 844 - 336
    dan.evaluate(
        """height => {
            const shrunk = {configurable: true, get: () => height};
            Object.defineProperty(visualViewport, 'height', shrunk);
            visualViewport.dispatchEvent(new Event('resize'));
        }""",
        keyboard_top,
    )
    dan.wait_for_function(
        """top => {
            const box = document.getElementById('composer').getBoundingClientRect();
            const last = [...document.querySelectorAll('#messages .message')].pop();
            const history = document.getElementById('history').getBoundingClientRect();
            const lastBottom = last.getBoundingClientRect().bottom;
            return box.bottom <= top + 0.5 && lastBottom <= history.bottom + 0.5;
        }""",
        arg=keyboard_top,
    )
    expect(composer).to_be_in_viewport()
    expect(message_bodies(dan).last).to_be_in_viewport()
    composer.fill("Still visible")
    composer.press("Enter")
    expect(message_bodies(dan).last).to_have_text("Still visible")
    expect(message_bodies(dan).last).to_be_in_viewport()
