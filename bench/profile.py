"""Profile the chat's message path under a steady load with py-spy (sampling, from outside
the process, so eventlet's greenlets are seen as they run).

The chat serves pairs of users sending at a fixed rate while py-spy records the server's
stacks; the samples are then sorted into the costs of one message (SQL, emitting, writing
to the sockets, JSON, Flask's per-event context...) and the functions with the most time.

Run: ``python -m bench.profile --rate 400 --seconds 15 --out profile.json [--app-dir DIR]``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from bench import loadgen, servers

SAMPLE_RATE = 250
# (category, pattern on "function (file)"), matched from the innermost frame outwards:
# the first frame that matches decides where a sample's time went.
CATEGORIES: list[tuple[str, re.Pattern[str]]] = [
    ("SQLite (queries, commits)", re.compile(r"\(db_commands\.py|sqlite3")),
    ("JSON encode/decode", re.compile(r"\(json/|\(socketio/packet\.py")),
    ("rate limiter", re.compile(r"\((limits|flask_limiter)/")),
    ("presence", re.compile(r"\(presence\.py")),
    (
        "socket write (websocket frames, send)",
        re.compile(
            r"\((eventlet/(websocket|greenio)|engineio/async_drivers|simple_websocket|wsproto)"
        ),
    ),
    ("Socket.IO emit to rooms, acks", re.compile(r"\((socketio|engineio)/")),
    ("Flask context per event", re.compile(r"\((flask|werkzeug|flask_socketio|flask_session)/")),
    ("chat handlers (validation, serialise)", re.compile(r"\((events|helpers)\.py")),
    ("eventlet hub, greenlet switches", re.compile(r"\((eventlet|greenlet)/")),
]
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]+)(?::\d+)?\)$")
SITE_PREFIX = re.compile(r".*/(site-packages|lib/python3\.\d+)/")


def short_frame(frame: str) -> str:
    """``function (package/module.py)``: the frame without line number or install path."""
    match = FRAME.match(frame)
    if match is None:
        return frame
    path = SITE_PREFIX.sub("", match["file"])
    return f"{match['function']} ({Path(path).name if path.startswith('/') else path})"


def parse_raw(text: str) -> list[tuple[list[str], int]]:
    """py-spy's raw output: one ``frame;frame;...;leaf count`` line per distinct stack."""
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append(([short_frame(frame) for frame in stack.split(";")], int(count)))
    return stacks


def categorize(frames: list[str]) -> str:
    """The category of a sample: the innermost frame that matches one."""
    for frame in reversed(frames):
        for name, pattern in CATEGORIES:
            if pattern.search(frame):
                return name
    return "other"


def summarize(stacks: list[tuple[list[str], int]], top: int = 20) -> dict[str, Any]:
    """Samples per category, and the functions with the most time (own and inclusive)."""
    total = sum(count for _, count in stacks)
    categories: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    in_message_path = 0
    for frames, count in stacks:
        categories[categorize(frames)] += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
        if any(frame.startswith("message_sent (events.py") for frame in frames):
            in_message_path += count

    def share(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"name": name, "pct": round(100 * count / total, 1)}
            for name, count in counter.most_common(top)
        ]

    return {
        "samples": total,
        "message_sent_handler_pct": round(100 * in_message_path / total, 1) if total else 0,
        "categories": share(categories),
        "own": share(own),
        "inclusive": share(inclusive),
    }


def py_spy() -> str:
    """The py-spy executable next to this Python, or on the PATH."""
    local = Path(sys.executable).with_name("py-spy")
    found = str(local) if local.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("py-spy is not installed: pip install -r bench/requirements.txt")
    return found


def run(
    rate: float,
    seconds: float,
    users: int,
    folder: Path,
    app_dir: Path,
    stacks_out: Path | None = None,
) -> dict[str, Any]:
    """Profile the chat at ``app_dir`` serving ``rate`` messages/s for ``seconds``; keep
    py-spy's stacks in ``stacks_out`` if given."""
    server = servers.start_chat(folder / "chat", app_dir)
    raw_path = folder / "profile.txt"
    try:
        spec = {
            "url": server.url,
            "mode": "chat",
            "server_pid": server.pid,
            "scenario": "rates",
            "users": users,
            "user_prefix": "prof",
            "rates": [rate],
            "step_seconds": seconds,
            "stop_after_failures": 1,
            "retry_failed_steps": False,
            "timeout_seconds": seconds + 120,
        }
        recorder: list[subprocess.Popen[bytes]] = []

        def start_recording(record: dict[str, Any]) -> None:
            # Only the load is profiled, not the users' registration before it.
            if record["event"] == "ready":
                command = [
                    py_spy(),
                    "record",
                    "--pid",
                    str(server.pid),
                    "--rate",
                    str(SAMPLE_RATE),
                    "--format",
                    "raw",
                    "--output",
                    str(raw_path),
                    "--nonblocking",
                    "--duration",
                    str(int(seconds)),
                ]
                recorder.append(
                    subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                )

        records = loadgen.run(spec, on_record=start_recording)
        for process in recorder:
            process.wait(60)
    finally:
        server.stop()
    (step,) = [record for record in records if record["event"] == "step"]
    raw = raw_path.read_text()
    if stacks_out is not None:
        stacks_out.write_text(raw)
    summary = summarize(parse_raw(raw))
    return {"rate": rate, "seconds": seconds, "users": users, "step": step, **summary}


def main() -> None:
    """Profile and write the summary as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=400)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--app-dir", type=Path, default=servers.ROOT)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as folder:
        result = run(
            args.rate,
            args.seconds,
            args.users,
            Path(folder),
            args.app_dir.resolve(),
            stacks_out=args.out.with_suffix(".stacks.txt"),
        )
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
