"""Nothing pushed while the bot was away is lost: deliveries GitHub failed to make
are redelivered, a head that moved without a delivery is synced, and deliveries
the database could not store wait in the spool until it is back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from bot.events.spool import drain_spool
from bot.settings import load_settings
from storage.db import session_scope
from storage.models import Delivery, Spec, SpecStatus, Task, TaskStatus
from tests.e2e.conftest import StartStack
from tests.e2e.harness import Stack, wait_until
from tests.support import WEBHOOK_SECRET

# Processes killed, Redis restarted, PostgreSQL taken away: minutes of the slowest
# end-to-end runs, run when asked and always by .ci/run (tests/conftest.py).
pytestmark = [pytest.mark.e2e, pytest.mark.heavy]

REPO = "acme/rocket"
# Chores every 2 s, the GitHub-reading ones as often as they come.
QUICK = {"SPECBRIDGE_HEARTBEAT_SECONDS": "1"}


def _spec(key: str, tasks: int = 2) -> str:
    lines = [f"id: {key}", f"title: {key.upper()}", "phase: tasks", "tasks:"]
    lines += [
        f"  - {{id: {key.upper()}-{n}, title: Task {n}, files: [{key}/{n}.txt]}}"
        for n in range(1, tasks + 1)
    ]
    return "\n".join(lines) + "\n"


def _task_issues(stack: Stack) -> set[str]:
    return {i["title"].split(":")[0] for i in stack.issues(REPO) if "-" in i["title"]}


def _deliveries(stack: Stack, guids: list[str]) -> list[dict]:  # type: ignore[type-arg]
    by_guid = {d["id"]: d for d in stack.admin("GET", "deliveries")}
    return [by_guid[guid] for guid in guids]


def _wait_for_tasks(stack: Stack, expected: set[str], what: str) -> None:
    try:
        wait_until(lambda: expected <= _task_issues(stack), 120, what)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{stack.logs()}") from None


def test_pushes_github_could_not_deliver_are_redelivered_and_synced(
    start_stack: StartStack,
) -> None:
    """The web process is down: GitHub's attempts fail and it never tries again by
    itself. Once the bot is back, it asks GitHub to redeliver them."""
    stack = start_stack(
        **QUICK, SPECBRIDGE_REDELIVER_SECONDS="2", SPECBRIDGE_HEAD_CHECK_SECONDS="0"
    )
    stack.create_repo({"README.md": "rocket\n"})
    stack.settle()

    stack.kill("serve")
    pushes = [stack.commit(REPO, {f"specs/{key}.yaml": _spec(key)}) for key in ("a", "b", "c")]
    stack.admin("POST", "wait")
    guids = [push["delivery_id"] for push in pushes]
    assert all(str(d["status"]).startswith("failed") for d in _deliveries(stack, guids))

    stack.restart("serve")
    _wait_for_tasks(stack, {"A-1", "A-2", "B-1", "B-2", "C-1", "C-2"}, "every spec synced")
    stack.settle()

    for delivery in _deliveries(stack, guids):
        assert delivery["status"] == 202 and len(delivery["attempts"]) >= 2
    tracking = [i["title"] for i in stack.issues(REPO) if i["title"].startswith("Spec:")]
    assert sorted(tracking) == ["Spec: A", "Spec: B", "Spec: C"]
    assert stack.mismatches() == []


def test_a_head_that_moved_without_a_delivery_is_synced(start_stack: StartStack) -> None:
    """Older than GitHub keeps deliveries, a lost push cannot be redelivered (here:
    redelivery is off): the head check finds the head moved, syncs the new spec
    and cancels the one whose file was deleted."""
    stack = start_stack(
        **QUICK, SPECBRIDGE_REDELIVER_SECONDS="0", SPECBRIDGE_HEAD_CHECK_SECONDS="2"
    )
    stack.create_repo({"README.md": "rocket\n"})
    stack.commit(REPO, {"specs/old.yaml": _spec("old")})
    _wait_for_tasks(stack, {"OLD-1", "OLD-2"}, "the first spec synced")
    stack.settle()

    stack.kill("serve")
    stack.commit(REPO, {"specs/new.yaml": _spec("new")})
    stack.commit(REPO, {"specs/old.yaml": None})
    stack.admin("POST", "wait")
    stack.restart("serve")

    _wait_for_tasks(stack, {"NEW-1", "NEW-2"}, "the spec pushed while away synced")

    def old_cancelled() -> bool:
        with session_scope(stack.database_url) as session:
            status = session.scalar(select(Spec.status).where(Spec.key == "old"))
        return status is SpecStatus.CANCELLED

    wait_until(old_cancelled, 60, "the deleted spec cancelled")
    stack.settle()
    old_issues = [i for i in stack.issues(REPO) if i["title"].startswith("OLD-")]
    assert old_issues and all(i["state"] == "closed" for i in old_issues)
    assert stack.mismatches() == []


@contextmanager
def _database_refusing_connections(database_url: str) -> Iterator[None]:
    """PostgreSQL away for this test's own database only: new connections are
    refused and the open ones are cut, as when the server goes down."""
    url = make_url(database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = url.database
    with admin.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        connection.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
            {"name": name},
        )
    try:
        yield
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()


def test_pushes_while_postgresql_is_away_are_spooled_then_synced(
    start_stack: StartStack,
) -> None:
    stack = start_stack(
        **QUICK, SPECBRIDGE_REDELIVER_SECONDS="0", SPECBRIDGE_HEAD_CHECK_SECONDS="0"
    )
    if not stack.database_url.startswith("postgresql"):
        pytest.skip("takes a PostgreSQL database away (DATABASE_URL is not PostgreSQL)")
    stack.create_repo({"README.md": "rocket\n"})
    stack.settle()

    with _database_refusing_connections(stack.database_url):
        pushes = [stack.commit(REPO, {f"specs/{key}.yaml": _spec(key)}) for key in ("a", "b", "c")]
        stack.admin("POST", "wait")
        guids = [push["delivery_id"] for push in pushes]
        # Acknowledged though not stored: GitHub does not send them again by itself.
        assert [d["status"] for d in _deliveries(stack, guids)] == [202, 202, 202]

    _wait_for_tasks(stack, {"A-1", "A-2", "B-1", "B-2", "C-1", "C-2"}, "every spec synced")
    stack.settle()
    assert all(len(d["attempts"]) == 1 for d in _deliveries(stack, guids))  # none redelivered
    assert stack.mismatches() == []


def test_a_paced_sync_ends_after_its_workers_are_killed_and_redis_restarts_empty(
    start_stack: StartStack,
) -> None:
    """A sync paused for GitHub's content budget comes back by itself: its continuation
    is a delayed job, moved to its queue by whichever worker lives, not by RQ's
    scheduler, whose lock a killed worker keeps for 61 s and another worker tries to
    take only at its start and every 10 minutes. Redis restarted empty, the paused
    spec is queued again by the chores."""
    stack = start_stack(own_redis=True, GITHUB_CONTENT_LIMITS="20/4,1000/3600", **QUICK)
    stack.admin("POST", "limits", time_scale=0.1)
    stack.create_repo({"README.md": "rocket\n"})
    stack.commit(REPO, {"specs/big.yaml": _spec("big", 60)})
    expected = {f"BIG-{n}" for n in range(1, 61)}

    def paused_midway() -> int:
        with session_scope(stack.database_url) as session:
            paused = session.scalar(select(Spec.resume_at).where(Spec.key == "big"))
        made = len(_task_issues(stack))
        return made if paused is not None and 0 < made < 60 else 0

    made = wait_until(paused_midway, 90, "the sync paused for the content budget")
    for worker in ("worker1", "worker2"):
        stack.kill(worker)
    for worker in ("worker1", "worker2"):
        stack.restart(worker)
    wait_until(lambda: len(_task_issues(stack)) > made, 90, "the sync to go on")

    stack.kill("redis")  # the continuations queued so far are gone with it
    stack.start_redis()
    _wait_for_tasks(stack, expected, "every task's issue")
    stack.settle(timeout=120)

    titles = [i["title"].split(":")[0] for i in stack.issues(REPO) if i["title"].startswith("BIG-")]
    assert sorted(titles) == sorted(expected)  # each once
    assert [i["title"] for i in stack.issues(REPO) if i["title"].startswith("Spec:")] == [
        "Spec: BIG"
    ]
    assert stack.mismatches() == []


def test_pushes_spooled_while_postgresql_was_away_run_in_turn_behind_a_sync(
    start_stack: StartStack,
) -> None:
    """Finding 11 of issue 29, made deterministic. The spooled pushes reach the outbox at
    once when the database is back; one installation runs one sync at a time, so all
    but one find its slot taken and are put off a few seconds. Each retry is a delayed
    job of its own, run when due by whichever worker lives. Before, RQ deleted the retry
    with the job that queued it (same id), so every wait lasted until the periodic
    sweep, and a push could wait behind the installation's sync until someone pressed
    Redeliver. The chores (and their sweep) run here only at start: nothing but the
    retries themselves can bring the pushes in."""
    stack = start_stack(
        own_redis=True,
        SPECBRIDGE_HEARTBEAT_SECONDS="300",
        SPECBRIDGE_REDELIVER_SECONDS="0",
        SPECBRIDGE_HEAD_CHECK_SECONDS="0",
        GITHUB_WRITE_INTERVAL="0.5",
    )
    if not stack.database_url.startswith("postgresql"):
        pytest.skip("takes a PostgreSQL database away (DATABASE_URL is not PostgreSQL)")
    stack.create_repo({"README.md": "rocket\n"})
    stack.settle()

    with _database_refusing_connections(stack.database_url):
        specs = {"big": 30, "a": 2, "b": 2, "c": 2}
        for key, tasks in specs.items():
            stack.commit(REPO, {f"specs/{key}.yaml": _spec(key, tasks)})
        stack.admin("POST", "wait")
    # The database is back: the spool is drained, as the chores (or `serve`) do.
    settings = load_settings(
        {
            "DATABASE_URL": stack.database_url,
            "REDIS_URL": stack.redis_url or "",
            "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
    )
    assert drain_spool(settings) >= len(specs)  # the pushes, and the check suites of their commits

    expected = {f"{key.upper()}-{n}" for key, tasks in specs.items() for n in range(1, tasks + 1)}
    _wait_for_tasks(stack, expected, "every spec pushed while the database was away")
    with session_scope(stack.database_url) as session:
        waited = session.scalars(select(Delivery.error).where(Delivery.event == "push")).all()
    assert any("bulk job" in (error or "") for error in waited)  # some did wait their turn


# An agent that takes a few seconds, so tasks wait in the queue behind it.
STEADY = """\
default:
  command: sleep 3; cp "$SPECBRIDGE_TASK_FILE" "task-$SPECBRIDGE_ISSUE.md"
  timeout: 60
