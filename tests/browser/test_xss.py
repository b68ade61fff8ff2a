"""Hostile text renders as text: script and event-handler payloads in channel names,
message bodies, file names and links never run and never become elements."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.ui import message_bodies, open_chat, register, send_message

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
