"""search_messages: the matching rules, privacy, edits and deletions, paging, bad queries
and the schema upgrade, each on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import database
import db_commands
from messaging import NOT_A_MEMBER
from search import check_search_query
from tests.conftest import query
from tests.test_db_threads import GENERAL, make_sqlite_app, person, write_lock

__all__ = ["make_sqlite_app"]  # a fixture shared with tests/test_db_threads.py


@pytest.fixture(autouse=True, params=["as stored", "indexed"])
def search_index(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs twice on SQLite: with the new messages above the search index's mark,
    as they are until the writer thread's next batch, and with the index caught up first."""
    monkeypatch.setattr("db_threads.SEARCH_INDEX_EVERY", 10**9)
    monkeypatch.setattr("db_threads.SEARCH_INDEX_IDLE_S", 3600.0)
    return request.param


INDEX_FIRST: list[bool] = [False]


@pytest.fixture(autouse=True)
def _index_first(search_index: str) -> Iterator[None]:
    INDEX_FIRST[0] = search_index == "indexed"
    yield
    INDEX_FIRST[0] = False


def index_now(app: Any) -> None:
    """What the writer thread does after a batch of writes: index the new messages."""
    database_ = app.extensions["database"]
    if database_.dialect == "sqlite":
        database_.run("write", db_commands.index_new_messages, (), {})


def search(user: Any, text: Any, **extra: Any) -> dict[str, Any]:
    if INDEX_FIRST[0]:
        index_now(user.app)
    ack = user.call("search_messages", {"query": text, **extra})
    assert ack["ok"], ack
    return ack


def bodies(user: Any, text: str, **extra: Any) -> list[str]:
    return [r["message"]["body"] for r in search(user, text, **extra)["results"]]


def general_id(app: Any) -> int:
    return query(app, "SELECT id FROM chats WHERE name = 'General Talk'")[0]["id"]


def execute(app: Any, sql: str, params: tuple = ()) -> None:
    """A statement written straight through the database layer, as any writer would."""
    with app.app_context():
        db = db_commands.get_db()
        with db.transaction():
            db.execute(sql, params)


def store(app: Any, chat_id: int, sender: Any, body: str) -> int:
    """A message stored as message_sent stores it, without the sender's rate limit."""
    with app.app_context():
        row, _created = db_commands.insert_message(chat_id, sender.id, body, f"seed-{body}")
    return row["id"]


def test_every_word_must_match_in_any_case_and_without_accents(app, alice, bob, chat):
    alice.send(chat, "The Crème Brûlée recipe")
    alice.send(chat, "creme fraiche only")
    bob.send(chat, "ÉCOLE starts Monday")
    assert bodies(bob, "creme brulee") == ["The Crème Brûlée recipe"]
    assert bodies(bob, "CRÈME") == ["creme fraiche only", "The Crème Brûlée recipe"]
    assert bodies(alice, "ecole monday") == ["ÉCOLE starts Monday"]
    assert bodies(alice, "creme monday") == []


def test_the_last_word_is_a_prefix(app, alice, bob, chat):
    alice.send(chat, "planning the release")
    alice.send(chat, "a plan for Tuesday")
    alice.send(chat, "airplane tickets")
    assert bodies(bob, "plan") == ["a plan for Tuesday", "planning the release"]
    assert bodies(bob, "plan the") == []
    assert bodies(bob, "plann") == ["planning the release"]
    assert bodies(bob, "planning rel") == ["planning the release"]
    # only the last word: "plan" first is a whole word
    assert bodies(bob, "plan tues") == ["a plan for Tuesday"]


def test_a_prefix_shared_by_many_words_finds_them_all(app, alice, bob, chat):
    """Beyond the words looked up one by one, the prefix goes to the index as "word *"."""
    words = [f"plank{chr(97 + n // 26)}{chr(97 + n % 26)}" for n in range(40)]
    for word in words:
        store(app, chat, alice, f"{word} wood")
    store(app, chat, alice, "planet earth")
    assert len(bodies(bob, "PLANK")) == 20
    assert search(bob, "plank")["has_more"] is True
    assert bodies(bob, "plankb") == [f"{w} wood" for w in words[26:][::-1]]
    assert bodies(bob, "wood plankab") == ["plankab wood"]
    assert bodies(bob, "plane") == ["planet earth"]
    assert bodies(bob, "planez") == []


