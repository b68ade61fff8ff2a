"""Accessible to everyone: axe-core finds no serious or critical problem on the login, find
and chats pages, in the light and the dark theme; the history is a live log; the chat works
with the keyboard alone, and focus is always visible."""

from __future__ import annotations

import re

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.browser.conftest import ROOT, skip_or_fail
from tests.browser.ui import (
    create_channel,
    history,
    meet,
    message_bodies,
    register,
    send_message,
    start_direct_chat,
    wait_until_chat_is_open,
)

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = {"serious", "critical"}


def run_axe(page: Page) -> list[dict]:
    """axe-core's violations on the page as it is now (WCAG 2.x A and AA, best practices).

    The page's Content-Security-Policy refuses inline scripts, which is what
    ``add_script_tag`` would add; evaluating the file runs it in the page all the same.
    """
    if not AXE.exists():
        skip_or_fail(f"{AXE.relative_to(ROOT)} is missing: run `npm ci` (make install does)")
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())
    return page.evaluate(
        """async () => {
            const result = await axe.run(document, {
                runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',
                                                'wcag22aa', 'best-practice']},
                resultTypes: ['violations'],
            });
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary),
            }));
        }"""
    )


def assert_no_serious_violations(page: Page, where: str) -> None:
    serious = [v for v in run_axe(page) if v["impact"] in SERIOUS]
    report = "\n".join(f"{v['impact']} {v['id']}: {v['help']}\n  {v['nodes'][:3]}" for v in serious)
    assert not serious, f"axe-core on {where}:\n{report}"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_nothing_serious_on_login_find_and_chats(page_for, scheme):
    """In both themes: the login form with an error, the find page with results, and the
    chats page with a conversation (own and others' messages, a link, the unread divider)."""
    kim = page_for(f"kim-{scheme}", color_scheme=scheme)
    lee = page_for(f"lee-{scheme}", color_scheme=scheme)
    kim.goto("/login")
    kim.get_by_role("button", name="Log in").click()
    expect(kim.locator(".form-error")).to_be_visible()
    assert_no_serious_violations(kim, f"the login page ({scheme})")

    register(lee, f"lee-{scheme}")
    register(kim, f"kim-{scheme}")
    kim.goto("/find")
    kim.get_by_label("Search people").fill(f"lee-{scheme}")
    expect(kim.get_by_role("button", name="Message")).to_have_count(1)
    assert_no_serious_violations(kim, f"the find page ({scheme})")

    start_direct_chat(kim, f"lee-{scheme}")
    send_message(kim, "Notes: https://example.org/notes")
    create_channel(lee, f"Plans {scheme}")
    send_message(lee, "Hello")
    kim.reload()
    send_message(kim, "Second")
    assert_no_serious_violations(kim, f"the chats page ({scheme})")
    wait_until_chat_is_open(lee)
    expect(lee.get_by_role("list", name="Your chats")).to_be_visible()
    assert_no_serious_violations(lee, f"the chats page with an unread chat ({scheme})")


def test_the_history_is_a_labelled_live_log(page_for):
    """Screen readers announce new messages: the history is a polite live log named after
    the open chat; every control of the page has a name."""
    mia = page_for("mia")
    register(mia, "mia")
    log = history(mia)
    expect(log).to_have_attribute("aria-live", "polite")
    expect(log).to_have_accessible_name("General Talk")
    for landmark in ("banner", "navigation", "main"):
        expect(mia.get_by_role(landmark)).to_have_count(1)
    expect(mia.get_by_role("region", name="Chat list")).to_be_visible()
    expect(mia.get_by_role("region", name="General Talk")).to_be_visible()
    unnamed = mia.evaluate(
        """() => [...document.querySelectorAll('button, a[href], input, textarea, select')]
            .filter(el => el.offsetParent !== null && el.type !== 'hidden')
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !el.getAttribute('aria-labelledby') && !el.textContent.trim())
            .map(el => el.outerHTML)"""
    )
    assert unnamed == []


def focused(page: Page) -> str:
    """What has the keyboard focus: its accessible role and name, roughly."""
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            const label = el.labels && el.labels[0] ? el.labels[0].textContent : '';
            return `${el.tagName.toLowerCase()} ${(label || el.textContent || '').trim()}`;
        }"""
    )


def outline_of_focus(page: Page) -> str:
    return page.evaluate(
        """() => { const s = getComputedStyle(document.activeElement);
                   return `${s.outlineStyle} ${s.outlineWidth}`; }"""
    )


def tab_to(page: Page, pattern: str, limit: int = 40) -> None:
    """Press Tab until the focus is on something matching ``pattern``; each stop on the
    way shows where the focus is."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if re.search(pattern, focused(page)):
            return
        style = outline_of_focus(page)
        assert not style.startswith("none"), f"no visible focus on {focused(page)}"
    raise AssertionError(f"Tab never reached {pattern!r}; last: {focused(page)}")


def test_the_chat_works_with_the_keyboard_alone(page_for, tmp_path):
    """Nia's page opens with the keyboard in the composer; back at the top of the page
    (the skip link first), she tabs to her chat with oli, opens it with Enter, writes with
    Enter, opens a picture and closes it with Escape; the focus is visible at every stop
    and comes back where it was."""
    oli, nia = meet(page_for, "oli", "nia")
    send_message(oli, "Hi nia")
    picture = tmp_path / "map.png"
    Image.new("RGB", (300, 200), (70, 130, 90)).save(picture)
    oli.locator("#file-input").set_input_files(picture)
    expect(oli.get_by_role("img", name="map.png")).to_be_visible()

    nia.goto("/chats")
    wait_until_chat_is_open(nia)
    expect(nia.get_by_label("Message", exact=True)).to_be_focused()
    for _ in range(60):
        nia.keyboard.press("Shift+Tab")
        if focused(nia) == "a Skip to content":
            break
    assert focused(nia) == "a Skip to content"
    tab_to(nia, r"^a .*Direct chat with oli")
    assert not outline_of_focus(nia).startswith("none")
    nia.keyboard.press("Enter")
    expect(nia.locator("#chat-title")).to_have_text("oli")
    expect(nia.get_by_label("Message", exact=True)).to_be_focused()
    nia.keyboard.type("Hello oli, typed with the keyboard")
    nia.keyboard.press("Enter")
    expect(message_bodies(oli).last).to_have_text("Hello oli, typed with the keyboard")

    # Back past the attach button, into the history: the actions of nia's message, then
    # oli's picture.
    nia.keyboard.press("Shift+Tab")
    expect(nia.get_by_role("button", name="Attach a file")).to_be_focused()
    nia.keyboard.press("Shift+Tab")
    expect(history(nia).get_by_role("button", name="Message actions").last).to_be_focused()
    nia.keyboard.press("Shift+Tab")
    picture_link = history(nia).get_by_role("link", name="map.png")
    expect(picture_link).to_be_focused()
    assert not outline_of_focus(nia).startswith("none")
    nia.keyboard.press("Enter")
    viewer = nia.get_by_role("dialog", name="map.png")
    expect(viewer).to_be_visible()
    nia.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    expect(picture_link).to_be_focused()
