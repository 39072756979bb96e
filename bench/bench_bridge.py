"""What people wait for: GitHub writes per new ticket, time to the board and to
the first agent, an unchanged re-sync, and a closed issue in a big spec.

    python -m bench.bench_bridge

Runs in-process against the GitHub double on a temporary SQLite database.
On github.com the pace dominates (about one write a second, 80 new items a
minute): write counts and the pace predict the time, so the benchmark runs
at a tenth of GitHub's pace and reports both.
"""

from __future__ import annotations

import hashlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import event, select

from bot.agents import scheduler
from bot.events import handlers
from bot.events.router import Event, router
from bot.github import BoardGateway, RepositoryGateway, github_client
from bot.github.issues import IssueWriter
from bot.repo_config import RepoConfig
from bot.repositories import record_repository
from bot.settings import Settings, load_settings
from bot.steer import tickets as tickets_module
from bot.sync import GitHubSide, sync_spec
from fakehub import FakeHub
from specs.load import load_spec
from storage.db import get_engine, session_scope
from storage.migrate import upgrade
from storage.models import Ticket

COLUMNS = ["Backlog", "Analyzing", "Building", "Testing", "Done"]
# A tenth of GitHub's pace: a write every 0.1 s, 80 new items every 6 s, 500 every 6 min.
SCALED_PACE = {"GITHUB_WRITE_INTERVAL": "0.1", "GITHUB_CONTENT_LIMITS": "80/6,500/360"}
NO_PACE = {"GITHUB_WRITE_INTERVAL": "0", "GITHUB_CONTENT_LIMITS": "none"}


def spec_text(tasks: int) -> str:
    """Tasks in chains of ten: nine of every ten depend on the one before (180 edges for 200)."""
    lines = ["id: big", "title: Big", "phase: tasks", "tasks:"]
    for n in range(tasks):
        depends = f"[TSK-{n - 1}]" if n % 10 else "[]"
        lines += [f"  - id: TSK-{n}", f"    title: Task {n}", f"    depends_on: {depends}"]
    return "\n".join(lines) + "\n"


@contextmanager
def double(pace: dict[str, str], agents: Path | None = None) -> Iterator[tuple[FakeHub, Settings]]:
    root = Path(tempfile.mkdtemp())
    hub = FakeHub(None, "", root / "hub")
    hub.start()
    database_url = f"sqlite:///{root / 'bench.db'}"
    upgrade(database_url)
    environ = {"DATABASE_URL": database_url, "GITHUB_API_URL": hub.url, "GITHUB_TOKEN": "t"}
    if agents is not None:
        environ["SPECBRIDGE_AGENTS"] = str(agents)
    settings = load_settings({**environ, **pace})
    if pace is NO_PACE:  # counting requests, not waiting for GitHub's budgets
        hub.limits.update(
            {
                "content_per_minute": 10**6,
                "content_per_hour": 10**6,
                "rest_points_per_minute": 10**6,
                "graphql_points_per_minute": 10**6,
            }
        )
    else:
        hub.limits.update({"time_scale": 0.1})
    requests.post(
        f"{hub.url}/_admin/repos",
        json={"owner": "acme", "name": "big", "project": {"number": 1}, "status_options": COLUMNS},
        timeout=60,
    ).raise_for_status()
    try:
        yield hub, settings
    finally:
        hub.stop()


def side(settings: Settings) -> GitHubSide:
    connection = github_client(settings, None)
    return GitHubSide(
        RepositoryGateway(connection, "acme/big"),
        BoardGateway(connection),
        RepoConfig(project_owner="acme", project_number=1),
    )


def sync(settings: Settings, text: str) -> float:
    spec, _ = load_spec(text, "specs/big.yaml")
    assert spec is not None
    start = time.perf_counter()
    with session_scope(settings.database_url) as session:
        repository = record_repository(session, {"full_name": "acme/big", "default_branch": "main"})
        sync_spec(
            session,
            settings,
            side(settings),
            repository,
            spec,
            "c1",
            hashlib.sha256(text.encode()).hexdigest(),
        )
    return time.perf_counter() - start


def summary(hub: FakeHub) -> dict[str, Any]:
    return requests.get(f"{hub.url}/_admin/requests/summary", timeout=60).json()


def reset(hub: FakeHub) -> None:
    requests.post(f"{hub.url}/_admin/reset", timeout=60).raise_for_status()


