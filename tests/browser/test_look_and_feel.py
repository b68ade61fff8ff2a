"""The details that make it feel finished: day separators, times in the reader's own
locale and zone, one sender's messages grouped, clickable links (and only real ones), the
dark theme, and a notification for what arrives while the tab is in the background."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from bench import seed
from tests.browser.ui import (
    chat_in_list,
    create_channel,
    join_channel,
    message_bodies,
    open_chat,
    register,
    send_message,
    start_direct_chat,
    wait_until_chat_is_open,
)

ZONE = "Europe/Berlin"
# How each locale writes a day and a time (as the browser's Intl does).
LOCALES = {
    "en-GB": {"day": "{weekday} {day} {month}", "time": lambda t: t.strftime("%H:%M")},
    "en-US": {
        "day": "{weekday}, {month} {day}",
        "time": lambda t: t.strftime("%I:%M %p").lstrip("0"),
    },
}


def day_label(moment: datetime, locale: str) -> str:
    label = LOCALES[locale]["day"].format(
        weekday=moment.strftime("%A"), day=moment.day, month=moment.strftime("%B")
    )
    if moment.year != datetime.now(moment.tzinfo).year:
        label += f" {moment.year}" if locale == "en-GB" else f", {moment.year}"
    return label


@pytest.mark.parametrize("locale", ["en-GB", "en-US"])
def test_days_times_and_groups_in_the_readers_locale(page_for, live_server, locale):
    """Messages from three days show under "<a date>", "Yesterday" and "Today"; each time
    is written the reader's way, in their zone; a sender's messages within minutes of each
    other form one group, under one name."""
    name = f"uma-{locale.lower()}"
    uma = page_for(name, locale=locale, timezone_id=ZONE)
    register(uma, name)
    register(page_for(f"vic-{locale.lower()}"), f"vic-{locale.lower()}")
    channel = f"Days {locale}"
    create_channel(uma, channel)
    zone = ZoneInfo(ZONE)
    now = datetime.now(zone)
    earlier = (now - timedelta(days=3)).replace(hour=9, minute=30)
    yesterday = (now - timedelta(days=1)).replace(hour=14, minute=5)
    vic = f"vic-{locale.lower()}"
    seed.add_messages(
        live_server,
        seed.channel_id(live_server, channel),
        [
            (name, "Three days ago", earlier),
            (name, "Same minute, same group", earlier + timedelta(seconds=20)),
            (vic, "Another sender", earlier + timedelta(minutes=1)),
            (vic, "Much later, a new group", earlier + timedelta(minutes=30)),
            (vic, "Yesterday afternoon", yesterday),
            (name, "Today", now),
        ],
    )
    uma.reload()
    wait_until_chat_is_open(uma)
    expect(uma.locator("#messages .day-separator")).to_have_text(
        [day_label(earlier, locale), "Yesterday", "Today"]
    )
    expect(message_bodies(uma)).to_have_count(6)
    times = uma.locator("#messages .message-time")
    time_of = LOCALES[locale]["time"]
    expect(times.nth(0)).to_have_text(time_of(earlier))
    expect(times.nth(4)).to_have_text(time_of(yesterday))

    groups = uma.locator("#messages .message").evaluate_all(
        "els => els.map(el => el.classList.contains('continued'))"
    )
    assert groups == [False, True, False, False, False, False]
    names = uma.locator("#messages .message-meta").evaluate_all(
        "els => els.map(el => el.getBoundingClientRect().width > 1)"
    )
    assert names == [True, False, True, True, True, True]


def test_links_open_in_a_new_tab_and_everything_else_stays_text(page_for):
    """http(s) and mailto addresses, and addresses from "www.", become links opened without
    access to the chat's page (rel="noopener noreferrer"); the punctuation after them stays
    outside; javascript: and look-alikes remain plain text."""
    wes = page_for("wes")
    register(wes, "wes")
    create_channel(wes, "Links")
    wes.context.route(
        "https://example.org/**",
        lambda route: route.fulfill(body="<title>Docs</title>", content_type="text/html"),
    )
    send_message(
        wes,
        "Docs: https://example.org/guide?step=2#end, mail mailto:team@example.org, www.example.org."
        " Not links: javascript:alert(1) ftp://example.org/x app.py",
    )
    body = message_bodies(wes).last
    links = body.get_by_role("link")
    expect(links).to_have_count(3)
    guide = links.nth(0)
    expect(guide).to_have_text("https://example.org/guide?step=2#end")
    expect(guide).to_have_attribute("href", "https://example.org/guide?step=2#end")
    expect(guide).to_have_attribute("target", "_blank")
    expect(guide).to_have_attribute("rel", "noopener noreferrer")
    expect(links.nth(1)).to_have_attribute("href", "mailto:team@example.org")
    expect(links.nth(2)).to_have_text("www.example.org")
    expect(links.nth(2)).to_have_attribute("href", "http://www.example.org/")
    expect(body).to_contain_text("javascript:alert(1) ftp://example.org/x app.py")

    with wes.context.expect_page() as opened:
        guide.click()
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.url == "https://example.org/guide?step=2#end"
    assert tab.evaluate("window.opener") is None
    tab.close()


@pytest.mark.parametrize(
    ("scheme", "background", "text"),
    [("light", "rgb(243, 245, 247)", "rgb(31, 35, 40)"), ("dark", "rgb(13, 17, 23)", None)],
)
def test_the_theme_follows_the_systems_colour_scheme(page_for, scheme, background, text):
    """A dark system gets dark pages, a light one light pages, with no setting to touch."""
    page = page_for(f"xia-{scheme}", color_scheme=scheme)
    page.goto("/login")
    colours = page.evaluate(
        "() => { const s = getComputedStyle(document.body); return [s.backgroundColor, s.color]; }"
    )
    assert colours[0] == background
    if text:
        assert colours[1] == text
    else:
        assert colours[1] == "rgb(230, 237, 243)"


NOTIFICATION_SPY = """
window.__notifications = [];
window.__permissionRequests = 0;
if (window.Notification) {
    const Real = window.Notification;
    window.Notification = class extends Real {
        constructor(title, options) {
            super(title, options);
            window.__notifications.push({title, body: options && options.body});
        }
        static requestPermission(...args) {
            window.__permissionRequests += 1;
            return Real.requestPermission(...args);
        }
    };
}
"""

HIDE_TAB = """hidden => {
    Object.defineProperty(document, 'visibilityState', {
        configurable: true, get: () => hidden ? 'hidden' : 'visible'});
    Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
    document.dispatchEvent(new Event('visibilitychange'));
}"""


def notifications(page: Page) -> list[dict]:
    return page.evaluate("window.__notifications")


def test_permission_is_asked_only_when_the_user_presses_the_button(page_for):
    """Loading the chats page asks nothing; "Enable notifications" asks the browser."""
    yan = page_for("yan")
    yan.add_init_script(NOTIFICATION_SPY)
    register(yan, "yan")
    wait_until_chat_is_open(yan)
    button = yan.get_by_role("button", name="Enable notifications")
    expect(button).to_be_visible()
    assert yan.evaluate("window.__permissionRequests") == 0
    button.click()
    yan.wait_for_function("() => window.__permissionRequests === 1")


def test_a_hidden_tab_notifies_of_messages_in_other_chats_only(page_for):
    """Zoe allowed notifications (in a browser without a service worker: the page's own
    notification), chose to hear of every message of the channel Garden, and has her chat
    with ann open. While her tab is hidden, a message from ann in another chat shows a
    notification; one in the open chat does not,
    nor does zoe's own message from her other tab, nor anything while the tab is visible.
    Clicking the notification opens its chat."""
    zoe = page_for("zoe", permissions=["notifications"], service_workers="block")
    ann = page_for("ann")
    zoe.add_init_script(NOTIFICATION_SPY)
    register(zoe, "zoe")
    register(ann, "ann")
    expect(zoe.get_by_role("button", name="Enable notifications")).to_be_hidden()
    create_channel(ann, "Garden")
    zoe.reload()
    join_channel(zoe, "Garden")
    every_message = zoe.get_by_role("button", name="Notify every message")
    every_message.click()
    expect(every_message).to_have_attribute("aria-pressed", "true")
    start_direct_chat(ann, "zoe")
    send_message(ann, "Hi zoe")
    open_chat(zoe, "ann")
    wait_until_chat_is_open(zoe)

    zoe.evaluate(HIDE_TAB, True)
    send_message(ann, "In the open chat")
    expect(message_bodies(zoe).last).to_have_text("In the open chat")
    other_tab = zoe.context.new_page()
    other_tab.goto("/chats")
    open_chat(other_tab, "Garden")
    send_message(other_tab, "My own, from my phone")
    expect(chat_in_list(zoe, "Garden").locator(".chat-preview")).to_have_text(
        "You: My own, from my phone"
    )
    open_chat(ann, "Garden")
    send_message(ann, "The tomatoes are ripe")
    zoe.wait_for_function("() => window.__notifications.length > 0")
    assert notifications(zoe) == [{"title": "ann in Garden", "body": "The tomatoes are ripe"}]

    zoe.evaluate(HIDE_TAB, False)
    send_message(ann, "Seen while you look")
    expect(chat_in_list(zoe, "Garden").locator(".chat-preview")).to_have_text(
        "ann: Seen while you look"
    )
    assert len(notifications(zoe)) == 1


def test_clicking_a_notification_opens_its_chat(page_for):
    """The notification's click brings the tab forward with that chat open."""
    bea = page_for("bea", permissions=["notifications"], service_workers="block")
    cyd = page_for("cyd")
    bea.add_init_script(
        NOTIFICATION_SPY.replace(
            "window.__notifications.push(", "window.__last = this; window.__notifications.push("
        )
    )
    register(bea, "bea")
    register(cyd, "cyd")
    wait_until_chat_is_open(bea)
    bea.evaluate(HIDE_TAB, True)
    start_direct_chat(cyd, "bea")
    send_message(cyd, "Call me")
    bea.wait_for_function("() => window.__notifications.length === 1")
    assert notifications(bea)[0]["title"] == "cyd"
    bea.evaluate(HIDE_TAB, False)
    bea.evaluate("window.__last.dispatchEvent(new Event('click'))")
    expect(bea.locator("#chat-title")).to_have_text("cyd")
    expect(bea).to_have_url(re.compile(r"/chats\?chat=\d+$"))
