"""A backup against an innocent user: bob's message latency while ``flask backup`` runs.

Starts ``python app.py`` (SQLite) from ``--app-dir``, seeds ``--messages`` messages of 200
characters into its database, then bob sends messages one after another (each waits for
its ack) for a quiet spell, and on while ``flask backup`` copies the running chat in a
process of its own. Prints bob's ack latency (p50, p99, max) in each phase, how long the
backup took and the archive's size.

    .venv/bin/python -m bench.backup [--app-dir DIR] [--messages 300000]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench import seed
from bench.clients import RealClient
from bench.pictures import summary
from bench.servers import ROOT, data_settings, start_chat

QUIET_S = 3.0
GENERAL = 1


def run(app_dir: Path, messages: int) -> dict[str, object]:
    """One run against the chat in ``app_dir``; the figures."""
    folder = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    server = start_chat(folder, app_dir)
    try:
        bob = RealClient(server, "bob").register()
        start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        bodies = [f"{n:08d} " + "x" * 191 for n in range(messages)]
        seed.add_messages(
            server, GENERAL, seed.spread(["bob"], bodies, start, datetime.timedelta(seconds=1))
        )
        bob.connect()
        latencies: dict[str, list[float]] = {"quiet": [], "during the backup": []}
        phase = ["quiet"]
        stop = threading.Event()

        def keep_sending() -> None:
            while not stop.is_set():
                began = time.perf_counter()
                ack = bob.call(
                    "message_sent",
                    {"chat_id": GENERAL, "body": "hello", "client_id": uuid.uuid4().hex},
                )
                assert ack["ok"], ack
                latencies[phase[0]].append((time.perf_counter() - began) * 1000)

        sender = threading.Thread(target=keep_sending)
        sender.start()
        time.sleep(QUIET_S)
        phase[0] = "during the backup"
        archive = folder / "chat.tar.gz"
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "backup", str(archive)],
            cwd=app_dir,
            env={**os.environ, **data_settings(folder)},
            capture_output=True,
            text=True,
        )
        took = time.perf_counter() - began
        stop.set()
        sender.join()
        bob.disconnect()
        if done.returncode != 0:
            raise RuntimeError(done.stdout + done.stderr)
        return {
            "messages_seeded": messages,
            "database_mb": round(Path(server.database_path).stat().st_size / 2**20, 1),
            "archive_mb": round(archive.stat().st_size / 2**20, 1),
            "backup_s": round(took, 1),
            **{name: summary(values) for name, values in latencies.items()},
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app-dir", type=Path, default=ROOT)
    parser.add_argument("--messages", type=int, default=300_000)
    args = parser.parse_args()
    print(json.dumps(run(args.app_dir.resolve(), args.messages), indent=2))


if __name__ == "__main__":
    main()
