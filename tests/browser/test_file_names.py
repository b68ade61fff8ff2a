"""File names cannot pretend, in a real Chromium: a right-to-left override sent in a name
never reaches the page, a name stored before the server cleaned names is cleaned by the
page, and the extension is its own element, shown after the stem whatever its script."""

from __future__ import annotations

import sqlite3

from playwright.sync_api import Page, expect

from tests.browser.ui import wait_until_chat_is_open

RLO = "\u202e"


def send_text_file(page: Page, name: str) -> None:
    page.set_input_files(
        "#file-input", files=[{"name": name, "mimeType": "text/plain", "buffer": b"hello"}]
    )


def card_parts(page: Page, index: int) -> dict:
    """What the file card shows: the whole name, its stem and extension, and whether the
    extension is drawn to the right of the stem."""
    return page.evaluate(
        """index => {
            const card = document.querySelectorAll('#messages .attachment-file')[index];
            const name = card.querySelector('.file-name');
            const stem = name.querySelector('.file-stem');
            const ext = name.querySelector('.file-ext');
            return {
                name: name.textContent,
                title: name.title,
                stem: stem ? stem.textContent : null,
                stemTag: stem ? stem.tagName : null,
                ext: ext ? ext.textContent : null,
                extAfterStem: stem && ext
                    ? ext.getBoundingClientRect().left >= stem.getBoundingClientRect().right - 1
                    : null,
                download: card.querySelector('a[download]').getAttribute('download'),
            };
        }""",
        index,
    )


def test_a_file_name_cannot_pretend_to_be_another_type(pair, live_server):
    alice, bob = pair("alice", "bob")
    # "a<RLO>gnp.txt" reads "atxt.png" where the override is obeyed.
    send_text_file(alice, f"a{RLO}gnp.txt")
    cards = bob.locator("#messages .attachment-file")
    expect(cards).to_have_count(1)
    assert card_parts(bob, 0) == {
        "name": "agnp.txt",
        "title": "agnp.txt",
        "stem": "agnp",
        "stemTag": "BDI",
        "ext": ".txt",
        "extAfterStem": True,
        "download": "agnp.txt",
    }

    # A right-to-left stem cannot carry the extension to its left either.
    send_text_file(alice, "שלום.txt")
    expect(cards).to_have_count(2)
    hebrew = card_parts(bob, 1)
    assert (hebrew["stem"], hebrew["ext"], hebrew["extAfterStem"]) == ("שלום", ".txt", True)


def test_a_name_stored_before_names_were_cleaned_is_cleaned_by_the_page(pair, live_server):
    alice, bob = pair("carol", "dave")
    send_text_file(alice, "old.txt")
    expect(bob.locator("#messages .attachment-file")).to_have_count(1)
    conn = sqlite3.connect(live_server.database_path)
    try:
        with conn:  # as an older version stored it: the name exactly as sent
            conn.execute(
                "UPDATE attachments SET original_name = ? WHERE original_name = 'old.txt'",
                (f"b{RLO}gnp.txt",),
            )
    finally:
        conn.close()
    bob.reload()
    wait_until_chat_is_open(bob)
    expect(bob.locator("#messages .attachment-file")).to_have_count(1)
    parts = card_parts(bob, 0)
    assert (parts["name"], parts["ext"], parts["download"]) == ("bgnp.txt", ".txt", "bgnp.txt")
    assert RLO not in bob.locator("#messages").inner_text()