def test_quoted_phrase_is_exact_and_in_order(app, alice, bob, chat):
    alice.send(chat, "the blue car is fast")
    alice.send(chat, "a car that is blue")
    assert bodies(bob, '"blue car"') == ["the blue car is fast"]
    assert bodies(bob, "blue car") == ["a car that is blue", "the blue car is fast"]
    # a phrase's last word is whole, not a prefix
    assert bodies(bob, '"blue ca"') == []
    assert bodies(bob, '"blue car" fas') == ["the blue car is fast"]


def test_punctuation_separates_words_on_both_databases(app, alice, bob, chat):
    alice.send(chat, "see https://example.com/release_notes and don't panic")
    assert bodies(bob, "example release notes") == [
        "see https://example.com/release_notes and don't panic"
    ]
    assert bodies(bob, '"example com"') != []
    assert bodies(bob, "don") != []


@pytest.mark.parametrize(
    "text",
    [
        '"unclosed phrase',
        "NEAR(a b)",
        "a AND b OR NOT c",
        "-secret",
        "^start",
        "body:secret",
        "sec*",
        "(a OR b)",
        "a & b | !c <-> d",
        "' OR 1=1 --",
        "日本語",
        "a" * 200,
    ],
)
def test_search_syntax_is_read_as_plain_words(app, alice, bob, chat, text):
    """Whatever it holds, a query with a word in it answers, never a server error."""
    alice.send(chat, "NEAR the secret start of a AND b")
    ack = bob.call("search_messages", {"query": text})
    assert ack["ok"], ack
    assert isinstance(ack["results"], list)


def test_fts_operators_are_words_not_syntax(app, alice, bob, chat):
    alice.send(chat, "NEAR the secret")
    alice.send(chat, "not the secret")
    assert bodies(bob, "secret NOT") == ["not the secret"]
    assert bodies(bob, "near secret") == ["NEAR the secret"]
    assert bodies(bob, "-secret") == ["not the secret", "NEAR the secret"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "Type a word to search for."),
        ("   ", "Type a word to search for."),
        ('"" * - ( ) ^ :', "Type a word to search for."),
        ("'", "Type a word to search for."),
        ("\\", "Type a word to search for."),
        ("a" * 201, "A search is at most 200 characters."),
        (" ".join(["w"] * 17), "Search for at most 16 words."),
        (None, "The search must be text."),
        (["plan"], "The search must be text."),
        (42, "The search must be text."),
    ],
)
def test_bad_queries_get_a_clear_error(app, alice, text, error):
    ack = alice.call("search_messages", {"query": text})
    assert ack == {"ok": False, "error": error}


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"query": "x", "chat_id": "1"}, "chat_id"),
        ({"query": "x", "before_id": -3}, "before_id"),
        ({"query": "x", "before_id": True}, "before_id"),
    ],
)
def test_bad_ids_get_a_clear_error(app, alice, payload, error):
    ack = alice.call("search_messages", payload)
    assert ack["ok"] is False and error in ack["error"]


def test_a_payload_that_is_not_an_object_gets_an_error(app, alice):
    ack = alice.call("search_messages", "plan")
    assert ack["ok"] is False


def test_nothing_from_a_chat_the_reader_never_joined(app, alice, bob, carol, chat):
    alice.send(chat, "the secret launch date")
    assert bodies(carol, "secret launch") == []
    assert bodies(carol, '"secret launch"') == []
    ack = carol.call("search_messages", {"query": "secret", "chat_id": chat})
    assert ack == {"ok": False, "error": NOT_A_MEMBER}


def test_nothing_from_a_chat_the_reader_left(app, alice, bob):
    channel = alice.call("create_channel", {"name": "plans"})["chat"]["id"]
    assert bob.call("join_channel", {"chat_id": channel})["ok"]
    alice.send(channel, "quarterly roadmap draft")
    assert bodies(bob, "roadmap") == ["quarterly roadmap draft"]
    execute(app, "DELETE FROM chat_members WHERE chat_id = ? AND user_id = ?", (channel, bob.id))
    assert bodies(bob, "roadmap") == []
    ack = bob.call("search_messages", {"query": "roadmap", "chat_id": channel})
    assert ack == {"ok": False, "error": NOT_A_MEMBER}


