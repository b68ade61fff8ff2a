"""Run the benchmarks: capacity, fan-out and connections for the chat and the relay, history
paging and the chat list, optionally a profile; write the results as JSON and a summary.

    python -m bench.run                 # short version (`make bench`, under 3 minutes)
    python -m bench.run --full          # the figures of bench/README.md
    python -m bench.run --full --app-dir ../other-checkout --label proposed
    python -m bench.run --full --only cluster --label cluster   # needs nginx, Redis, PostgreSQL
    python -m bench.run --only disturbance --label disturbance  # innocent users, disturbed

Each scenario runs against the chat, then against the relay, in the same run. ``cluster``
(not run unless named) sweeps the chat on PostgreSQL and Redis instead: one process without
nginx, then 1 and 2 workers behind nginx. ``disturbance`` (not run unless named either) is
bench/disturbance.py: the innocent users' latency while one client disturbs the chat.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import disturbance, profile, report, scenarios, servers

SHORT: dict[str, Any] = {
    "capacity": {
        "users": 60,
        "group_size": 2,
        "rates": [100, 200, 400, 600, 900, 1200, 1600, 2000],
        "step_seconds": 3,
        "max_connections": 10_000,
        "timeout_seconds": 120,
    },
    "fanout": {"members": 200, "messages": 10, "max_connections": 10_000, "timeout_seconds": 120},
    "connections": {
        "users": 100,
        "stages": [500, 1000],
        "concurrency": 50,
        "max_connections": 10_000,
        "timeout_seconds": 120,
    },
    "history": {"messages": 100_000},
    "profile": None,
    "cluster": {
        "users": 60,
        "group_size": 2,
        "rates": [100, 200, 400, 600, 900, 1200],
        "step_seconds": 3,
        "max_connections": 10_000,
        "timeout_seconds": 150,
        "kinds": list(scenarios.CLUSTER_KINDS),
    },
    "disturbance": disturbance.FULL,
}

FULL: dict[str, Any] = {
    "capacity": {
        "users": 200,
        "group_size": 2,
        "rates": [round(100 * 1.25**n) for n in range(18)],  # 100 ... 4,441 messages/s
        "step_seconds": 8,
        "max_connections": 10_000,
        "timeout_seconds": 900,
    },
    "fanout": {"members": 1000, "messages": 30, "max_connections": 10_000, "timeout_seconds": 900},
    "connections": {
        "users": 1000,
        "stages": [1000, 5000, 10_000],
        "concurrency": 50,
        "max_connections": 10_000,
        "timeout_seconds": 1200,
    },
    "history": {"messages": 1_000_000},
    "profile": {"share_of_capacity": 0.8, "seconds": 15, "users": 200},
    "cluster": {
        "users": 200,
        "group_size": 2,
        "rates": [100, 200, 300, 400, 500, 600, 700, 800, 1000, 1200, 1400, 1700, 2000],
        "step_seconds": 5,
        "max_connections": 10_000,
        "timeout_seconds": 400,
        "kinds": list(scenarios.CLUSTER_KINDS),
    },
    "disturbance": disturbance.FULL,
}

SCENARIOS = ("capacity", "fanout", "connections", "history", "profile")
# Run only when named in --only: cluster needs nginx, Redis and PostgreSQL on this machine;
# disturbance runs the chat with its own limits and password hash (bench/disturbance.py).
OPTIONAL_SCENARIOS = ("cluster", "disturbance")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": node.stdout.strip(),
        "open_files_hard_limit": _hard_open_files(),
    }


def _hard_open_files() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def commit_of(app_dir: Path) -> str:
    """The commit the benchmarked chat was checked out at, with ``+changes`` if edited."""
    head = subprocess.run(
        ["git", "-C", str(app_dir), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(app_dir), "status", "--porcelain", "--", "*.py", "query.sql"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{head}+changes" if dirty else head


def run_history(config: dict[str, Any], app_dir: Path, folder: Path) -> dict[str, Any]:
    """History paging in its own process, so it imports the db_commands of ``app_dir``."""
    out = folder / "history.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.history",
            "--messages",
            str(config["messages"]),
            "--app-dir",
            str(app_dir),
            "--out",
            str(out),
        ],
        cwd=servers.ROOT,
        check=True,
    )
    return json.loads(out.read_text())


def run_all(
    settings: dict[str, Any], only: set[str], app_dir: Path, folder: Path
) -> dict[str, Any]:
    """Every chosen scenario, the chat then the relay; timings per scenario."""
    results: dict[str, Any] = {"seconds": {}}
    for name in ("capacity", "fanout", "connections"):
        if name not in only:
            continue
        started = time.monotonic()
        scenario = getattr(scenarios, name)
        results[name] = {
            kind: scenario(kind, folder / name, app_dir, settings[name])
            for kind in ("chat", "relay")
        }
        results["seconds"][name] = round(time.monotonic() - started, 1)
        print(f"[bench] {name}: {results['seconds'][name]} s", file=sys.stderr, flush=True)
    if "cluster" in only:
        started = time.monotonic()
        results["cluster"] = scenarios.cluster(folder / "cluster", app_dir, settings["cluster"])
        results["seconds"]["cluster"] = round(time.monotonic() - started, 1)
        print(f"[bench] cluster: {results['seconds']['cluster']} s", file=sys.stderr, flush=True)
    if "disturbance" in only:
        started = time.monotonic()
        results["disturbance"] = disturbance.run(
            app_dir, list(disturbance.NAMES), settings["disturbance"], folder / "disturbance"
        )
        results["seconds"]["disturbance"] = round(time.monotonic() - started, 1)
    if "history" in only:
        started = time.monotonic()
        results["history"] = run_history(settings["history"], app_dir, folder)
        results["seconds"]["history"] = round(time.monotonic() - started, 1)
    if "profile" in only and settings["profile"]:
        started = time.monotonic()
        chat_capacity = results.get("capacity", {}).get("chat", {}).get("capacity") or 200
        rate = round(chat_capacity * settings["profile"]["share_of_capacity"])
        results["profile"] = profile.run(
            rate, settings["profile"]["seconds"], settings["profile"]["users"], folder, app_dir
        )
        results["seconds"]["profile"] = round(time.monotonic() - started, 1)
    return results


def keep_logs(folder: Path, into: Path) -> None:
    """Copy every log the servers of a run wrote under ``folder`` into ``into``, keeping
    their relative paths (the run's folder is deleted when it ends)."""
    for log in folder.rglob("*.log"):
        target = into / log.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, target)


