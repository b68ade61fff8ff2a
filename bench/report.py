"""Turn results.json files into markdown tables and matplotlib plots.

    python -m bench.report bench/results/full-main/results.json [more results.json] --out DIR

With several results (e.g. before and after a change) every table has a row per run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench import scenarios

KINDS = ("chat", "relay")
CLUSTER_NAMES = {
    "chat-pg": "1 process, no nginx",
    "cluster-1": "1 worker behind nginx",
    "cluster-2": "2 workers behind nginx",
}
# Besides the workers' own: CPU of these processes, per step (loadgen.mjs's cpu_groups).
CPU_GROUPS = ("nginx", "redis", "postgres")


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def capacity_table(runs: list[dict[str, Any]]) -> str:
    """Capacity of chat and relay and their ratio, measured and as CPU ceilings."""
    rows = []
    for run in runs:
        if "capacity" not in run:
            continue
        chat, relay = run["capacity"]["chat"], run["capacity"]["relay"]
        best = next((s for s in chat["steps"] if s["offered_rate"] == chat["capacity"]), None)
        ceilings = [scenarios.cpu_ceiling_of(side["steps"]) for side in (chat, relay)]
        sent = scenarios.sent_in(chat["steps"])
        rows.append(
            [
                run["label"],
                chat["capacity"],
                relay["capacity"],
                _ratio(chat["capacity"], relay["capacity"]),
                best and best["delivered_per_s"],
                best and best["latency_ms"]["p99"],
                ceilings[0],
                ceilings[1],
                _ratio(*ceilings),
                f"{chat['stored_messages']:,} of {sent:,}",
            ]
        )
    header = [
        "run",
        "chat capacity (msg/s)",
        "relay capacity (msg/s)",
        "chat / relay",
        "chat deliveries/s at capacity",
        "chat p99 at capacity (ms)",
        "chat CPU ceiling (msg/s)",
        "relay CPU ceiling (msg/s)",
        "chat / relay (ceilings)",
        "messages stored",
    ]
    return _table(header, rows)


def _ratio(a: float | None, b: float | None) -> str | None:
    return f"{a / b:.2f}" if a and b else None


def sweep_table(runs: list[dict[str, Any]]) -> str:
    """Every step of the rate sweep, chat and relay side by side."""
    rows = []
    for run in runs:
        if "capacity" not in run:
            continue
        by_rate: dict[float, dict[str, Any]] = {}
        for kind in KINDS:
            for step in run["capacity"][kind]["steps"]:
                by_rate.setdefault(step["offered_rate"], {})[kind] = step
        for rate in sorted(by_rate):
            row: list[Any] = [run["label"], rate]
            for kind in KINDS:
                step = by_rate[rate].get(kind)
                if step is None:
                    row += [None] * 5
                    continue
                latency = step["latency_ms"]
                per_message = step.get("server_cpu_us_per_message")
                row += [
                    f"{_fmt(latency['p50'])} / {_fmt(latency['p99'])} / {_fmt(latency['max'])}",
                    step["lost"] + step["ack_errors"] + step["ack_timeouts"],
                    f"{_fmt(step['server_cpu_pct'])} ({_fmt(per_message, 0)})",
                    f"{_fmt(step['loadgen_cpu_pct'])} / {_fmt(step.get('others_cpu_pct'))}",
                    ("ok" if step["passed"] else "no")
                    + (" (2nd try)" if "first_attempt" in step else ""),
                ]
            rows.append(row)
    header = ["run", "offered msg/s"]
    for kind in KINDS:
        header += [
            f"{kind} p50 / p99 / max ms",
            f"{kind} lost+errors",
            f"{kind} server CPU % (µs per message)",
            "loadgen / other work CPU %",
            "passes",
        ]
    return _table(header, rows)


def machine_cpu_pct(step: dict[str, Any]) -> float:
    """Everything the machine's cores did during a step, in % of one core."""
    parts = ["server", *CPU_GROUPS, "loadgen", "others"]
    return round(sum(step.get(f"{part}_cpu_pct") or 0 for part in parts), 1)


