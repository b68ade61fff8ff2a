"""History pages cut by size (MAX_REPLY_BYTES) in real Chromium: scrolling still brings
every message once, in order, up to the start of the chat and down to its newest."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from bench import seed
from tests.browser.ui import (
    create_channel,
    message_bodies,
    open_chat,
    register,
    scroll_until_shown,
    start_direct_chat,
    wait_until_chat_is_open,
)
from tests.live_server import LiveServer, start_server

# A page of these holds three or four messages: far fewer than the 20 shown on open or the
# 10 of a scroll.
REPLY_BYTES = 8_000
COUNT = 30


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("big-pages"), MAX_REPLY_BYTES=str(REPLY_BYTES))
    yield server
    server.stop()


def long_bodies(label: str) -> list[str]:
    """Messages of about 1,500 to 2,300 characters, each named by its number."""
    return [f"{label} {n}: " + "words of a long report " * (65 + n % 4 * 10) for n in range(COUNT)]


def test_scrolling_up_through_long_messages_in_small_pages(page_for, live_server):
    carol = page_for("carol")
    register(carol, "carol")
    create_channel(carol, "Reports")
    chat_id = seed.channel_id(live_server, "Reports")
    bodies = long_bodies("Report")
    start = datetime.now(UTC) - timedelta(hours=1)
    seed.add_messages(live_server, chat_id, seed.spread(["carol"], bodies, start, timedelta(0)))
    carol.reload()
    wait_until_chat_is_open(carol)
    expect(message_bodies(carol).last).to_contain_text(f"Report {COUNT - 1}:")
    assert message_bodies(carol).count() < 10, "the first page was cut by its size"

    scroll_until_shown(carol, COUNT, ends=("top",))
    expect(carol.locator("#history-top-note")).to_have_text("This is the beginning of the chat.")
    shown = message_bodies(carol).all_inner_texts()
    assert [text.split(":")[0] for text in shown] == [f"Report {n}" for n in range(COUNT)]


def test_reading_down_from_the_first_unread_in_small_pages(page_for, live_server):
    dave, erin = page_for("dave"), page_for("erin")
    register(dave, "dave")
    register(erin, "erin")
    chat_id = start_direct_chat(erin, "dave")
    bodies = long_bodies("Note")
    start = datetime.now(UTC) - timedelta(minutes=5)
    seed.add_messages(live_server, chat_id, seed.spread(["erin"], bodies, start, timedelta(0)))
    dave.reload()
    open_chat(dave, "erin")
    expect(dave.locator("#messages .unread-divider")).to_have_text("New messages")
    expect(message_bodies(dave).first).to_contain_text("Note 0:")
    assert message_bodies(dave).count() < COUNT, "the unread page was cut by its size"

    scroll_until_shown(dave, COUNT, ends=("bottom",))
    shown = message_bodies(dave).all_inner_texts()
    assert [text.split(":")[0] for text in shown] == [f"Note {n}" for n in range(COUNT)]