def main() -> None:
    """Parse the command line, run, write results.json and summary.md (and plots)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the full figures (about 20 min)")
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated, of {', '.join(SCENARIOS + OPTIONAL_SCENARIOS)}",
    )
    parser.add_argument("--app-dir", type=Path, default=servers.ROOT, help="checkout to measure")
    parser.add_argument("--label", default="main", help="name of this run in the tables")
    parser.add_argument("--out", type=Path, help="results folder (default bench/results/...)")
    parser.add_argument(
        "--rates", help="comma-separated offered rates for the capacity and cluster sweeps"
    )
    parser.add_argument(
        "--cluster-kinds",
        help=f"comma-separated, of {', '.join(scenarios.CLUSTER_KINDS)} (default all)",
    )
    parser.add_argument(
        "--keep-logs",
        action="store_true",
        help="copy the servers' logs (each worker's, nginx's) into <out>/logs",
    )
    servers.add_nice_option(parser, "servers and load generator")
    args = parser.parse_args()
    servers.NICE = args.nice
    mode = "full" if args.full else "short"
    out = args.out or servers.ROOT / "bench" / "results" / f"{mode}-{args.label}"
    out.mkdir(parents=True, exist_ok=True)
    app_dir = args.app_dir.resolve()
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    settings = copy.deepcopy(FULL if args.full else SHORT)
    if args.rates:
        rates = [int(rate) for rate in args.rates.split(",")]
        settings["capacity"]["rates"] = settings["cluster"]["rates"] = rates
    if args.cluster_kinds:
        kinds = [kind.strip() for kind in args.cluster_kinds.split(",") if kind.strip()]
        if set(kinds) - set(scenarios.CLUSTER_KINDS):
            parser.error(f"--cluster-kinds: of {', '.join(scenarios.CLUSTER_KINDS)}")
        settings["cluster"]["kinds"] = kinds
    unknown = only - set(SCENARIOS) - set(OPTIONAL_SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario: {', '.join(sorted(unknown))}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        try:
            results = run_all(settings, only, app_dir, Path(folder))
        finally:
            if args.keep_logs:
                keep_logs(Path(folder), out / "logs")
    results.update(
        label=args.label,
        mode=mode,
        commit=commit_of(app_dir),
        machine=machine(),
        total_seconds=round(time.monotonic() - started, 1),
        nice=args.nice,
    )
    previous = out / "results.json"
    if previous.exists() and only != set(SCENARIOS):
        # A partial run (--only) updates those scenarios in the results already there.
        kept = json.loads(previous.read_text())
        kept["seconds"].update(results.pop("seconds"))
        results = {**kept, **results}
    previous.write_text(json.dumps(results, indent=2))
    summary = report.write(out, [results])
    print(summary)


if __name__ == "__main__":
    main()
