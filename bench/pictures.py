"""A big picture against an innocent user: bob's message latency while alice uploads.

Starts ``python app.py`` from ``--app-dir``; bob sends messages one after another (each
waits for its ack) for a quiet spell, then while alice uploads ``--uploads`` PNGs of
``--size`` × ``--size`` pixels one after another. Prints bob's ack latency (p50, p99, max)
in each phase, the uploads' times, and the server's peak resident memory (VmHWM).

    .venv/bin/python -m bench.pictures [--app-dir DIR] [--uploads 5] [--size 6320]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench.clients import RealClient, csrf_token
from bench.picture_files import RGB, huge_png
from bench.servers import ROOT, start_chat

QUIET_S = 3.0


def percentile(values: list[float], share: float) -> float:
    """The value below which ``share`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summary(latencies_ms: list[float]) -> dict[str, float]:
    """Count, p50, p99 and max of ``latencies_ms``."""
    return {
        "messages": len(latencies_ms),
        "p50_ms": round(statistics.median(latencies_ms), 1),
        "p99_ms": round(percentile(latencies_ms, 0.99), 1),
        "max_ms": round(max(latencies_ms), 1),
    }


def peak_rss_mib(pid: int) -> float:
    """A process's peak resident memory, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def run(app_dir: Path, uploads: int, size: int) -> dict[str, object]:
    """One run against the chat in ``app_dir``; the figures."""
    folder = Path(tempfile.mkdtemp(prefix="bench-pictures-"))
    server = start_chat(folder, app_dir)
    try:
        alice = RealClient(server, "alice").register()
        bob = RealClient(server, "bob").register()
        bob.connect()
        picture = huge_png(size, size, RGB)
        idle_rss = peak_rss_mib(server.pid)
        upload_seconds: list[float] = []
        statuses: list[int] = []

        def upload_all() -> None:
            token = csrf_token(alice.http.get(f"{server.url}/chats").text)
            for _ in range(uploads):
                started = time.perf_counter()
                response = alice.http.post(
                    f"{server.url}/upload",
                    data={"chat_id": "1", "client_id": uuid.uuid4().hex},
                    files={"file": ("big.png", picture)},
                    headers={"X-CSRFToken": token, "Accept": "application/json"},
                    timeout=300,
                )
                upload_seconds.append(round(time.perf_counter() - started, 2))
                statuses.append(response.status_code)

        phases: dict[str, list[float]] = {"quiet": [], "during uploads": []}
        uploader = threading.Thread(target=upload_all)
        quiet_until = time.monotonic() + QUIET_S
        phase = "quiet"
        while True:
            if phase == "quiet" and time.monotonic() > quiet_until:
                phase = "during uploads"
                uploader.start()
            elif phase == "during uploads" and not uploader.is_alive():
                break
            payload = {"chat_id": 1, "body": "ping", "client_id": uuid.uuid4().hex}
            started = time.perf_counter()
            ack = bob.call("message_sent", payload, timeout=120)
            assert ack["ok"], ack
            phases[phase].append((time.perf_counter() - started) * 1000)
        bob.disconnect()
        return {
            "app_dir": str(app_dir),
            "picture": f"{size}x{size} RGB PNG, {len(picture) // 1024} KB",
            "upload_statuses": statuses,
            "upload_seconds": upload_seconds,
            "bob": {name: summary(values) for name, values in phases.items()},
            "server_peak_rss_mib": {"idle": idle_rss, "after uploads": peak_rss_mib(server.pid)},
        }
    finally:
        server.stop()


def main() -> None:
    """Parse the arguments, run, print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app-dir", type=Path, default=ROOT)
    parser.add_argument("--uploads", type=int, default=5)
    parser.add_argument("--size", type=int, default=6320)
    args = parser.parse_args()
    print(json.dumps(run(args.app_dir.resolve(), args.uploads, args.size), indent=2))


if __name__ == "__main__":
    main()
