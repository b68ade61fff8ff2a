"""The live scenarios, each run against the chat and the relay in turn: capacity (a sweep of
offered rates), fan-out to one big channel, and many open connections."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from bench import loadgen, servers


def _start(kind: str, folder: Path, app_dir: Path, max_connections: int) -> servers.Server:
    if kind == "chat":
        return servers.start_chat(folder, app_dir, MAX_CONNECTIONS=str(max_connections))
    return servers.start_relay(folder, max_connections)


def _records(records: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [record for record in records if record["event"] == event]


def stored_messages(database_path: Path) -> int:
    """How many messages the chat's database holds."""
    with sqlite3.connect(database_path) as db:
        return db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]


def _run(
    kind: str, folder: Path, app_dir: Path, spec: dict[str, Any], max_connections: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Start a server, run one load generator scenario against it, stop it."""
    server = _start(kind, folder / kind, app_dir, max_connections)
    load_before = os.getloadavg()[0]
    try:
        records = loadgen.run({"url": server.url, "mode": kind, "server_pid": server.pid, **spec})
        facts: dict[str, Any] = {"server_rss_kib_end": server.rss_kib()}
    except loadgen.LoadgenError as error:
        raise loadgen.LoadgenError(f"{error}\n{kind} server output:\n{server.log_tail()}") from None
    finally:
        server.stop()
    facts["loadavg_before"] = round(load_before, 2)
    facts["loadavg_after"] = round(os.getloadavg()[0], 2)
    if kind == "chat" and server.database_path is not None:
        facts["stored_messages"] = stored_messages(server.database_path)
    return records, facts


def sent_in(steps: list[dict[str, Any]]) -> int:
    """Messages sent in a sweep, counting the first attempt of each step run twice (the
    same rate for the same time sends as many)."""
    return sum(
        step["sent"]
        + (step["first_attempt"].get("sent", step["sent"]) if "first_attempt" in step else 0)
        for step in steps
    )


def cpu_ceiling_of(steps: list[dict[str, Any]]) -> float | None:
    """Messages per second one core would serve at the per-message CPU cost of the busiest
    step that passed: a figure that other work on the machine moves less than p99."""
    busy = [s for s in steps if s["passed"] and s["server_cpu_pct"] >= 20]
    if not busy:
        return None
    step = max(busy, key=lambda s: s["server_cpu_pct"])
    return round(step["offered_rate"] * 100 / step["server_cpu_pct"])


def capacity_of(steps: list[dict[str, Any]]) -> float | None:
    """The highest offered rate delivered with nothing lost and p99 within the limit."""
    passed = [step["offered_rate"] for step in steps if step["passed"]]
    return max(passed) if passed else None


def capacity(kind: str, folder: Path, app_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Sweep offered rates over pairs (or groups) of users sending to each other."""
    spec = {
        "scenario": "rates",
        "users": config["users"],
        "group_size": config["group_size"],
        "rates": config["rates"],
        "step_seconds": config["step_seconds"],
        "user_prefix": f"cap{kind[0]}",
        "timeout_seconds": config["timeout_seconds"],
        "retry_failed_steps": config.get("retry_failed_steps", True),
    }
    records, facts = _run(kind, folder, app_dir, spec, config["max_connections"])
    steps = _records(records, "step")
    result = {
        "kind": kind,
        "users": config["users"],
        "group_size": config["group_size"],
        "steps": steps,
        "capacity": capacity_of(steps),
        "cpu_ceiling": cpu_ceiling_of(steps),
        "sent": sent_in(steps),
        "acked": sum(step["acked"] for step in steps),
        **facts,
    }
    if kind == "chat":
        result["every_message_stored"] = result["stored_messages"] == result["sent"]
    return result


def fanout(kind: str, folder: Path, app_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """One channel with every user in it; one sender; time to the last member."""
    spec = {
        "scenario": "fanout",
        "users": config["members"],
        "fanout_messages": config["messages"],
        "user_prefix": f"fan{kind[0]}",
        "timeout_seconds": config["timeout_seconds"],
    }
    records, facts = _run(kind, folder, app_dir, spec, config["max_connections"])
    (result,) = _records(records, "fanout")
    return {"kind": kind, **result, **facts}


def connections(kind: str, folder: Path, app_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Open more and more sockets; the server's memory at each stage."""
    spec = {
        "scenario": "hold",
        "users": config["users"],
        "stages": config["stages"],
        "setup_concurrency": config["concurrency"],
        "user_prefix": f"con{kind[0]}",
        "timeout_seconds": config["timeout_seconds"],
    }
    records, facts = _run(kind, folder, app_dir, spec, config["max_connections"])
    (baseline,) = _records(records, "baseline")
    (broadcast,) = _records(records, "broadcast")
    return {
        "kind": kind,
        "users": config["users"],
        "baseline_rss_kib": baseline["server_rss_kib"],
        "stages": _records(records, "stage"),
        "broadcast": broadcast,
        **facts,
    }