def batched(tasks: int) -> None:
    profiles = Path(tempfile.mkdtemp()) / "agents.yaml"
    profiles.write_text("default:\n  command: 'true'\n")
    first_agent: list[tuple[float, int]] = []
    queued = scheduler.enqueue_task

    def record_first(settings, task_id, agent):  # type: ignore[no-untyped-def]
        # The agent's job is queued: it starts now. How long, and after how many writes?
        first_agent.append((time.perf_counter(), github_client(settings, None).writes))

    scheduler.enqueue_task = record_first  # type: ignore[assignment]
    try:
        with double(SCALED_PACE, profiles) as (hub, settings):
            start = time.perf_counter()
            elapsed = sync(settings, spec_text(tasks))
            counts = summary(hub)
            reset(hub)
            again = sync(settings, spec_text(tasks))
            unchanged = summary(hub)
    finally:
        scheduler.enqueue_task = queued  # type: ignore[assignment]
    writes = counts["write_requests"]
    mutations = sum(counts["mutations"].values())
    print(f"batched sync of {tasks} tasks with {tasks * 9 // 10} dependencies:")
    print(f"  {writes} write requests ({writes / tasks:.3f} per ticket), {mutations} mutations")
    print("  mutations: " + ", ".join(f"{n} {k}" for k, n in sorted(counts["mutations"].items())))
    print(f"  on the board after {elapsed:.1f} s at a tenth of GitHub's pace")
    if first_agent:
        at, writes_before = first_agent[0]
        print(
            f"  first agent queued {at - start:.1f} s after the sync began, after "
            f"{writes_before} write requests (about {writes_before} s at GitHub's pace)"
        )
    print(f"  unchanged re-sync: {unchanged['write_requests']} writes, {again:.2f} s")


def naive(tasks: int) -> None:
    """The sequence a simple integration sends: one REST call per issue, link, card, edge."""
    with double(NO_PACE) as (hub, settings):
        connection = github_client(settings, None)
        repo = RepositoryGateway(connection, "acme/big")
        boards = BoardGateway(connection)
        board = boards.find_board("acme", 1)
        tracking = repo.create_issue("Spec: Big", "", ["specbridge"])
        created = []
        for n in range(tasks):
            issue = repo.create_issue(f"TSK-{n}: Task {n}", "", ["specbridge"])
            created.append(issue)
            IssueWriter(connection, "acme/big").add_sub_issues(
                [(str(n), tracking.node_id, issue.node_id, False)]
            )
            [item] = boards.add_to_board(board, [issue.node_id])
            boards.set_status(board, [item or ""], "Backlog")
            if n % 10:
                repo.add_blocked_by(issue.number, created[n - 1].id)
        writes = summary(hub)["write_requests"]
    per_ticket = writes / tasks
    print(
        f"naive sequence for {tasks} tasks: {writes} write requests ({per_ticket:.2f} per ticket)"
    )


def closing(tickets: int) -> tuple[float, int]:
    """Median time and SQL statements of the `issues` closed handler in a spec this big.

    The tracking issue's rewrite is a job of its own, queued once for a burst of
    closes: it is left out here, as the handler leaves it.
    """
    handlers.load()
    tickets_module.queue_tracking_refresh = lambda settings, spec_id: None  # type: ignore[assignment]
    with double(NO_PACE) as (hub, settings):
        sync(settings, spec_text(tickets))
        statements = [0]
        event.listen(
            get_engine(settings.database_url), "before_cursor_execute", _counter(statements)
        )
        with session_scope(settings.database_url) as session:
            numbers = session.scalars(select(Ticket.issue_number).order_by(Ticket.id)).all()
        times, counts = [], []
        for number in numbers[1:11]:
            requests.post(
                f"{hub.url}/_admin/repos/acme/big/issues/{number}/close", json={}, timeout=60
            ).raise_for_status()
            payload = {
                "action": "closed",
                "issue": {"number": number},
                "repository": {"full_name": "acme/big"},
            }
            statements[0] = 0
            start = time.perf_counter()
            with session_scope(settings.database_url) as session:
                router.dispatch(Event("issues", payload, "bench", settings, session))
            times.append(time.perf_counter() - start)
            counts.append(statements[0])
    return statistics.median(times), int(statistics.median(counts))


def _counter(statements: list[int]):  # type: ignore[no-untyped-def]
    def count(*_: object) -> None:
        statements[0] += 1

    return count


def main() -> None:
    batched(200)
    naive(200)
    small_time, small_sql = closing(10)
    big_time, big_sql = closing(1000)
    print(
        f"issues closed: {small_sql} statements, {small_time * 1000:.1f} ms with 10 tickets; "
        f"{big_sql} statements, {big_time * 1000:.1f} ms with 1,000 "
        f"(ratio {big_time / small_time:.2f})"
    )


if __name__ == "__main__":
    main()