def test_results_name_their_chat_as_the_reader_sees_it(app, alice, bob, chat):
    alice.send(chat, "direct hello")
    alice.send(general_id(app), "general hello")
    results = search(bob, "hello")["results"]
    assert [r["chat"] for r in results] == [
        {"id": general_id(app), "kind": "channel", "name": "General Talk"},
        {"id": chat, "kind": "direct", "name": "alice"},
    ]
    message = results[1]["message"]
    assert message["sender_name"] == "alice" and message["chat_id"] == chat
    assert isinstance(message["created_at"], int)


def test_chat_id_narrows_the_search_to_one_chat(app, alice, bob, chat):
    alice.send(chat, "lunch today?")
    alice.send(general_id(app), "lunch for everyone")
    assert bodies(bob, "lunch", chat_id=chat) == ["lunch today?"]
    assert bodies(bob, "lunch") == ["lunch for everyone", "lunch today?"]


def test_edits_and_deletions_keep_the_index_true(app, alice, bob, chat):
    kept = alice.send(chat, "the old wording")
    gone = alice.send(chat, "delete this wording")
    execute(app, "UPDATE messages SET body = ? WHERE id = ?", ("the new phrasing", kept["id"]))
    execute(app, "DELETE FROM messages WHERE id = ?", (gone["id"],))
    assert bodies(bob, "old") == []
    assert bodies(bob, "wording") == []
    assert bodies(bob, "new phrasing") == ["the new phrasing"]
    # an update that leaves the body alone keeps it found
    execute(app, "UPDATE messages SET created_at = created_at + 1 WHERE id = ?", (kept["id"],))
    assert bodies(bob, "phrasing") == ["the new phrasing"]


def test_edits_and_deletions_by_their_events_are_searched_at_once(app, alice, bob, chat):
    edited = alice.send(chat, "meet at the harbour")
    deleted = alice.send(chat, "harbour plans are secret")
    edit = {"message_id": edited["id"], "body": "meet at the station"}
    assert alice.call("message_edited", edit)["ok"]
    assert alice.call("message_deleted", {"message_id": deleted["id"]})["ok"]
    assert bodies(bob, "harbour") == [] and bodies(bob, "secret") == []
    assert bodies(bob, "station") == ["meet at the station"]
    assert search(bob, "station")["results"][0]["message"]["edited_at"] is not None


def test_pages_of_twenty_newest_first_by_id(app, alice, bob, chat):
    sent = [store(app, chat, alice, f"report number {n}") for n in range(45)]
    store(app, chat, alice, "unrelated")
    pages, before_id = [], None
    while True:
        ack = search(bob, "report", **({"before_id": before_id} if before_id else {}))
        ids = [r["message"]["id"] for r in ack["results"]]
        pages.append(ids)
        if not ack["has_more"]:
            break
        before_id = ids[-1]
    assert [len(p) for p in pages] == [20, 20, 5]
    assert [i for p in pages for i in p] == sent[::-1]


def test_a_message_arriving_while_paging_shifts_nothing(app, alice, bob, chat):
    sent = [store(app, chat, alice, f"status {n}") for n in range(25)]
    first = search(bob, "status")
    alice.send(chat, "status arrived meanwhile")
    second = search(bob, "status", before_id=first["results"][-1]["message"]["id"])
    ids = [r["message"]["id"] for r in first["results"] + second["results"]]
    assert ids == sent[::-1]


def test_a_page_is_cut_to_the_reply_byte_limit(app, alice):
    app.config["MAX_REPLY_BYTES"] = 3000
    sent = [store(app, general_id(app), alice, f"long {n} " + "x" * 900) for n in range(5)]
    ack = search(alice, "long")
    assert 1 <= len(ack["results"]) < 5 and ack["has_more"] is True
    assert [r["message"]["id"] for r in ack["results"]] == sent[::-1][: len(ack["results"])]


def test_query_reaches_the_database_as_quoted_words_only():
    parsed = check_search_query('plan "blue car" AND (x) -y* NEAR', 200)
    assert parsed.fts5() == '"plan" AND "blue car" AND "and" AND "x" AND "y" AND "near" *'
    assert parsed.fts5(["near", "nearby"]) == parsed.fts5().replace(
        '"near" *', '("near" OR "nearby")'
    )
    assert parsed.tsquery() == "'plan' & ('blue' <-> 'car') & 'and' & 'x' & 'y' & 'near':*"
    assert check_search_query('"blue car"', 200).fts5() == '"blue car"'
    assert check_search_query("a", 200).fts5() == '"a"'


