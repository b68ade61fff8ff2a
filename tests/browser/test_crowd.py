"""Many people reaching one person at once, in real Chromium: each new direct chat makes the
page ask for its chat list again, and those requests share one budget (LIST_CHATS_RATE_LIMIT)
with every tab of the user. The page asks once more after the request in flight instead of
once per event, so every chat shows and the list never says "too fast"."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.ui import chat_in_list, register, wait_until_chat_is_open
from tests.live_server import LiveServer, RealClient, csrf_token, start_server

CROWD = 35  # 70 list refreshes on the page (a new chat, then its first message): over 30


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # The crowd registers from one address; every other limit is as shipped.
    server = start_server(tmp_path_factory.mktemp("crowd"), REGISTER_RATE_LIMIT="1000 per hour")
    yield server
    server.stop()


def test_a_crowd_starting_direct_chats_at_once_all_show_up(page_for, live_server):
    teacher = page_for("teacher")
    register(teacher, "teacher")
    wait_until_chat_is_open(teacher)
    tag = uuid.uuid4().hex[:4]
    crowd = [RealClient(live_server, f"pupil{n}-{tag}").register() for n in range(CROWD)]
    teacher_id = (
        crowd[0].http.get(f"{live_server.url}/find", params={"q": "teacher"}).json()[0]["id"]
    )
    for pupil in crowd:
        token = csrf_token(pupil.http.get(f"{live_server.url}/find").text)
        added = pupil.http.post(
            f"{live_server.url}/add",
            data={"user_id": teacher_id, "csrf_token": token},
            allow_redirects=False,
        )
        assert added.status_code == 303, added.text[:300]
        chat_id = int(added.headers["Location"].rsplit("=", 1)[1])
        pupil.connect()
        sent = pupil.call(
            "message_sent",
            {"chat_id": chat_id, "body": f"hello from {pupil.name}", "client_id": uuid.uuid4().hex},
        )
        assert sent["ok"], sent
    for pupil in crowd:
        expect(chat_in_list(teacher, pupil.name)).to_be_visible()
    expect(teacher.locator("#chat-list-error")).to_be_hidden()
    for pupil in crowd:
        pupil.disconnect()
