"""Notifications through the service worker in a real Chromium: a direct message to a
hidden page is shown by the worker (the only kind a phone's browser shows), and its click
opens the chat. (The page's own notifications, for browsers without a worker, are tested in
test_look_and_feel.py.)"""

from __future__ import annotations

import re

from playwright.sync_api import Page, Worker, expect

from tests.browser.test_installable_app import WAIT_FOR_WORKER
from tests.browser.test_look_and_feel import HIDE_TAB
from tests.browser.ui import (
    chat_in_list,
    create_channel,
    join_channel,
    open_chat,
    register,
    send_message,
    start_direct_chat,
    wait_until_async,
)


def service_worker(page: Page) -> Worker:
    """The service worker of the page's browser, once it runs."""
    page.evaluate(WAIT_FOR_WORKER)
    workers = page.context.service_workers
    if not workers:
        return page.context.wait_for_event("serviceworker")
    return workers[0]


NOTIFICATIONS = """async () => {
    const registration = await navigator.serviceWorker.ready;
    return (await registration.getNotifications()).map(
        n => ({title: n.title, body: n.body, tag: n.tag, chatId: n.data && n.data.chatId,
               silent: n.silent}));
}"""


def test_a_direct_message_to_a_hidden_page_notifies_through_the_service_worker(page_for):
    """Dan allowed notifications and looks at another tab. A message in a channel he did
    not choose notifies nothing; bob's direct message shows as a notification of the
    service worker (the kind a phone shows), with sound; clicking it opens the chat with bob
    in dan's page, and the notification goes."""
    dan = page_for("dan", permissions=["notifications"])
    bob = page_for("bob")
    register(dan, "dan")
    register(bob, "bob")
    create_channel(bob, "Lunch club")
    dan.reload()
    join_channel(dan, "Lunch club")
    open_chat(dan, "General Talk")
    worker = service_worker(dan)
    expect(dan.get_by_label("Play a sound for new messages")).to_be_checked()
    dan.evaluate(HIDE_TAB, True)

    send_message(bob, "Who is in today?")
    expect(chat_in_list(dan, "Lunch club").locator(".chat-preview")).to_have_text(
        "bob: Who is in today?"
    )
    chat_id = start_direct_chat(bob, "dan")
    send_message(bob, "Lunch at noon?")
    wait_until_async(dan, f"async () => (await ({NOTIFICATIONS})()).length > 0")
    assert dan.evaluate(NOTIFICATIONS) == [
        {
            "title": "bob",
            "body": "Lunch at noon?",
            "tag": f"chat-{chat_id}",
            "chatId": chat_id,
            "silent": False,
        }
    ]

    dan.evaluate(HIDE_TAB, False)
    worker.evaluate(
        """async () => {
            const [notification] = await self.registration.getNotifications();
            await openChatFromNotification(notification);
        }"""
    )
    expect(dan.locator("#chat-title")).to_have_text("bob")
    expect(dan).to_have_url(re.compile(rf"/chats\?chat={chat_id}$"))
    assert dan.evaluate(NOTIFICATIONS) == []
