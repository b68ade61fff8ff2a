"""Mentions, formatting and reading in a real Chromium, on a desktop and on a phone: "@"
completes a chat's members, a mention is highlighted and counted in the chat list until
read, a mention notifies through the service worker, Markdown renders as elements,
right-to-left text lays out right to left, and a long message collapses behind
"Show more"."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE
from tests.browser.test_look_and_feel import HIDE_TAB, NOTIFICATION_SPY
from tests.browser.test_service_worker_notifications import NOTIFICATIONS, service_worker
from tests.browser.ui import (
    chat_in_list,
    create_channel,
    open_chat,
    register,
    wait_until_async,
    wait_until_chat_is_open,
)


def send(page: Page, text: str) -> None:
    """Type ``text`` in the open chat and press Enter; wait until it is stored (its body
    shows formatted, so it is not compared with what was typed)."""
    composer = page.get_by_label("Message", exact=True)
    composer.fill(text)
    composer.press("Enter")
    expect(composer).to_have_value("")
    expect(page.locator("#messages .message.pending")).to_have_count(0)
    expect(page.locator("#messages .message.failed")).to_have_count(0)


def mention_badge(page: Page, name: str):
    return chat_in_list(page, name).locator(".mention-badge")


def test_a_mention_is_completed_highlighted_counted_and_read(page_for):
    """Alice (desktop) types "@b" in General Talk: a listbox offers bob, Enter puts
    "@bob " in the text box without sending. Bob, on his phone with the list showing, sees
    General Talk marked "@1" (read out as a mention of him); opening it shows his name
    highlighted as his, and the mark goes once he has read it. Bob answers by tapping
    alice's name in the suggestions."""
    bob = page_for("bob", **PHONE)
    alice = page_for("alice")
    register(bob, "bob")
    register(alice, "alice")
    open_chat(alice, "General Talk")
    wait_until_chat_is_open(alice)

    composer = alice.get_by_label("Message", exact=True)
    composer.press_sequentially("Hi @b")
    suggestions = alice.get_by_role("listbox", name="People to mention")
    expect(suggestions).to_be_visible()
    expect(suggestions.get_by_role("option")).to_have_text(["@bob, online"])
    expect(composer).to_have_attribute("aria-activedescendant", "mention-option-0")
    expect(suggestions.get_by_role("option", name="@bob")).to_have_attribute(
        "aria-selected", "true"
    )
    composer.press("Enter")
    expect(suggestions).to_be_hidden()
    expect(composer).to_have_value("Hi @bob ")
    composer.press_sequentially("can you review? @nobody")
    composer.press("Escape")
    composer.press("Enter")
    expect(composer).to_have_value("")
    sent = alice.locator("#messages .message").last
    expect(sent.locator(".mention")).to_have_text(["@bob"])
    expect(sent.locator("mark")).to_have_count(0)

    expect(mention_badge(bob, "General Talk")).to_have_text("@1")
    expect(chat_in_list(bob, "General Talk")).to_contain_text("1 mention of you")
    open_chat(bob, "General Talk")
    mine = bob.locator("#messages .message").last.locator("mark.mention-me")
    expect(mine).to_have_text("@bob")
    expect(bob.locator("#messages .message").last).to_contain_text("@nobody")
    expect(bob.locator("#messages .message").last.locator(".mention")).to_have_count(1)
    bob.get_by_role("button", name="Back").click()
    expect(mention_badge(bob, "General Talk")).to_be_hidden()
    expect(chat_in_list(bob, "General Talk")).not_to_contain_text("mention")

    open_chat(bob, "General Talk")
    wait_until_chat_is_open(bob)
    reply = bob.get_by_label("Message", exact=True)
    reply.tap()
    reply.press_sequentially("@AL")
    bob.get_by_role("option", name="@alice").tap()
    expect(reply).to_have_value("@alice ")
    expect(reply).to_be_focused()
    reply.press_sequentially("done")
    reply.press("Enter")
    expect(alice.locator("#messages .message").last.locator("mark.mention-me")).to_have_text(
        "@alice"
    )


def test_a_mention_in_a_channel_notifies_through_the_service_worker(page_for):
    """Dan allowed notifications but did not choose every message of General Talk; he has
    another chat open and looks at another tab. A plain message there notifies nothing;
    erin's message naming him shows as a notification of the service worker."""
    dan = page_for("dan", permissions=["notifications"])
    erin = page_for("erin")
    register(dan, "dan")
    register(erin, "erin")
    create_channel(dan, "Elsewhere")
    wait_until_chat_is_open(dan)
    worker = service_worker(dan)
    assert worker is not None
    expect(dan.get_by_role("button", name="Notify every message")).to_have_attribute(
        "aria-pressed", "false"
    )
    dan.evaluate(HIDE_TAB, True)

    open_chat(erin, "General Talk")
    wait_until_chat_is_open(erin)
    send(erin, "Nothing for dan here")
    expect(chat_in_list(dan, "General Talk").locator(".chat-preview")).to_have_text(
        "erin: Nothing for dan here"
    )
    send(erin, "@dan can you open the door?")
    wait_until_async(dan, f"async () => (await ({NOTIFICATIONS})()).length > 0")
    chat_id = int(erin.url.rsplit("=", 1)[1])
    assert dan.evaluate(NOTIFICATIONS) == [
        {
            "title": "erin in General Talk",
            "body": "@dan can you open the door?",
            "tag": f"chat-{chat_id}",
            "chatId": chat_id,
            "silent": False,
        }
    ]


