"""Two workers on a Redis of the test's own, a real Chromium page on the first: Redis is
killed while jack, on the second worker, keeps sending, then started again. The page's
worker tells it to resync, and its open chat shows every message jack had acknowledged,
once each, in order, although some never reached it live."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.ui import join_channel, message_bodies, register, wait_until_chat_is_open
from tests.live_server import LiveServer, RealClient
from tests.own_redis import OwnRedis, workers_on_own_redis
from tests.test_queue_outage import Follower

OUTAGE_S = 4
# jack's messages all have to come through; there are a few hundred at most.
OUTCOME_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[OwnRedis, list[LiveServer]]]:
    with workers_on_own_redis(tmp_path_factory.mktemp("queue-resync")) as running:
        yield running


@pytest.fixture(scope="module")
def live_server(cluster: tuple[OwnRedis, list[LiveServer]]) -> LiveServer:
    """The pages of this module open on the first worker."""
    return cluster[1][0]


def test_a_page_told_to_resync_shows_what_it_missed_while_redis_was_away(page_for, cluster):
    queue, (first, second) = cluster
    ivy = page_for("ivy")
    register(ivy, "ivy")
    jack = Follower(RealClient(second, f"jack-{uuid.uuid4().hex[:6]}").register())
    jack.connect()
    name = f"resync-{uuid.uuid4().hex[:6]}"
    channel = jack.call("create_channel", {"name": name})["chat"]["id"]
    jack.open(channel)
    ivy.reload()
    join_channel(ivy, name)
    wait_until_chat_is_open(ivy)

    acked: list[dict[str, Any]] = []
    stop = threading.Event()

    def talk() -> None:
        try:
            n = 0
            while not stop.is_set():
                acked.append(jack.send_until_acknowledged(f"jack {n}"))
                n += 1
                time.sleep(0.05)
        except BaseException as error:  # reported by the test, not lost in the thread
            jack.problems.append(error)

    talker = threading.Thread(target=talk)
    talker.start()
    try:
        expect(message_bodies(ivy).first).to_have_text("jack 0")
        queue.kill()
        time.sleep(OUTAGE_S)
        queue.start()
        expect(ivy.locator("#chat-app")).to_have_attribute(
            "data-resyncs", re.compile(r"^[1-9]"), timeout=OUTCOME_TIMEOUT_MS
        )
        count = len(acked)
        expect(message_bodies(ivy).nth(count + 5)).to_be_attached(timeout=OUTCOME_TIMEOUT_MS)
    finally:
        stop.set()
        talker.join(timeout=60)
    assert not jack.problems, jack.problems
    assert jack.refused > 0, "jack's sends met the outage"

    bodies = [message["body"] for message in sorted(acked, key=lambda m: m["id"])]
    expect(message_bodies(ivy)).to_have_text(bodies, timeout=OUTCOME_TIMEOUT_MS)
    stored = first.query("SELECT body FROM messages WHERE chat_id = ? ORDER BY id", (channel,))
    assert [row["body"] for row in stored] == bodies
