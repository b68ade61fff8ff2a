"""Hostile text renders as text: script and event-handler payloads in channel names,
message bodies, file names and links never run and never become elements."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.ui import (
    create_channel,
    join_channel,
    message_bodies,
    open_chat,
    register,
    send_message,
)

PAYLOADS = [
    "<script>window.__xss = 'script'</script>",
    "<img src=x onerror=\"window.__xss = 'img'\">",
    "<svg onload=\"window.__xss = 'svg'\"></svg>",
    "javascript:window.__xss='link'",
    "[click](javascript:window.__xss='md')",
    "<a href=\"javascript:window.__xss='a'\">click</a>",
    '"><iframe src="javascript:window.__xss=\'iframe\'"></iframe>',
]
CHANNEL = "<img src=x onerror=window.__xss='ch'>"
FILE_NAME = "<img src=x onerror=window.__xss='file'>.txt"


def watch(page: Page, dialogs: list[str]) -> None:
    """Record any dialog a payload might open."""
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))


def assert_nothing_ran(page: Page, dialogs: list[str]) -> None:
    assert page.evaluate("window.__xss") is None
    assert dialogs == []
    injected = page.locator(
        "#messages script, #messages iframe, #messages svg[onload], [onerror], [onload],"
        " a[href^='javascript:' i]"
    )
    expect(injected).to_have_count(0)


def upload_with_name(page: Page, chat_id: int, name: str) -> None:
    """Upload a small text file under ``name`` the way the page's own script does."""
    status = page.evaluate(
        """async ([chatId, name]) => {
            const form = new FormData();
            form.append("chat_id", String(chatId));
            form.append("client_id", "xss" + Date.now());
            form.append("file", new File(["harmless"], name, {type: "text/plain"}));
            const token = document.querySelector('meta[name="csrf-token"]').content;
            const response = await fetch("/upload", {method: "POST", body: form,
                headers: {"X-CSRFToken": token, "Accept": "application/json"}});
            return response.status;
        }""",
        [chat_id, name],
    )
    assert status == 201


def test_hostile_names_bodies_files_and_links_render_as_text(page_for):
    alice = page_for("alice")
    bob = page_for("bob")
    dialogs: list[str] = []
    for page in (alice, bob):
        page.add_init_script("window.__xss = null")
        watch(page, dialogs)
    register(bob, "bob_x")
    register(alice, "alice_x")

    alice.get_by_label("New channel").fill(CHANNEL)
    alice.get_by_role("button", name="Create").click()
    expect(alice.locator("#chat-title")).to_have_text(CHANNEL)
    joinable = bob.get_by_role("list", name="Channels you can join")
    expect(joinable.get_by_text(CHANNEL, exact=True)).to_be_visible()

    open_chat(alice, "General Talk")
    for payload in PAYLOADS:
        send_message(alice, payload)
    chat_id = int(alice.url.rsplit("=", 1)[1])
    upload_with_name(alice, chat_id, FILE_NAME)

    open_chat(bob, "General Talk")
    expect(message_bodies(bob).filter(has_text="window.__xss")).to_have_count(len(PAYLOADS))
    for payload in PAYLOADS:
        expect(message_bodies(bob).get_by_text(payload, exact=True)).to_be_visible()
    expect(bob.locator("#messages").get_by_text(FILE_NAME, exact=True).first).to_be_visible()
    bob.get_by_role("list", name="Channels you can join").get_by_role(
        "button", name="Join"
    ).first.click()
    expect(bob.locator("#chat-title")).to_have_text(CHANNEL)

    bob.reload()  # history rendered from the server's pages, not only from live events
    open_chat(bob, "General Talk")
    expect(message_bodies(bob).filter(has_text="window.__xss")).to_have_count(len(PAYLOADS))
    for page in (alice, bob):
        assert_nothing_ran(page, dialogs)


def test_a_username_with_markup_is_refused_at_the_door(page_for):
    page = page_for("mallory")
    page.add_init_script("window.__xss = null")
    page.goto("/register")
    page.get_by_label("Username").fill("<script>window.__xss=1</script>")
    page.get_by_label("Password", exact=True).fill("long enough password")
    page.get_by_label("Repeat the password").fill("long enough password")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("A username has 3 to 32 characters")).to_be_visible()
    assert page.evaluate("window.__xss") is None


