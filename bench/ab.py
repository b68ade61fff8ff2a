"""Compare checkouts of the chat at one fixed rate: server CPU per message and latency.

CPU time per message barely moves with other work on the machine, unlike capacity and p99,
so it is the figure to judge a change by. The checkouts take turns, ``--rounds`` times.

    python -m bench.ab --rate 400 main=. proposed=../scratch-checkout relay=relay

The path ``relay`` stands for the bare relay (bench/baseline_relay.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench import scenarios


def measure(
    app_dir: Path | None, rate: float, seconds: float, users: int, folder: Path
) -> dict[str, Any]:
    """One step at ``rate`` against the chat at ``app_dir`` (the relay when None)."""
    config = {
        "users": users,
        "group_size": 2,
        "rates": [rate],
        "step_seconds": seconds,
        "max_connections": 10_000,
        "timeout_seconds": seconds + 120,
        "retry_failed_steps": False,
    }
    kind = "relay" if app_dir is None else "chat"
    result = scenarios.capacity(kind, folder, app_dir or Path("."), config)
    (step,) = result["steps"]
    return {
        "cpu_us_per_message": step["server_cpu_us_per_message"],
        "p50_ms": step["latency_ms"]["p50"],
        "p99_ms": step["latency_ms"]["p99"],
        "lost": step["lost"],
        "stored_all": result.get("every_message_stored", True),
        "others_cpu_pct": step["others_cpu_pct"],
    }


def main() -> None:
    """Alternate the checkouts and print the median of each figure per checkout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="+", help="label=path of a checkout of the chat")
    parser.add_argument("--rate", type=float, default=400)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    checkouts = dict(item.split("=", 1) for item in args.checkouts)
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in checkouts}
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as folder:
        for round_number in range(args.rounds):
            for label, path in checkouts.items():
                where = Path(folder) / f"{label}-{round_number}"
                runs[label].append(
                    measure(
                        None if path == "relay" else Path(path).resolve(),
                        args.rate,
                        args.seconds,
                        args.users,
                        where,
                    )
                )
    summary = {
        label: {
            key: statistics.median(run[key] for run in results)
            for key in ("cpu_us_per_message", "p50_ms", "p99_ms", "others_cpu_pct")
        }
        | {"lost": sum(run["lost"] for run in results)}
        | {"stored_all": all(run["stored_all"] for run in results)}
        for label, results in runs.items()
    }
    text = json.dumps({"rate": args.rate, "summary": summary, "runs": runs}, indent=2)
    if args.out:
        args.out.write_text(text)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
