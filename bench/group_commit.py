"""The database work of sending a message under eventlet: CPU per message, one sender
against many senders at once (where the writer thread's group commit shares COMMITs).

Each sender is a greenlet in one monkey-patched process making the calls
``events.message_sent`` makes (the membership check and the insert), on a SQLite file of
its own. Run one checkout at a time, each in a fresh process:

    python -m bench.group_commit --senders 1 --messages 2000 --gap-ms 1 [--app-dir DIR]
    python -m bench.group_commit --senders 20 --messages 200 [--app-dir DIR]

``--gap-ms`` makes each sender wait between its messages, as people do: a write that comes
alone, not in a burst.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

BODY = "hello world " * 8


def measure(app_dir: Path, senders: int, messages: int, gap_s: float = 0.0) -> dict[str, Any]:
    """Send ``messages`` from each of ``senders`` greenlets, ``gap_s`` apart; CPU and wall
    time per message."""
    import eventlet

    eventlet.monkey_patch()
    sys.path.insert(0, str(app_dir))
    import db_commands
    from app import create_app

    folder = Path(tempfile.mkdtemp(prefix="bench-group-commit-"))
    app = create_app(
        {
            "SOCKETIO_ASYNC_MODE": "eventlet",
            "DATABASE_URL": f"sqlite:///{folder / 'chat.db'}",
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

    def sender() -> None:
        with app.app_context():
            for _ in range(messages):
                if one_unit is not None:
                    one_unit(chat_id, user_id, BODY, uuid.uuid4().hex)
                else:
                    db_commands.get_membership(chat_id, user_id)
                    db_commands.insert_message(chat_id, user_id, BODY, uuid.uuid4().hex)
                if gap_s:
                    eventlet.sleep(gap_s)

    pool = eventlet.GreenPool(senders)
    cpu, wall = time.process_time(), time.monotonic()
    for _ in range(senders):
        pool.spawn(sender)
    pool.waitall()
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    total = senders * messages
    threads = getattr(app.extensions["database"], "_threads", None)
    app.extensions["database"].close()
    return {
        "senders": senders,
        "gap_ms": gap_s * 1000,
        "messages": total,
        "cpu_us_per_message": round(cpu / total * 1e6, 1),
        "wall_us_per_message": round(wall / total * 1e6, 1),
        "commits": getattr(threads, "groups_committed", None),
    }


def main() -> None:
    """Print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--messages", type=int, default=200, help="per sender")
    parser.add_argument("--gap-ms", type=float, default=0.0, help="between a sender's messages")
    parser.add_argument("--app-dir", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    print(
        json.dumps(measure(args.app_dir.resolve(), args.senders, args.messages, args.gap_ms / 1000))
    )


if __name__ == "__main__":
    main()
