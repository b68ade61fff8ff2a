"""Run the Node load generator (loadgen.mjs) with a spec and collect its JSON results."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import servers

SCRIPT = Path(__file__).with_name("loadgen.mjs")
ROOT = Path(__file__).resolve().parents[2]

DEFAULT_SPEC: dict[str, Any] = {
    "password": "bench-password-1",
    "register": True,
    "setup_concurrency": 16,
    "ack_timeout_ms": 30_000,
    "body_chars": 100,
    "p99_limit_ms": 100,
    "give_up_p99_ms": 2000,
    "stop_after_failures": 2,
    "max_failures": 8,
    "busy_server_cpu_pct": 70,
    "retry_failed_steps": True,
    "drain_seconds": 10,
    "group_size": 2,
    "fanout_chat_id": 1,
    "fanout_messages": 20,
    "fanout_interval_ms": 200,
    "settle_seconds": 30,
    "timeout_seconds": 600,
}


class LoadgenError(RuntimeError):
    """The load generator failed or did not finish."""


def node() -> str:
    """The Node.js executable."""
    found = shutil.which("node")
    if found is None:
        raise LoadgenError("Node.js is needed to run the load generator.")
    return found


def run(
    spec: dict[str, Any], on_record: Callable[[dict[str, Any]], None] | None = None
) -> list[dict[str, Any]]:
    """Run one scenario; return the records the load generator printed, in order.

    ``on_record`` sees each record as it arrives (e.g. to start a profiler on "ready").
    """
    full = {**DEFAULT_SPEC, **spec}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(full, handle)
        spec_path = handle.name
    records: list[dict[str, Any]] = []
    process = subprocess.Popen(
        [node(), str(SCRIPT), spec_path],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        preexec_fn=servers.set_niceness,
    )
    # The generator ends itself after timeout_seconds; this only guards against a hang.
    watchdog = threading.Timer(full["timeout_seconds"] + 30, process.kill)
    watchdog.start()
    try:
        for line in process.stdout:
            if line.strip():
                records.append(json.loads(line))
                if on_record is not None:
                    on_record(records[-1])
        returncode = process.wait()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
        Path(spec_path).unlink(missing_ok=True)
    failed = [record for record in records if record.get("event") == "error"]
    if returncode != 0 or failed:
        detail = failed[0]["error"] if failed else f"exit code {returncode}"
        raise LoadgenError(f"the load generator failed: {detail}")
    return records
