"""The capacity of N workers on M cores, on paper, from one cluster sweep's CPU per message.

Reads the ``results.json`` of ``python -m bench.run --only cluster`` (its ``cluster-1`` and
``cluster-2`` runs), takes the step of the highest rate both runs passed, and prints
Markdown tables: the CPU per message of each part, the capacity the model predicts against
the one measured here, then the prediction for more workers and cores (bench/README.md, "Scaling
out: a model").

    python -m bench.capacity_model bench/results/cluster/results.json

The model, per message sent (µs of CPU):

- workers: ``W(N) = W1 + (N - 1) * D``. Through Redis's message queue every worker handles
  every emit, so each worker beyond the first adds ``D = W2 - W1``.
- Redis: ``R(N) = R1 + (N - 1) * (R2 - R1)`` (each subscriber more is one more delivery of
  every publish). nginx ``G`` and PostgreSQL ``P`` do not depend on N.
- Capacity is the least of three ceilings: the workers' (``N`` cores at most, one each:
  ``N / W(N)``), Redis's (one core: ``1 / R(N)``) and the machine's (``M`` cores for
  everything on it: ``M / (W(N) + G + R(N) + P + L)``, where ``L`` is the load generator
  when it shares the machine, as here, and 0 in a prediction).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

PARTS = ("workers", "nginx", "redis", "postgres", "loadgen")


def passed_rates(run: dict[str, Any]) -> set[int]:
    return {step["offered_rate"] for step in run["steps"] if step["passed"]}


def step_at(run: dict[str, Any], rate: int) -> dict[str, Any]:
    """The step of ``run`` at ``rate``. One rate for both runs: CPU per message falls as the
    rate grows (a worker's costs per second, timers and polls, spread over more messages),
    so two rates would count that fall as the cost of the second worker."""
    return next(step for step in run["steps"] if step["offered_rate"] == rate)


def cost_per_message(step: dict[str, Any]) -> dict[str, float]:
    """µs of CPU per message of each part at ``step``."""
    rate = step["offered_rate"]
    return {
        "workers": step["server_cpu_us_per_message"],
        "nginx": step["nginx_cpu_us_per_message"],
        "redis": step["redis_cpu_us_per_message"],
        "postgres": step["postgres_cpu_us_per_message"],
        "loadgen": step["loadgen_cpu_pct"] / 100 / rate * 1e6,
    }


class Model:
    """CPU per message of each part for N workers, from the runs with 1 and 2."""

    def __init__(self, one: dict[str, float], two: dict[str, float]):
        self.one, self.two = one, two

    def costs(self, workers: int) -> dict[str, float]:
        extra = workers - 1
        return {
            "workers": self.one["workers"] + extra * (self.two["workers"] - self.one["workers"]),
            "redis": self.one["redis"] + extra * (self.two["redis"] - self.one["redis"]),
            "nginx": (self.one["nginx"] + self.two["nginx"]) / 2,
            "postgres": (self.one["postgres"] + self.two["postgres"]) / 2,
        }

    def ceilings(self, workers: int, cores: int, loadgen_us: float = 0.0) -> dict[str, float]:
        """Messages per second each limit allows."""
        cost = self.costs(workers)
        return {
            "workers' cores": workers * 1e6 / cost["workers"],
            "Redis (one core)": 1e6 / cost["redis"],
            "the machine's cores": cores * 1e6 / (sum(cost.values()) + loadgen_us),
        }


def limit(ceilings: dict[str, float]) -> tuple[float, str]:
    name = min(ceilings, key=ceilings.__getitem__)
    return ceilings[name], name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--cores", type=int, default=2, help="of the machine measured")
    args = parser.parse_args()
    runs = json.loads(args.results.read_text())["cluster"]
    rate = max(passed_rates(runs["cluster-1"]) & passed_rates(runs["cluster-2"]))
    steps = {n: step_at(runs[f"cluster-{n}"], rate) for n in (1, 2)}
    costs = {n: cost_per_message(step) for n, step in steps.items()}
    model = Model(costs[1], costs[2])

    print("| workers | step (msg/s) | " + " | ".join(PARTS) + " | sum |")
    print("|---" * (len(PARTS) + 3) + "|")
    for n, cost in costs.items():
        cells = " | ".join(f"{cost[part]:,.0f}" for part in PARTS)
        print(f"| {n} | {steps[n]['offered_rate']:,} | {cells} | {sum(cost.values()):,.0f} |")
    print()
    print("| workers | predicted ceiling (msg/s) | limited by | measured capacity (msg/s) |")
    print("|---|---|---|---|")
    for n in (1, 2):
        rate, name = limit(model.ceilings(n, args.cores, costs[n]["loadgen"]))
        run = runs[f"cluster-{n}"]
        failed = [s["offered_rate"] for s in run["steps"] if not s["passed"]]
        measured = f"{run['capacity']:,}" + (f" (fails at {min(failed):,})" if failed else "")
        print(f"| {n} | {rate:,.0f} | {name} | {measured} |")
    print()
    names = list(model.ceilings(1, 1))
    print("| workers | cores | " + " | ".join(names) + " | predicted (msg/s) | limited by |")
    print("|---" * (len(names) + 4) + "|")
    for n in (4, 8):
        for cores in (4, 8, 16):
            ceilings = model.ceilings(n, cores)
            cells = " | ".join(f"{ceilings[name]:,.0f}" for name in names)
            rate, name = limit(ceilings)
            print(f"| {n} | {cores} | {cells} | {rate:,.0f} | {name} |")
    extra = costs[2]["workers"] - costs[1]["workers"]
    print()
    print(
        f"Each worker beyond the first adds {extra:,.0f} µs of worker CPU per message: "
        f"however many workers and cores, at most {1e6 / extra:,.0f} msg/s."
    )


if __name__ == "__main__":
    main()
