"""The database work of sending a message under eventlet: CPU per message, one sender
against many senders at once (where the group commit shares COMMITs).

Each sender is a greenlet in one monkey-patched process making the calls
``events.message_sent`` makes (the membership check and the insert), on a SQLite file of
its own or (``--database postgresql``) a schema of its own in the machine's PostgreSQL
(``TEST_POSTGRES_URL``), psycopg2 made green as ``python app.py`` does. Run one checkout at
a time, each in a fresh process:

    python -m bench.group_commit --senders 1 --messages 2000 --gap-ms 1 [--app-dir DIR]
    python -m bench.group_commit --senders 20 --messages 200 [--app-dir DIR]
    python -m bench.group_commit --database postgresql --senders 20 --messages 200

``--gap-ms`` makes each sender wait between its messages, as people do: a write that comes
alone, not in a burst. On PostgreSQL the figures add the server's CPU per message: the
backends of this process's connections (found by their ``application_name``), and apart
from them PostgreSQL's background processes (WAL writer, checkpointer ...), which serve
every client of the server, so other work on the machine counts there too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

BODY = "hello world " * 8
# Messages each sender sends before the measured ones: connections opened, statements
# prepared.
WARM_UP = 5


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process so far (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu(url: str, application_name: str) -> dict[str, float]:
    """CPU seconds so far of the backends serving ``application_name``, and of
    PostgreSQL's background processes (every ``postgres`` process that is no backend)."""
    import psycopg2

    with contextlib.closing(psycopg2.connect(url)) as conn:
        cursor = conn.cursor()
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,)
        )
        ours = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'")
        backends = {row[0] for row in cursor.fetchall()}
    background = [
        int(pid)
        for pid in os.listdir("/proc")
        if pid.isdigit()
        and int(pid) not in backends
        and Path(f"/proc/{pid}/comm").exists()
        and Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    ]
    return {
        "backends": sum(cpu_seconds(pid) for pid in ours),
        "background": sum(cpu_seconds(pid) for pid in background),
    }


def measure(
    app_dir: Path, senders: int, messages: int, gap_s: float = 0.0, database: str = "sqlite"
) -> dict[str, Any]:
    """Send ``messages`` from each of ``senders`` greenlets, ``gap_s`` apart; CPU and wall
    time per message."""
    import eventlet

    eventlet.monkey_patch()
    sys.path.insert(0, str(app_dir))
    folder = Path(tempfile.mkdtemp(prefix="bench-group-commit-"))
    if database == "sqlite":
        url = f"sqlite:///{folder / 'chat.db'}"
        return _measure(app_dir, folder, url, senders, messages, gap_s)
    from eventlet.support import psycopg2_patcher

    from bench.servers import postgres_schema

    psycopg2_patcher.make_psycopg_green()
    with postgres_schema() as url:
        return _measure(app_dir, folder, url, senders, messages, gap_s)


def _measure(
    app_dir: Path, folder: Path, url: str, senders: int, messages: int, gap_s: float
) -> dict[str, Any]:
    import eventlet

    import db_commands
    from app import create_app

    application_name = f"bench-{uuid.uuid4().hex[:10]}"
    postgres = url.startswith("postgresql")
    if postgres:
        url = f"{url}&application_name={application_name}"
    app = create_app(
        {
            "SOCKETIO_ASYNC_MODE": "eventlet",
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "SESSION_FILE_DIR": str(folder / "sessions"),
            "UPLOAD_FOLDER": str(folder / "uploads"),
        }
    )
    with app.app_context():
        user_id = db_commands.insert_user("bench", "x", app.config["DEFAULT_CHANNEL"])
    chat_id = 1
    # The checkout's own message path: one unit of work, or (older checkouts) two calls.
    one_unit = getattr(db_commands, "insert_message_for_member", None)

    def sender(count: int) -> None:
        with app.app_context():
            for _ in range(count):
                if one_unit is not None:
                    one_unit(chat_id, user_id, BODY, uuid.uuid4().hex)
                else:
                    db_commands.get_membership(chat_id, user_id)
                    db_commands.insert_message(chat_id, user_id, BODY, uuid.uuid4().hex)
                if gap_s:
                    eventlet.sleep(gap_s)

    def send_all(count: int) -> None:
        pool = eventlet.GreenPool(senders)
        for _ in range(senders):
            pool.spawn(sender, count)
        pool.waitall()

    send_all(WARM_UP)
    database = app.extensions["database"]
    # SQLite's writer thread, or PostgreSQL's group commit (None where a checkout has none).
    groups = getattr(database, "_threads", None) or getattr(database, "group_commit", None)
    commits_before = getattr(groups, "groups_committed", None)
    server = postgres_cpu(url, application_name) if postgres else None
    cpu, wall = time.process_time(), time.monotonic()
    send_all(messages)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    total = senders * messages
    figures: dict[str, Any] = {
        "database": "postgresql" if postgres else "sqlite",
        "senders": senders,
        "gap_ms": gap_s * 1000,
        "messages": total,
        "cpu_us_per_message": round(cpu / total * 1e6, 1),
        "wall_us_per_message": round(wall / total * 1e6, 1),
    }
    if commits_before is not None:
        figures["commits"] = groups.groups_committed - commits_before
    if server is not None:
        after = postgres_cpu(url, application_name)
        for part in ("backends", "background"):
            spent = after[part] - server[part]
            figures[f"postgres_{part}_cpu_us_per_message"] = round(spent / total * 1e6, 1)
    database.close()
    return figures


def main() -> None:
    """Print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--messages", type=int, default=200, help="per sender")
    parser.add_argument("--gap-ms", type=float, default=0.0, help="between a sender's messages")
    parser.add_argument("--app-dir", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    figures = measure(
        args.app_dir.resolve(), args.senders, args.messages, args.gap_ms / 1000, args.database
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