def _spread(result: dict[str, Any]) -> str:
    spread = result.get("spread")
    if not spread:
        return "–"
    counts = " / ".join(f"{n:,}" for n in spread["sockets_per_worker"].values())
    return f"{counts} (from {spread['client_addresses']:,} addresses)"


def cluster_table(runs: list[dict[str, Any]]) -> str:
    """The chat on PostgreSQL and Redis: one process, 1 and 2 workers behind nginx.
    CPU per message is that of the busiest step that passed."""
    rows = []
    for run in runs:
        for kind, result in run.get("cluster", {}).items():
            steps = result["steps"]
            best = next((s for s in steps if s["offered_rate"] == result["capacity"]), None)
            passed = [s for s in steps if s["passed"]]
            busiest = max(passed, key=lambda s: s["server_cpu_pct"]) if passed else {}
            rows.append(
                [
                    run["label"],
                    CLUSTER_NAMES.get(kind, kind),
                    result["capacity"],
                    best and best["latency_ms"]["p99"],
                    busiest.get("offered_rate"),
                    busiest.get("server_cpu_pct"),
                    busiest.get("server_cpu_us_per_message"),
                    *[busiest.get(f"{group}_cpu_us_per_message") for group in CPU_GROUPS],
                    machine_cpu_pct(busiest) if busiest else None,
                    _spread(result),
                    f"{result['stored_messages']:,} of {scenarios.sent_in(steps):,}",
                ]
            )
    header = [
        "run",
        "chat on PostgreSQL + Redis",
        "capacity (msg/s)",
        "p99 at capacity (ms)",
        "busiest passing step (msg/s)",
        "workers' CPU % there",
        "workers' CPU µs per message",
        "nginx µs per message",
        "Redis µs per message",
        "PostgreSQL µs per message",
        "machine CPU % there (of 200)",
        "sockets per worker",
        "messages stored",
    ]
    return _table(header, rows)


def cluster_sweep_table(runs: list[dict[str, Any]]) -> str:
    """Every step of the scaled-out sweeps, with the CPU of each part."""
    rows = []
    for run in runs:
        for kind, result in run.get("cluster", {}).items():
            for step in result["steps"]:
                latency = step["latency_ms"]
                rows.append(
                    [
                        run["label"],
                        CLUSTER_NAMES.get(kind, kind),
                        step["offered_rate"],
                        f"{_fmt(latency['p50'])} / {_fmt(latency['p99'])} / {_fmt(latency['max'])}",
                        step["lost"] + step["ack_errors"] + step["ack_timeouts"],
                        f"{_fmt(step['server_cpu_pct'])} "
                        f"({_fmt(step.get('server_cpu_us_per_message'), 0)})",
                        " / ".join(_fmt(step.get(f"{group}_cpu_pct")) for group in CPU_GROUPS),
                        f"{_fmt(step['loadgen_cpu_pct'])} / {_fmt(step.get('others_cpu_pct'))}",
                        machine_cpu_pct(step),
                        ("ok" if step["passed"] else "no")
                        + (" (2nd try)" if "first_attempt" in step else ""),
                    ]
                )
    header = [
        "run",
        "chat",
        "offered msg/s",
        "p50 / p99 / max ms",
        "lost+errors",
        "workers' CPU % (µs per message)",
        "nginx / Redis / PostgreSQL CPU %",
        "loadgen / other work CPU %",
        "machine CPU % (of 200)",
        "passes",
    ]
    return _table(header, rows)


def fanout_table(runs: list[dict[str, Any]]) -> str:
    """Time from send to delivery at the first, median and last member."""
    rows = []
    for run in runs:
        for kind in KINDS:
            result = run.get("fanout", {}).get(kind)
            if result is None:
                continue
            rows.append(
                [
                    run["label"],
                    kind,
                    result["members"],
                    result["messages"],
                    result["first_member_ms"]["p50"],
                    result["median_member_ms"]["p50"],
                    result["last_member_ms"]["p50"],
                    result["last_member_ms"]["max"],
                    result["lost"],
                    result["connect_seconds"],
                ]
            )
    header = [
        "run",
        "server",
        "members",
        "messages",
        "first member p50 (ms)",
        "median member p50 (ms)",
        "last member p50 (ms)",
        "last member max (ms)",
        "lost",
        "connecting all (s)",
    ]
    return _table(header, rows)