MARKDOWN_PAYLOADS = [
    "[x](javascript:window.__xss='md1')",
    "[x](JaVaScRiPt:window.__xss='md2')",
    "[x](  javascript:window.__xss='md3'  )",
    "[x](&#106;avascript:window.__xss='md4')",
    "[x](java%0ascript:window.__xss='md5')",
    "<javascript:window.__xss='autolink'>",
    "[x](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3M9J2RhdGEnPC9zY3JpcHQ+)",
    "![x](javascript:window.__xss='image')",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9IndpbmRvdy5fX3hzcz0xIi8+)",
    "[x](vbscript:msgbox(1)) [y](file:///etc/passwd) [z](//evil.example/x)",
    "[x][ref]\n\n[ref]: javascript:window.__xss='reference'",
    "`<img src=x onerror=\"window.__xss='code'\">`",
    "```\n<img src=x onerror=\"window.__xss='block'\">\n```",
    "**<img src=x onerror=\"window.__xss='bold'\">**",
    "[<img src=x onerror=\"window.__xss='label'\">](https://example.org)",
    '[x](https://example.org "t" onmouseover="window.__xss=\'title\'")',
    "<https://example.org/\"onmouseover=\"window.__xss='quote'>",
    "www.example.org/<script>window.__xss='www'</script>",
]

# 4,000 characters each, made to make a parser work hard: nested emphasis, brackets,
# quotes and lists, and a runaway code span.
PATHOLOGICAL = {
    "_" * 1999 + "a" + "_" * 2000: "a",
    "*a **" * 800: "*a **",
    "[a" * 2000: "[a[a",
    ">" * 3999 + "x": "x",
    "- " * 1999 + "xy": "xy",
    "`a" * 2000: "aaaa",
}


def check_markdown_payloads(page: Page) -> None:
    """The channel of Markdown payloads as ``page`` shows it: every payload that names
    window.__xss shows as text, and every link opens a safe address safely."""
    shown_as_text = [payload for payload in MARKDOWN_PAYLOADS if "window.__xss" in payload]
    expect(message_bodies(page).filter(has_text="window.__xss")).to_have_count(len(shown_as_text))
    expect(page.locator("#messages img, #messages h1")).to_have_count(0)
    hrefs = page.locator("#messages a").evaluate_all("links => links.map(a => a.href)")
    assert "https://example.org/" in hrefs, "the safe links are links"
    assert all(href.split(":", 1)[0] in {"http", "https", "mailto"} for href in hrefs), hrefs
    for link in page.locator("#messages a").all():
        expect(link).to_have_attribute("rel", "noopener noreferrer")


def check_pathological(page: Page) -> None:
    """The channel of 4,000-character messages: each shows its text, in elements nested
    no deeper than 25."""
    for text in PATHOLOGICAL.values():
        expect(message_bodies(page).filter(has_text=text).first).to_be_visible()
    depth = page.evaluate(
        """() => Math.max(...[...document.querySelectorAll('#messages .message-body *')]
            .map(el => { let d = 0; for (let n = el; !n.classList.contains('message-body');
                         n = n.parentElement) d += 1; return d; }))"""
    )
    assert depth <= 25


def test_markdown_payloads_never_run_and_links_open_only_safe_addresses(page_for):
    """Links to javascript:, data:, vbscript: and file: addresses, HTML in code and in
    emphasis, and autolinks render as text or as safe links; 4,000-character messages built
    to make a parser work hard render with their text, in a shallow tree of elements."""
    from tests.browser.test_mentions_and_formatting import send

    alice = page_for("alice")
    bob = page_for("bob", viewport={"width": 390, "height": 844})
    dialogs: list[str] = []
    for page in (alice, bob):
        page.add_init_script("window.__xss = null")
        watch(page, dialogs)
    register(bob, "bob_md")
    register(alice, "alice_md")
    create_channel(alice, "Markdown")
    for payload in MARKDOWN_PAYLOADS:
        send(alice, payload)
    check_markdown_payloads(alice)
    create_channel(alice, "Heavy")
    for payload in PATHOLOGICAL:
        send(alice, payload)
    check_pathological(alice)

    bob.reload()
    join_channel(bob, "Markdown")
    check_markdown_payloads(bob)
    bob.get_by_role("button", name="Back").click()
    join_channel(bob, "Heavy")
    check_pathological(bob)
    for page in (alice, bob):
        assert_nothing_ran(page, dialogs)
