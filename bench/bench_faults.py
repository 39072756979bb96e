"""The promise under faults: GitHub answering 502 and secondary-rate-limit 403
with Retry-After for a minute, a worker killed mid-sync, Redis restarted.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test python -m bench.bench_faults

Real processes, as in the end-to-end tests: the GitHub double, `specbridge
serve`, two `specbridge worker`s, a Redis of its own, and PostgreSQL when
DATABASE_URL is set (SQLite otherwise). Prints deliveries received and
processed, and what must be 0: deliveries lost, duplicate issues, tasks
without their issue.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import requests
from sqlalchemy import func, select

from bot.sync.render import parse_marker
from storage.db import session_scope
from storage.migrate import upgrade
from storage.models import Delivery, DeliveryStatus
from tests.databases import create_empty_database, drop_database
from tests.e2e.harness import Stack, wait_until

REPO = "acme/rocket"
CONFIG = "project:\n  owner: acme\n  number: 1\n"


def spec_text(key: str, tasks: int, title: str = "Task") -> str:
    lines = [f"id: {key}", f"title: {key}", "phase: tasks", "tasks:"]
    for n in range(1, tasks + 1):
        depends = f", depends_on: [T-{n - 1}]" if n % 5 != 1 else ""
        lines.append(f"  - {{id: T-{n}, title: {title} {n}{depends}}}")
    return "\n".join(lines) + "\n"


def tickets(stack: Stack) -> Counter[tuple[str, str]]:
    """Issues per (spec, task), read from the hidden markers on the double."""
    found: Counter[tuple[str, str]] = Counter()
    for issue in stack.issues(REPO):
        marked = parse_marker(issue.get("body") or "")
        if marked and marked[1]:
            found[(marked[0], marked[1])] += 1
    return found


def inject_faults(stack: Stack, seconds: float) -> None:
    """For `seconds`: one GraphQL request in four answers 502, one REST write in five is
    refused by the secondary rate limit with Retry-After."""
    faults = [
        {"path": "^/graphql", "status": 502, "every": 4},
        {"method": "POST", "path": "^/repos/", "status": 403, "retry_after": 3, "every": 5},
    ]
    for fault in faults:
        requests.post(
            f"{stack.hub}/_admin/faults", json={**fault, "seconds": seconds}, timeout=10
        ).raise_for_status()


def run(tasks: int, fault_seconds: float, workdir: Path) -> dict[str, int]:
    database_url = create_empty_database(workdir)
    upgrade(database_url)
    stack = Stack(
        database_url,
        None,
        workdir,
        own_redis=True,
        extra_env={"GITHUB_WRITE_INTERVAL": "0.5", "SPECBRIDGE_HEARTBEAT_SECONDS": "1"},
    )
    try:
        stack.start()
        stack.create_repo({"README.md": "rocket\n", ".github/specbridge.yml": CONFIG})
        inject_faults(stack, fault_seconds)
        stack.commit(REPO, {"specs/first.yaml": spec_text("first", tasks)})
        wait_until(lambda: 0 < len(tickets(stack)) < tasks, 120, "the first sync under way")
        stack.kill("worker1")  # mid-sync: its spec lock and delivery lease lapse
        stack.restart("worker1")
        # Past its start (a worker refuses to start without Redis), then Redis goes.
        log = workdir / "worker1.log"
        wait_until(lambda: "lane started" in log.read_text(), 60, "worker1 started again")

        stack.kill("redis")  # everything queued is gone with it
        stack.commit(REPO, {"specs/second.yaml": spec_text("second", tasks // 2)})
        stack.commit(REPO, {"specs/first.yaml": spec_text("first", tasks, title="Renamed")})
        time.sleep(3)
        stack.start_redis()
        stack.settle(timeout=600)
        return count(stack, expected={"first": tasks, "second": tasks // 2})
    finally:
        stack.stop()
        drop_database(database_url)


def count(stack: Stack, expected: dict[str, int]) -> dict[str, int]:
    stack.admin("POST", "wait")
    sent = {d["id"] for d in stack.admin("GET", "deliveries")}
    with session_scope(stack.database_url) as session:
        stored = set(session.scalars(select(Delivery.delivery_id)))
        finished = session.scalar(
            select(func.count()).where(
                Delivery.status.in_([DeliveryStatus.DONE, DeliveryStatus.IGNORED])
            )
        )
        failed = session.scalar(
            select(func.count()).where(Delivery.status == DeliveryStatus.FAILED)
        )
    found = tickets(stack)
    wanted = {(spec, f"T-{n}") for spec, total in expected.items() for n in range(1, total + 1)}
    return {
        "deliveries received": len(stored),
        "deliveries processed": finished or 0,
        "deliveries lost": len(sent - stored) + (len(stored) - (finished or 0)),
        "deliveries failed": failed or 0,
        "duplicate issues": sum(n - 1 for n in found.values() if n > 1),
        "tasks without an issue": len(wanted - set(found)),
        "GitHub faults answered": sum(
            1 for r in stack.state()["requests"] if r["status"] in (403, 502)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=60)
    parser.add_argument("--fault-seconds", type=float, default=60)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as workdir:
        results = run(args.tasks, args.fault_seconds, Path(workdir))
    for name, value in results.items():
        print(f"{name}: {value}")
    print(f"({time.monotonic() - started:.0f} s in all)")
    must_be_zero = ("deliveries lost", "deliveries failed", "duplicate issues")
    bad = [name for name in (*must_be_zero, "tasks without an issue") if results[name]]
    if bad:
        print("FAILED: " + ", ".join(bad))
        sys.exit(1)


if __name__ == "__main__":
    main()