def connections_table(runs: list[dict[str, Any]]) -> str:
    """Server memory per open connection at each stage."""
    rows = []
    for run in runs:
        for kind in KINDS:
            result = run.get("connections", {}).get(kind)
            if result is None:
                continue
            for stage in result["stages"]:
                rows.append(
                    [
                        run["label"],
                        kind,
                        stage["connections"],
                        stage["open"],
                        round(stage["server_rss_kib"] / 1024, 1),
                        round(
                            (stage["server_rss_kib"] - result["baseline_rss_kib"])
                            / max(stage["open"], 1),
                            1,
                        ),
                        round((stage["connections"]) / max(stage["connect_seconds"], 1e-9)),
                    ]
                )
            broadcast = result["broadcast"]
            rows.append(
                [
                    run["label"],
                    kind,
                    f"one message to all {broadcast['receivers']:,}",
                    f"{broadcast['delivered']:,} got it",
                    round(broadcast["server_rss_kib"] / 1024, 1),
                    round(
                        (broadcast["server_rss_kib"] - result["baseline_rss_kib"])
                        / (broadcast["receivers"] + 1),
                        1,
                    ),
                    f"last after {_fmt(broadcast['last_ms'])} ms",
                ]
            )
    header = [
        "run",
        "server",
        "connections",
        "open",
        "server RSS (MiB)",
        "KiB per open socket",
        "connects/s",
    ]
    return _table(header, rows)


def history_table(runs: list[dict[str, Any]]) -> str:
    """Cost of one page of history at each depth, keyset beside OFFSET."""
    rows = []
    for run in runs:
        history = run.get("history")
        if history is None:
            continue
        first = history["pages"][0]["keyset_before"]["median_us"]
        for page in history["pages"]:
            rows.append(
                [
                    run["label"],
                    f"{history['messages']:,}",
                    page["depth"],
                    page["keyset_before"]["median_us"],
                    page["offset_before"]["median_us"],
                    round(page["keyset_before"]["median_us"] / first, 2),
                    page["keyset_after"]["median_us"],
                    page["offset_after"]["median_us"],
                ]
            )
    header = [
        "run",
        "messages in chat",
        "depth (newer messages skipped)",
        "keyset, scrolling up (µs)",
        "OFFSET, scrolling up (µs)",
        "keyset / first page",
        "keyset, scrolling down from the oldest (µs)",
        "OFFSET, scrolling down (µs)",
    ]
    return _table(header, rows)


def chat_list_table(runs: list[dict[str, Any]]) -> str:
    """The chat list of a user with 200 chats."""
    rows = []
    for run in runs:
        history = run.get("history")
        if history is None:
            continue
        chats = history["chat_list"]
        rows.append(
            [
                run["label"],
                chats["chats"],
                chats["unread_total"],
                chats["one_query"]["median_us"],
                chats["one_query"]["statements"],
                chats["query_per_chat"]["median_us"],
                chats["query_per_chat"]["statements"],
            ]
        )
    header = [
        "run",
        "chats",
        "unread in all",
        "list_chats_for_member (µs)",
        "statements",
        "one query per chat instead (µs)",
        "statements",
    ]
    return _table(header, rows)


def profile_table(runs: list[dict[str, Any]]) -> str:
    """Where the server's time went while serving messages."""
    names: list[str] = []
    for run in runs:
        for category in run.get("profile", {}).get("categories", []):
            if category["name"] not in names:
                names.append(category["name"])
    profiled = [run for run in runs if "profile" in run]
    rows = []
    for name in names:
        row: list[Any] = [name]
        for run in profiled:
            shares = {c["name"]: c["pct"] for c in run["profile"]["categories"]}
            row.append(shares.get(name, 0.0))
        rows.append(row)
    header = ["share of server samples (%)"] + [
        f"{run['label']} at {_fmt(run['profile']['rate'], 0)} msg/s" for run in profiled
    ]
    return _table(header, rows)


