"""What a new ticket costs: GitHub write requests per ticket, and the time to
sync a spec of 200 tasks, against the GitHub double.

    python bench/bench_bridge.py

Runs in-process on a temporary SQLite database with GITHUB_WRITE_INTERVAL=0;
on github.com the default pacing of one second between writes dominates, and
the write count is what predicts it.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections import Counter
from pathlib import Path

import requests

from bot.github import BoardGateway, RepositoryGateway, github_client
from bot.repo_config import RepoConfig
from bot.repositories import record_repository
from bot.settings import load_settings
from bot.sync import GitHubSide, sync_spec
from fakehub import FakeHub
from specs.load import load_spec
from storage.db import session_scope
from storage.migrate import upgrade


def spec_text(tasks: int) -> str:
    """Tasks in chains of ten: nine of every ten depend on the one before."""
    lines = ["id: big", "title: Big", "phase: tasks", "tasks:"]
    for n in range(tasks):
        depends = f"[TSK-{n - 1}]" if n % 10 else "[]"
        lines += [f"  - id: TSK-{n}", f"    title: Task {n}", f"    depends_on: {depends}"]
    return "\n".join(lines) + "\n"


def writes(hub: FakeHub) -> Counter[str]:
    """Write requests by kind: issues created, "blocked by" links, GraphQL batches, other."""
    kinds: Counter[str] = Counter()
    for r in requests.get(f"{hub.url}/_admin/state", timeout=60).json()["requests"]:
        if r["graphql"] == "mutation":
            kinds["graphql batches"] += 1
        elif r["method"] == "POST" and r["path"].endswith("/issues"):
            kinds["issues created"] += 1
        elif "dependencies/blocked_by" in r["path"] and r["method"] == "POST":
            kinds["blocked-by links"] += 1
        elif r["graphql"] is None and r["method"] != "GET":
            kinds["other"] += 1
    return kinds


def run(tasks: int) -> tuple[Counter[str], float]:
    root = Path(tempfile.mkdtemp())
    hub = FakeHub(None, "", root / "hub")
    hub.start()
    database_url = f"sqlite:///{root / 'bench.db'}"
    upgrade(database_url)
    settings = load_settings(
        {
            "DATABASE_URL": database_url,
            "GITHUB_API_URL": hub.url,
            "GITHUB_TOKEN": "t",
            "GITHUB_WRITE_INTERVAL": "0",
        }
    )
    requests.post(
        f"{hub.url}/_admin/repos",
        json={"owner": "acme", "name": "big", "project": {"number": 1}},
        timeout=60,
    ).raise_for_status()
    client = github_client(settings, None)
    github = GitHubSide(
        RepositoryGateway(client, "acme/big"),
        BoardGateway(client),
        RepoConfig(project_owner="acme", project_number=1),
    )
    text = spec_text(tasks)
    spec, _ = load_spec(text, "specs/big.yaml")
    assert spec is not None
    start = time.perf_counter()
    with session_scope(database_url) as session:
        repository = record_repository(session, {"full_name": "acme/big", "default_branch": "main"})
        sync_spec(
            session,
            settings,
            github,
            repository,
            spec,
            "c1",
            hashlib.sha256(text.encode()).hexdigest(),
        )
    elapsed = time.perf_counter() - start
    count = writes(hub)
    hub.stop()
    return count, elapsed


def main() -> None:
    small, small_time = run(10)
    big, big_time = run(200)
    total = sum(big.values())
    print(f"10-task spec: {sum(small.values())} write requests, {small_time:.2f} s")
    print(
        f"200-task spec: {total} write requests, {big_time:.2f} s "
        f"({big_time / 200 * 1000:.1f} ms per ticket)"
    )
    print("  by kind: " + ", ".join(f"{n} {kind}" for kind, n in sorted(big.items())))
    print(
        f"write requests per new ticket: {total / 200:.3f}; without dependencies "
        f"{(total - big['blocked-by links']) / 200:.3f}"
    )
    print(f"time ratio 200 vs 10 tasks: {big_time / small_time:.1f}x for 20x the tickets")
    print(f"at GitHub's pace of one write a second, the 200-task spec takes about {total} s")


if __name__ == "__main__":
    main()
