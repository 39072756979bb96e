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
from pathlib import Path

import requests

from bot.github import BoardGateway, RepositoryGateway, github_client
from bot.repo_config import RepoConfig
from bot.repositories import record_repository
from bot.settings import load_settings
from bot.sync import GitHubSide, sync_spec
from specs.load import load_spec
from storage.db import session_scope
from storage.migrate import upgrade
from tests.fakehub import FakeHub


def spec_text(tasks: int) -> str:
    lines = ["id: big", "title: Big", "phase: tasks", "tasks:"]
    for n in range(tasks):
        depends = f"[TSK-{n - 1}]" if n % 10 else "[]"
        lines += [f"  - id: TSK-{n}", f"    title: Task {n}", f"    depends_on: {depends}"]
    return "\n".join(lines) + "\n"


def writes(hub: FakeHub) -> int:
    return requests.get(f"{hub.url}/_admin/state", timeout=60).json()["write_requests"]


def run(tasks: int) -> tuple[int, float]:
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
    before = writes(hub)
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
    count = writes(hub) - before
    hub.stop()
    return count, elapsed


def main() -> None:
    small_writes, small_time = run(10)
    big_writes, big_time = run(200)
    per_ticket_ms = big_time / 200 * 1000
    print(f"10-task spec: {small_writes} write requests, {small_time:.2f} s")
    print(
        f"200-task spec: {big_writes} write requests, {big_time:.2f} s "
        f"({per_ticket_ms:.1f} ms/ticket)"
    )
    print(
        f"write requests per new ticket: {big_writes / 200:.3f} (one issue each, plus the "
        "tracking issue and batched GraphQL for the board and sub-issues)"
    )
    print(f"time ratio 200 vs 10 tasks: {big_time / small_time:.1f}x for 20x the tickets")
    print(f"at GitHub's pace of one write a second, the 200-task spec takes about {big_writes} s")


if __name__ == "__main__":
    main()