"""


def _task_statuses(stack: Stack) -> list[TaskStatus]:
    with session_scope(stack.database_url) as session:
        return list(session.scalars(select(Task.status).order_by(Task.id)))


@pytest.mark.parametrize("lost", ["serve killed, embedded", "redis restarted empty"])
def test_queued_agent_tasks_whose_jobs_are_lost_run_all_the_same(
    start_stack: StartStack, tmp_path: Path, workspaces: Path, lost: str
) -> None:
    """Four tasks, one or two running and the others queued (or, with Redis, waiting for
    one of the workers' two agent slots): the embedded server SIGKILLed (its queue lives
    in its memory), or Redis restarted with nothing in it, the workers' registry with it.
    The Tasks still say queued: a chore queues their runs again, the workers count as
    slots again, and each task ends with its pull request."""
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(STEADY)
    embedded = lost.startswith("serve")
    stack = start_stack(
        embedded=embedded,
        own_redis=not embedded,
        SPECBRIDGE_AGENTS=str(profiles),
        TMPDIR=str(workspaces),
        **QUICK,
    )
    stack.create_repo({"README.md": "rocket\n"})
    stack.commit(REPO, {"specs/jobs.yaml": _spec("jobs", 4)})
    not_started = (TaskStatus.QUEUED, TaskStatus.WAITING)
    wait_until(
        lambda: (
            sum(status in not_started for status in _task_statuses(stack)) >= 2
            and TaskStatus.RUNNING in _task_statuses(stack)
        ),
        120,
        "tasks running and queued",
    )
    if embedded:
        stack.kill("serve")
        stack.restart("serve")
    else:
        stack.kill("redis")
        stack.start_redis()

    try:
        wait_until(
            lambda: _task_statuses(stack) == [TaskStatus.SUCCEEDED] * 4, 180, "every task run"
        )
    except AssertionError as error:
        raise AssertionError(f"{error}\n{stack.logs()}") from None
    stack.settle()
    heads = sorted(p["head"]["ref"] for p in stack.repo_state(REPO)["pull_requests"])
    assert heads == [f"specbridge/jobs/JOBS-{n}" for n in range(1, 5)]
