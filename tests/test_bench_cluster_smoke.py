"""The scaled-out capacity benchmark runs on a tiny load and accounts for every message.

The chat on PostgreSQL and Redis as one ``python app.py``, then as 1 and 2 workers behind
real nginx (started by deploy/cluster.py), each user connecting from a loopback address of
its own. No timing is asserted: the figures belong in bench/README.md.

nginx, Redis or PostgreSQL missing: skipped with the reason, except under ``CI=true``,
where it fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import report, scenarios, servers
from tests.skips import skip_or_fail
from tests.test_bench_smoke import assert_each_message_acked_delivered_once_and_stored

# It starts real servers: `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

USERS = 16  # 8 pairs: two workers both get sockets unless the hash is very unlucky
TINY_CLUSTER = {
    "users": USERS,
    "group_size": 2,
    "rates": [10, 20],
    "step_seconds": 1,
    "max_connections": 200,
    "timeout_seconds": 90,
    "kinds": list(scenarios.CLUSTER_KINDS),
}


def test_one_and_two_workers_behind_nginx_lose_nothing_and_store_every_message(
    tmp_path: Path,
) -> None:
    problem = servers.cluster_problem()
    if problem:
        skip_or_fail(f"the cluster benchmark cannot run: {problem}")
    results = scenarios.cluster(tmp_path, servers.ROOT, TINY_CLUSTER)
    assert list(results) == ["chat-pg", "cluster-1", "cluster-2"]
    for kind, result in results.items():
        assert [step["offered_rate"] for step in result["steps"]] == [10, 20], kind
        for step in result["steps"]:
            assert_each_message_acked_delivered_once_and_stored(kind, step)
            assert step["ack_timeouts"] == 0, (kind, step)
            for group in ("redis", "postgres"):
                assert step[f"{group}_cpu_pct"] >= 0, (kind, group)
        # Counted in PostgreSQL, in the schema the run made (and dropped afterwards).
        assert result["stored_messages"] == result["sent"], kind
        assert result["every_message_stored"] is True, kind
        spread = result["spread"]
        assert spread["client_addresses"] == USERS, (kind, spread)
        assert sum(spread["sockets_per_worker"].values()) == USERS, (kind, spread)
    for kind in ("cluster-1", "cluster-2"):
        assert all("nginx_cpu_pct" in step for step in results[kind]["steps"]), kind
    per_worker = results["cluster-2"]["spread"]["sockets_per_worker"]
    assert len(per_worker) == results["cluster-2"]["workers"] == 2
    assert all(count > 0 for count in per_worker.values()), per_worker
    table = report.cluster_table([{"label": "main", "cluster": results}])
    assert "| main | 2 workers behind nginx |" in table
