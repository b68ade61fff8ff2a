"""openChatAt in real Chromium: a chat opened at a message that is not loaded shows the
page around it, scrolled to it and highlighted; paging both ways from there brings every
message once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, expect

from bench import seed
from tests.browser.ui import (
    create_channel,
    message_bodies,
    register,
    scroll_until_shown,
    wait_until_chat_is_open,
)

COUNT = 100


def open_chat_at(page: Page, chat_id: int, message_id: int) -> bool:
    """Call the client's openChatAt, as a search result or a reply's quote does."""
    return page.evaluate(
        """([chatId, messageId]) => import('/static/chat.js')
            .then((client) => client.openChatAt(chatId, messageId))""",
        [chat_id, message_id],
    )


def highlighted(page: Page):
    return page.locator("#messages .message.highlighted")


def test_open_chat_at_a_message_far_back_and_page_both_ways(page_for, live_server):
    dana = page_for("dana")
    register(dana, "dana")
    create_channel(dana, "Archive")
    archive = seed.channel_id(live_server, "Archive")
    start = datetime.now(UTC) - timedelta(days=2)
    bodies = [f"Line {n}" for n in range(COUNT)]
    ids = seed.add_messages(
        live_server, archive, seed.spread(["dana"], bodies, start, timedelta(minutes=1))
    )
    create_channel(dana, "Elsewhere")
    wait_until_chat_is_open(dana)

    assert open_chat_at(dana, archive, ids[40]) is True
    expect(dana.locator("#chat-title")).to_have_text("Archive")
    expect(highlighted(dana)).to_have_count(1)
    expect(highlighted(dana).locator(".message-body")).to_have_text("Line 40")
    expect(highlighted(dana)).to_be_in_viewport()
    expect(highlighted(dana)).to_be_focused()
    assert message_bodies(dana).count() < COUNT

    scroll_until_shown(dana, COUNT)
    expect(dana.locator("#history-top-note")).to_have_text("This is the beginning of the chat.")
    assert message_bodies(dana).all_inner_texts() == bodies

    # A message already shown: the highlight moves to it without reloading the chat.
    assert open_chat_at(dana, archive, ids[95]) is True
    expect(highlighted(dana).locator(".message-body")).to_have_text("Line 95")
    expect(highlighted(dana)).to_be_in_viewport()
    assert message_bodies(dana).count() == COUNT