def test_an_upgraded_database_finds_the_messages_it_already_held(
    tmp_path, monkeypatch, database_url
):
    """The schema version that adds search indexes the messages stored before it."""
    dialect = database.dialect_of(database_url)
    sections = database.schema_versions(database.SCHEMA_FILES[dialect].read_text())
    search_version = next(v for v, sql in sections if "messages_search" in sql and "CREATE" in sql)
    before = tmp_path / "before_search.sql"
    before.write_text("".join(f"-- version: {v}{sql}" for v, sql in sections if v < search_version))
    monkeypatch.setitem(database.SCHEMA_FILES, dialect, before)
    db = database.Database(database_url, str(tmp_path))
    previous = db.init_schema()
    assert previous < search_version
    conn = db.connect()
    for sql in [
        "INSERT INTO users (id, username, password_hash, created_at) VALUES (1, 'ann', 'h', 0)",
        "INSERT INTO chat_members (chat_id, user_id, joined_at) VALUES (1, 1, 0)",
        "INSERT INTO messages (id, chat_id, sender_id, body, created_at, client_id)"
        " VALUES (7, 1, 1, 'Déjà vu planning', 1000, 'a'), (9, 1, 1, 'other', 5000, 'b')",
    ]:
        conn.execute(sql)
    db.release(conn)
    monkeypatch.undo()
    try:
        assert db.init_schema() == sections[-1][0]
        conn = db.connect()
        found = database.call_on(
            conn,
            db_commands.list_messages_matching.__wrapped__,
            (1, check_search_query("deja plan", 200), None, None, 21),
            {},
        )
        db.release(conn)
    finally:
        db.close()
    assert [(r["id"], r["chat_name"]) for r in found] == [(7, "General Talk")]


def test_search_is_a_read_that_answers_while_another_connection_holds_the_write_lock(
    make_sqlite_app,
):
    """On SQLite a search runs on a reader thread's read-only connection: it answers while
    a backup or a shell holds the write lock, and never waits for the writer."""
    app = make_sqlite_app(DB_WRITE_TIMEOUT_SECONDS=30.0)
    alice = person(app, "alice")
    store(app, GENERAL, alice, "the locked ledger")
    if INDEX_FIRST[0]:
        index_now(app)
        INDEX_FIRST[0] = False  # searched under the lock below, the index as it is
    with write_lock(app):
        assert bodies(alice, "ledg") == ["the locked ledger"]


def test_sqlite_indexes_in_batches_and_finds_every_message_meanwhile(make_sqlite_app):
    """New messages reach the search index in batches; until then a search matches them
    itself. Edits and deletions on either side of the index's mark are searched at once,
    and an id reused after the newest message was deleted is indexed as it is stored."""
    app = make_sqlite_app()
    alice = person(app, "alice")
    edited = store(app, GENERAL, alice, "Crème brûlée planning")
    deleted = store(app, GENERAL, alice, "harbour secrets")
    index_now(app)
    mark = query(app, "SELECT indexed_up_to FROM messages_search_state")[0]["indexed_up_to"]
    assert mark == deleted
    fresh = store(app, GENERAL, alice, "creme soup planned")
    assert bodies(alice, "creme plan") == ["creme soup planned", "Crème brûlée planning"]
    assert bodies(alice, '"soup planned"') == ["creme soup planned"]
    execute(app, "UPDATE messages SET body = 'tarte tatin' WHERE id = ?", (edited,))
    execute(app, "UPDATE messages SET body = 'harbour soup' WHERE id = ?", (fresh,))
    execute(app, "DELETE FROM messages WHERE id = ?", (deleted,))
    assert bodies(alice, "creme") == [] and bodies(alice, "tatin") == ["tarte tatin"]
    assert bodies(alice, "harbour") == ["harbour soup"]
    index_now(app)
    assert bodies(alice, "creme") == [] and bodies(alice, "tatin") == ["tarte tatin"]
    assert bodies(alice, "harbour") == ["harbour soup"]
    # The newest messages deleted below the mark: the next message takes an id below it.
    index_now(app)
    execute(app, "DELETE FROM messages WHERE id = ?", (fresh,))
    assert store(app, GENERAL, alice, "reused number") < fresh
    assert bodies(alice, "reused") == ["reused number"]
    index_now(app)
    assert bodies(alice, "reused") == ["reused number"]
    assert bodies(alice, "soup") == []
