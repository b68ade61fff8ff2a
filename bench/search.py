"""Message search on a big history: the first page's time for a rare and a common word.

Seeds once (1,000,000 messages in 1,000 chats by default) into a SQLite file and a
PostgreSQL schema, both kept for the next runs, then times ``search_messages`` as the
server runs it (the handler, its query on a reader thread, the page's JSON) for a person
who is a member of 50 of the chats:

    python -m bench.search --data ../search-bench seed          # once: a few minutes
    python -m bench.search --data ../search-bench run --out bench/results/search.json
    python -m bench.search --data ../search-bench drop          # the PostgreSQL schema

Bodies are words drawn from a 20,000-word vocabulary with Zipf's law (the commonest is
in about half the messages, as "the" is); the rare word is in 40 messages, half of them in
the reader's chats.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from bench import servers

SCHEMA = "bench_search"
READER = "reader"
READER_CHATS = 50
USERS = 300
MEMBERS_PER_CHAT = 10
RARE_WORD = "kumquat"
RARE_COUNT = 40
VOCABULARY = 20_000
SYLLABLES = [c + v for c in "bcdfghjklmnprstvz" for v in "aeiou"]


def postgres_url() -> str:
    """The bench's schema on the machine's PostgreSQL."""
    from urllib.parse import quote

    separator = "&" if "?" in servers.POSTGRES_URL else "?"
    return f"{servers.POSTGRES_URL}{separator}options={quote(f'-csearch_path={SCHEMA}')}"


def vocabulary(rng: random.Random) -> list[str]:
    """Distinct made-up words, commonest first."""
    words: dict[str, None] = {}
    while len(words) < VOCABULARY:
        words["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4)))] = None
    words.pop(RARE_WORD, None)
    return list(words)


def make_rows(messages: int, chats: int, seed: int = 7) -> tuple[list[str], dict[str, Any]]:
    """The seeded history as COPY lines (id, chat, sender, body, time, client id) and what
    the runs need to know about it."""
    rng = random.Random(seed)
    words = vocabulary(rng)
    weights = [1 / rank for rank in range(1, len(words) + 1)]
    reader_chats = set(range(2, 2 + READER_CHATS))
    members = {
        chat: rng.sample(range(2, USERS + 2), MEMBERS_PER_CHAT) for chat in range(2, chats + 2)
    }
    rare_ids = set(rng.sample(range(1, messages + 1), RARE_COUNT))
    # Eight words a message on average; the draw starts over should it run out.
    drawn = itertools.cycle(rng.choices(words, weights, k=messages * 8))
    lines = []
    start = 1_700_000_000_000
    for message_id in range(1, messages + 1):
        chat = rng.randrange(2, chats + 2)
        if message_id in rare_ids:
            # half the rare word's messages in the reader's chats
            chat = rng.choice(sorted(reader_chats)) if message_id % 2 else chat
        body = " ".join(next(drawn) for _ in range(rng.randint(3, 13)))
        if message_id in rare_ids:
            body += " " + RARE_WORD
        sender = rng.choice(members[chat])
        lines.append(
            f"{message_id}\t{chat}\t{sender}\t{body}\t{start + message_id}\tb{message_id}\n"
        )
    return lines, {
        "messages": messages,
        "chats": chats,
        "members": members,
        "reader_chats": sorted(reader_chats),
        "common": words[0],
        "second": words[1],
        "chat_words": words,
    }


def seed_database(database_url: str, lines: list[str], facts: dict[str, Any]) -> float:
    """Create the schema and fill it; return the seconds it took."""
    import database

    begun = time.perf_counter()
    db = database.Database(database_url, str(Path.cwd()))
    db.init_schema()
    conn = db.connect()
    raw = conn.raw
    users = [(1, READER)] + [(u, f"user{u}") for u in range(2, USERS + 2)]
    chats = [(c, f"room {c}") for c in range(2, facts["chats"] + 2)]
    membership = [(c, 1) for c in facts["reader_chats"]] + [
        (c, u) for c, people in facts["members"].items() for u in people
    ]
    membership = sorted(set(membership))
    if db.dialect == "sqlite":
        raw.execute("BEGIN")
        raw.executemany(
            "INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, 'x', 0)",
            users,
        )
        raw.executemany(
            "INSERT INTO chats (id, kind, name, created_at) VALUES (?, 'channel', ?, 0)", chats
        )
        raw.executemany(
            "INSERT INTO chat_members (chat_id, user_id, joined_at) VALUES (?, ?, 0)", membership
        )
        raw.executemany(
            "INSERT INTO messages (id, chat_id, sender_id, body, created_at, client_id)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (line.rstrip("\n").split("\t") for line in lines),
        )
        # The server's writer thread indexes new messages in batches; all of them here.
        raw.execute("INSERT INTO messages_search (rowid, body) SELECT id, body FROM messages")
        raw.execute(
            "UPDATE messages_search_state SET indexed_up_to = (SELECT MAX(id) FROM messages)"
        )
        raw.execute("COMMIT")
        raw.execute("PRAGMA optimize")
    else:
        cursor = raw.cursor()
        cursor.executemany(
            "INSERT INTO users (id, username, password_hash, created_at) VALUES (%s, %s, 'x', 0)",
            users,
        )
        cursor.executemany(
            "INSERT INTO chats (id, kind, name, created_at) VALUES (%s, 'channel', %s, 0)", chats
        )
        cursor.executemany(
            "INSERT INTO chat_members (chat_id, user_id, joined_at) VALUES (%s, %s, 0)",
            membership,
        )
        # The GIN index is built once at the end, as an upgrade builds it, not row by row.
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'messages_search'")
        (definition,) = cursor.fetchone()
        cursor.execute("DROP INDEX messages_search")
        # Each chat's last message is set once at the end: a million updates of a thousand
        # rows in one transaction would walk ever longer chains of row versions.
        cursor.execute("ALTER TABLE messages DISABLE TRIGGER messages_move_last_message")
        cursor.copy_expert(
            "COPY messages (id, chat_id, sender_id, body, created_at, client_id) FROM STDIN",
            io.StringIO("".join(lines)),
        )
        cursor.execute("ALTER TABLE messages ENABLE TRIGGER messages_move_last_message")
        cursor.execute(
            "UPDATE chats SET last_message_id = (SELECT MAX(id) FROM messages AS m"
            " WHERE m.chat_id = chats.id)"
        )
        cursor.execute(definition)
        raw.commit()
        raw.autocommit = True
        cursor.execute("VACUUM ANALYZE")
    db.release(conn)
    db.close()
    return time.perf_counter() - begun


def cases(facts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The searches timed: name -> payload."""
    common, second = facts["common"], facts["second"]
    one_chat = facts["reader_chats"][0]
    return {
        "rare word": {"query": RARE_WORD},
        "common word": {"query": common},
        "common 2-letter prefix": {"query": common[:2]},
        "two common words": {"query": f"{common} {second}"},
        "common phrase": {"query": f'"{common} {second}"'},
        "rare word, one chat": {"query": RARE_WORD, "chat_id": one_chat},
        "common word, one chat": {"query": common, "chat_id": one_chat},
        "no match": {"query": "zzzzzz"},
    }