def plot_latency(runs: list[dict[str, Any]], path: Path) -> None:
    """Latency (p50 and p99) against offered rate, chat and relay."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for run in runs:
        for kind in KINDS:
            steps = run.get("capacity", {}).get(kind, {}).get("steps", [])
            if not steps:
                continue
            rates = [step["offered_rate"] for step in steps]
            label = f"{kind} ({run['label']})" if len(runs) > 1 else kind
            (line,) = axes.plot(rates, [s["latency_ms"]["p99"] for s in steps], marker="o")
            line.set_label(f"{label} p99")
            axes.plot(
                rates,
                [s["latency_ms"]["p50"] for s in steps],
                marker=".",
                linestyle="--",
                color=line.get_color(),
                label=f"{label} p50",
            )
    axes.axhline(100, color="grey", linewidth=0.8, linestyle=":", label="100 ms")
    axes.set_xlabel("offered rate (messages/s, pairs of users)")
    axes.set_ylabel("send → delivery latency (ms)")
    axes.set_yscale("log")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    axes.set_title("Latency against offered rate: chat and bare relay")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_history(runs: list[dict[str, Any]], path: Path) -> None:
    """Cost of one page against its depth, keyset and OFFSET."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for run in runs:
        history = run.get("history")
        if history is None:
            continue
        depths = [max(page["depth"], 1) for page in history["pages"]]
        suffix = f" ({run['label']})" if len(runs) > 1 else ""
        for key, label in (
            ("keyset_before", "keyset (by id)"),
            ("offset_before", "OFFSET"),
        ):
            costs = [page[key]["median_us"] / 1000 for page in history["pages"]]
            axes.plot(depths, costs, marker="o", label=label + suffix)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("depth of the page (newer messages above it; first page drawn at 1)")
    axes.set_ylabel("cost of one page of 10 (ms, median)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    axes.set_title("History paging: keyset against OFFSET")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def disturbance_table(runs: list[dict[str, Any]]) -> str:
    """bench.disturbance's table for each run that has one, under the run's label."""
    from bench.disturbance import table

    return "\n\n".join(
        f"{run['label']}:\n\n{table(run['disturbance'])}" for run in runs if "disturbance" in run
    )


def summary(runs: list[dict[str, Any]]) -> str:
    """Every table, as markdown."""
    sections = [
        ("Capacity", capacity_table),
        ("Rate sweep", sweep_table),
        ("Fan-out", fanout_table),
        ("Connections", connections_table),
        ("History pages", history_table),
        ("Chat list", chat_list_table),
        ("Profile", profile_table),
        ("Scaled out: capacity on PostgreSQL and Redis, 1 and 2 workers", cluster_table),
        ("Scaled out: rate sweep", cluster_sweep_table),
        ("Disturbances: the innocent users during each", disturbance_table),
    ]
    text = []
    for title, make in sections:
        table = make(runs)
        if table.count("\n") > 1:
            text.append(f"### {title}\n\n{table}\n")
    return "\n".join(text)


def write(out: Path, runs: list[dict[str, Any]]) -> str:
    """Write summary.md and the plots (when matplotlib is installed) into ``out``."""
    text = summary(runs)
    (out / "summary.md").write_text(text)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return text + "\n(matplotlib is not installed: no plots)\n"
    if any("capacity" in run for run in runs):
        plot_latency(runs, out / "latency.png")
    if any("history" in run for run in runs):
        plot_history(runs, out / "history.png")
    return text


def main() -> None:
    """Read results files, write the tables and plots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    runs = [json.loads(path.read_text()) for path in args.results]
    print(write(args.out, runs))


if __name__ == "__main__":
    main()
