"""The live scenarios, each run against the chat and the relay in turn: capacity (a sweep of
offered rates), fan-out to one big channel, and many open connections; and the capacity of
the chat scaled out (PostgreSQL, Redis, 1 or 2 workers behind nginx).

Kinds of server: ``chat`` (``python app.py`` on SQLite), ``relay`` (bench/baseline_relay.py),
``chat-pg`` (``python app.py`` on PostgreSQL and Redis, no nginx) and ``cluster-N`` (N
workers on PostgreSQL and Redis behind nginx, started by deploy/cluster.py).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Any

from bench import loadgen, servers

CLUSTER_KINDS = ("chat-pg", "cluster-1", "cluster-2")


def _start(
    kind: str,
    folder: Path,
    app_dir: Path,
    max_connections: int,
    stack: contextlib.ExitStack,
    chat_settings: dict[str, str] | None = None,
) -> servers.Server:
    """Start a server of ``kind`` (the chat with ``chat_settings`` on top of the benchmark's);
    what it leaves behind (a PostgreSQL schema, Redis keys) is removed when ``stack``
    closes."""
    if kind == "relay":
        return servers.start_relay(folder, max_connections)
    settings = {"MAX_CONNECTIONS": str(max_connections), **(chat_settings or {})}
    if kind == "chat":
        return servers.start_chat(folder, app_dir, **settings)
    settings.update(
        servers.scaled_out_settings(
            stack.enter_context(servers.postgres_schema()),
            stack.enter_context(servers.redis_prefix()),
        )
    )
    if kind == "chat-pg":
        server = servers.start_chat(folder, app_dir, **settings)
    elif kind.startswith("cluster-"):
        workers = int(kind.removeprefix("cluster-"))
        server = servers.start_cluster(folder, app_dir, workers, settings)
    else:
        raise ValueError(f"unknown kind of server {kind!r}")
    server.cpu_groups.update(servers.backing_cpu_groups())
    return server


def _records(records: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [record for record in records if record["event"] == event]


def stored_messages(database_path: Path) -> int:
    """How many messages the chat's database holds."""
    with sqlite3.connect(database_path) as db:
        return db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]


def stored_messages_of(server: servers.Server) -> int | None:
    """How many messages the server's database holds, SQLite or PostgreSQL."""
    if server.database_path is not None:
        return stored_messages(server.database_path)
    if server.database_url is not None:
        return servers.count_rows(server.database_url, "messages")
    return None


def sockets_per_worker(server: servers.Server) -> dict[str, Any]:
    """Where the load generator's sockets are: TCP connections established to each worker
    (from nginx, or from the clients without it), and how many client addresses reach the
    public port."""
    ports = sorted(server.workers.values()) or [server.port]
    clients = servers.established_connections(server.port)
    return {
        "sockets_per_worker": {
            str(port): sum(servers.established_connections(port).values()) for port in ports
        },
        "client_addresses": len(clients),
        "client_connections": sum(clients.values()),
    }


def _run(
    kind: str,
    folder: Path,
    app_dir: Path,
    spec: dict[str, Any],
    max_connections: int,
    chat_settings: dict[str, str] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Start a server, run one load generator scenario against it, stop it."""
    with contextlib.ExitStack() as stack:
        server = _start(kind, folder / kind, app_dir, max_connections, stack, chat_settings)
        load_before = os.getloadavg()[0]
        facts: dict[str, Any] = {}

        def on_record(record: dict[str, Any]) -> None:
            # Every socket is open and in its chat: count where they are.
            if record.get("event") == "ready":
                facts["spread"] = sockets_per_worker(server)

        try:
            records = loadgen.run(
                {
                    "url": server.url,
                    "mode": "relay" if kind == "relay" else "chat",
                    "server_pids": server.server_pids,
                    "cpu_groups": server.cpu_groups,
                    **spec,
                },
                on_record,
            )
            facts["server_rss_kib_end"] = server.rss_kib()
        except loadgen.LoadgenError as error:
            raise loadgen.LoadgenError(
                f"{error}\n{kind} server output:\n{server.log_tail()}"
            ) from None
        finally:
            server.stop()
        facts["loadavg_before"] = round(load_before, 2)
        facts["loadavg_after"] = round(os.getloadavg()[0], 2)
        if kind != "relay":
            facts["stored_messages"] = stored_messages_of(server)
        if server.workers:
            facts["workers"] = len(server.workers)
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
    if config.get("source_addresses"):
        # A loopback address per user, so nginx's stickiness by client address spreads
        # them over the workers as it would spread machines on a LAN.
        spec["source_addresses"] = servers.source_addresses(config["users"])
    chat_settings = config.get("chat_settings", {})
    records, facts = _run(kind, folder, app_dir, spec, config["max_connections"], chat_settings)
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
        **({"chat_settings": chat_settings} if chat_settings else {}),
        **facts,
    }
    if kind != "relay":
        result["every_message_stored"] = result["stored_messages"] == result["sent"]
    return result


def cluster(folder: Path, app_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """The capacity sweep against the chat on PostgreSQL and Redis: one ``python app.py``
    without nginx, then 1 and 2 workers behind nginx (``config["kinds"]``), every user
    from a loopback address of its own."""
    problem = servers.cluster_problem()
    if problem:
        raise RuntimeError(f"the cluster benchmark needs nginx, Redis and PostgreSQL: {problem}")
    sweep = {**config, "source_addresses": True}
    return {
        kind: capacity(kind, folder, app_dir, sweep) for kind in config.get("kinds", CLUSTER_KINDS)
    }


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