def time_searches(
    database_url: str, facts: dict[str, Any], repeats: int
) -> dict[str, dict[str, float]]:
    """p50 and p99 in ms of each case's first page, and the results it found."""
    import events
    from app import create_app

    settings = servers.in_process_settings(Path(facts["folder"]) / "app", DATABASE_URL=database_url)
    app = create_app(settings)
    figures = {}
    try:
        with app.app_context():
            for name, payload in cases(facts).items():
                for _ in range(3):  # warm the caches and the plan
                    events.search_messages(1, payload)
                times = []
                for _ in range(repeats):
                    begun = time.perf_counter()
                    answer = events.search_messages(1, payload)
                    times.append((time.perf_counter() - begun) * 1000)
                cuts = statistics.quantiles(times, n=100)
                figures[name] = {
                    "query": payload["query"],
                    "p50_ms": round(statistics.median(times), 2),
                    "p99_ms": round(cuts[98], 2),
                    "results": len(answer["results"]),
                    "has_more": answer["has_more"],
                }
                print(name, figures[name], flush=True)
    finally:
        app.extensions["database"].close()
    return figures


def main() -> None:
    """Seed, run or drop, as asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["seed", "run", "drop"])
    parser.add_argument("--data", type=Path, required=True, help="a folder outside the repo")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--chats", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    facts_file = args.data / "facts.json"
    sqlite_url = f"sqlite:///{(args.data / 'chat.db').resolve()}"
    urls = {"sqlite": sqlite_url, "postgresql": postgres_url()}
    kinds = [args.only] if args.only else list(urls)
    if args.step == "drop":
        import psycopg2

        admin = psycopg2.connect(servers.POSTGRES_URL)
        admin.autocommit = True
        admin.cursor().execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
        admin.close()
        return
    if args.step == "seed":
        lines, facts = make_rows(args.messages, args.chats)
        facts["members"] = {str(k): v for k, v in facts["members"].items()}
        facts.pop("chat_words")
        if "postgresql" in kinds:
            import psycopg2

            admin = psycopg2.connect(servers.POSTGRES_URL)
            admin.autocommit = True
            admin.cursor().execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
            admin.cursor().execute(f'CREATE SCHEMA "{SCHEMA}"')
            admin.close()
        facts["seed_seconds"] = {}
        for kind in kinds:
            if kind == "sqlite":
                Path(args.data / "chat.db").unlink(missing_ok=True)
            seconds = seed_database(
                urls[kind],
                lines,
                facts | {"members": {int(k): v for k, v in facts["members"].items()}},
            )
            facts["seed_seconds"][kind] = round(seconds, 1)
            print(f"{kind}: seeded in {seconds:.0f} s", flush=True)
        facts_file.write_text(json.dumps(facts))
        return
    facts = json.loads(facts_file.read_text()) | {"folder": str(args.data)}
    report = {
        "messages": facts["messages"],
        "chats": facts["chats"],
        "reader_chats": len(facts["reader_chats"]),
        "repeats": args.repeats,
    }
    for kind in kinds:
        report[kind] = time_searches(urls[kind], facts, args.repeats)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