def test_a_mention_notifies_with_the_page_own_notification_without_a_worker(page_for):
    """In a browser without a service worker, the page's own notification tells fay of a
    mention in a channel whose every message she did not choose."""
    fay = page_for("fay", permissions=["notifications"], service_workers="block")
    gus = page_for("gus")
    fay.add_init_script(NOTIFICATION_SPY)
    register(fay, "fay")
    register(gus, "gus")
    create_channel(fay, "Quiet")
    wait_until_chat_is_open(fay)
    fay.evaluate(HIDE_TAB, True)
    open_chat(gus, "General Talk")
    wait_until_chat_is_open(gus)
    send(gus, "No one named")
    expect(chat_in_list(fay, "General Talk").locator(".chat-preview")).to_have_text(
        "gus: No one named"
    )
    send(gus, "@fay lunch?")
    fay.wait_for_function("() => window.__notifications.length > 0")
    assert fay.evaluate("window.__notifications") == [
        {"title": "gus in General Talk", "body": "@fay lunch?"}
    ]


FORMATTED = (
    "**bold** and _italic_ and ~~gone~~ and `a <b>code</b>`\n"
    "# not a heading\n"
    "> quoted words\n"
    "\n"
    "- first\n"
    "- second\n"
    "\n"
    "1. one\n"
    "2. two\n"
    "\n"
    "```\n<script>window.__xss = 1</script>\n```\n"
    "see www.example.org and [the docs](https://example.org/docs) ![pic](https://example.org/p.png)"
)


def check_formatting(page: Page) -> None:
    message = page.locator("#messages .message").filter(has_text="quoted words")
    body = message.locator(".message-body")
    expect(body.locator("strong")).to_have_text("bold")
    expect(body.locator("em")).to_have_text("italic")
    expect(body.locator("del")).to_have_text("gone")
    expect(body.locator("p > code")).to_have_text("a <b>code</b>")
    expect(body).to_contain_text("# not a heading")
    expect(body.locator("h1, h2, img, b, script")).to_have_count(0)
    expect(body.locator("blockquote")).to_have_text("quoted words")
    expect(body.locator("ul > li")).to_have_text(["first", "second"])
    expect(body.locator("ol > li")).to_have_text(["one", "two"])
    expect(body.locator("pre > code")).to_have_text("<script>window.__xss = 1</script>")
    links = body.get_by_role("link")
    expect(links).to_have_text(["www.example.org", "the docs", "pic"])
    expect(links.first).to_have_attribute("href", "http://www.example.org/")
    for index in range(3):
        expect(links.nth(index)).to_have_attribute("target", "_blank")
        expect(links.nth(index)).to_have_attribute("rel", "noopener noreferrer")


def test_formatting_right_to_left_text_and_long_messages(page_for):
    """Hal (desktop) sends Markdown, Hebrew and Arabic, and a 40-line message; ivy sees
    them on her phone as he does: elements for the Markdown, the right-to-left text laid
    out right to left, and the long message collapsed until she presses "Show more",
    which opens it where it stands."""
    ivy = page_for("ivy", **PHONE)
    hal = page_for("hal")
    ivy.add_init_script("window.__xss = null")
    hal.add_init_script("window.__xss = null")
    register(ivy, "ivy")
    register(hal, "hal")
    open_chat(hal, "General Talk")
    wait_until_chat_is_open(hal)
    send(hal, FORMATTED)
    check_formatting(hal)
    send(hal, "שלום לכולם, מה שלומכם?")
    send(hal, "مرحبا بالجميع")
    send(hal, "\n".join(f"line {n} of the log" for n in range(1, 41)))

    open_chat(ivy, "General Talk")
    messages = ivy.locator("#messages .message")
    for text in ("שלום לכולם", "مرحبا بالجميع"):
        paragraph = messages.filter(has_text=text).locator(".message-body p")
        expect(paragraph).to_have_attribute("dir", "auto")
        assert paragraph.evaluate("p => getComputedStyle(p).direction") == "rtl"
    english = messages.filter(has_text="line 1 of the log").locator(".message-body p")
    assert english.evaluate("p => getComputedStyle(p).direction") == "ltr"
    expect(ivy.locator("#messages .sender").first).to_have_attribute("dir", "auto")

    long_message = messages.filter(has_text="line 1 of the log")
    body = long_message.locator(".message-body")
    show_more = long_message.get_by_role("button", name="Show more")
    expect(show_more).to_have_attribute("aria-expanded", "false")
    expect(show_more).to_have_attribute("aria-controls", body.evaluate("b => b.id"))
    expect(body).to_have_class("message-body collapsed")
    assert body.evaluate("b => b.scrollHeight > b.clientHeight"), "the end is hidden"
    long_message.scroll_into_view_if_needed()
    top = long_message.evaluate("el => el.getBoundingClientRect().top")
    show_more.tap()
    show_less = long_message.get_by_role("button", name="Show less")
    expect(show_less).to_have_attribute("aria-expanded", "true")
    assert long_message.evaluate("el => el.getBoundingClientRect().top") == top
    expect(body).not_to_have_class("collapsed")
    assert body.evaluate("b => b.scrollHeight <= b.clientHeight")
    show_less.tap()
    expect(long_message.get_by_role("button", name="Show more")).to_be_visible()

    check_formatting(ivy)
    assert ivy.evaluate("window.__xss") is None
