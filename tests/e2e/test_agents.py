"""Execution end to end: tasks queued when ready, worked by an agent in a
workspace, one pull request each; failures reported without leaking secrets."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from storage.db import session_scope
from storage.models import Task, TaskStatus, Ticket
from tests.e2e.conftest import StartStack
from tests.e2e.harness import Stack, wait_until
from tests.support import WEBHOOK_SECRET

pytestmark = pytest.mark.e2e

REPO = "acme/rocket"
CONFIG = "project:\n  owner: acme\n  number: 1\n"
PROFILES = """\
default:
  command: cp "$SPECBRIDGE_TASK_FILE" "task-$SPECBRIDGE_ISSUE.md"
  test: test -s "task-$SPECBRIDGE_ISSUE.md"
  timeout: 60
failing:
  command: echo "the model gave up"; exit 4
  timeout: 60
slow:
  command: sleep 60
  timeout: 2
steady:
  command: sleep 4; cp "$SPECBRIDGE_TASK_FILE" "task-$SPECBRIDGE_ISSUE.md"
  timeout: 60
snoop:
  command: env; cat /proc/$PPID/environ; echo "secret=$GITHUB_WEBHOOK_SECRET"; touch x; exit 1
  timeout: 60
"""


def _start(start_stack: StartStack, tmp_path: Path, workspaces: Path) -> tuple[Stack, Path]:
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(PROFILES)
    stack = start_stack(
        SPECBRIDGE_AGENTS=str(profiles), TMPDIR=str(workspaces), SPECBRIDGE_HEARTBEAT_SECONDS="1"
    )
    stack.create_repo({"README.md": "rocket\n", ".github/specbridge.yml": CONFIG})
    return stack, workspaces


def _ticket_numbers(stack: Stack) -> dict[str, int]:
    return {
        i["title"].split(":")[0]: i["number"]
        for i in stack.issues(REPO)
        if i["title"].startswith("T-")
    }


def _tasks(stack: Stack) -> dict[int, list[TaskStatus]]:
    with session_scope(stack.database_url) as session:
        rows = session.execute(
            select(Ticket.issue_number, Task.status).join(Task.ticket).order_by(Task.id)
        )
        found: dict[int, list[TaskStatus]] = {}
        for number, status in rows:
            found.setdefault(number, []).append(status)
        return found


def test_ready_tasks_run_and_dependants_wait_for_the_merge(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    stack, _ = _start(start_stack, tmp_path, workspaces)
    stack.commit(
        REPO,
        {
            "specs/rocket.yaml": textwrap.dedent("""\
        title: Rocket
        phase: tasks
        tasks:
          - {id: T-A, title: Build the engine}
          - {id: T-B, title: Fuel the engine, depends_on: [T-A]}
          - {id: T-C, title: Paint the hull}
        """)
        },
    )
    stack.settle()
    numbers = _ticket_numbers(stack)
    a, b, c = numbers["T-A"], numbers["T-B"], numbers["T-C"]
    assert _tasks(stack) == {a: [TaskStatus.SUCCEEDED], c: [TaskStatus.SUCCEEDED]}
    pulls = {p["head"]["ref"]: p for p in stack.repo_state(REPO)["pull_requests"]}
    assert sorted(pulls) == ["specbridge/rocket/T-A", "specbridge/rocket/T-C"]
    pull_a = pulls["specbridge/rocket/T-A"]
    assert pull_a["body"].startswith(f"Closes #{a}")
    assert stack.board_history(REPO, a) == ["Backlog", "Analyzing", "Building", "Testing"]
    assert f"#{pull_a['number']}" in stack.comments(REPO, a)[-1]["body"]

    stack.admin("POST", f"repos/{REPO}/pulls/{pull_a['number']}/merge")
    stack.settle()
    assert stack.issue(REPO, a)["state"] == "closed"
    assert _tasks(stack)[b] == [TaskStatus.SUCCEEDED]
    assert "specbridge/rocket/T-B" in {
        p["head"]["ref"] for p in stack.repo_state(REPO)["pull_requests"]
    }
    assert list(workspaces.glob("specbridge-task-*")) == []
    assert stack.mismatches() == []


def test_failures_are_reported_without_secrets_or_leftovers(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    stack, _ = _start(start_stack, tmp_path, workspaces)
    push = stack.commit(
        REPO,
        {
            "specs/typo.yaml": "title: Typo\nphase: tasks\nagent: defualt\n"
            "tasks: [{id: T-X, title: X}]\n",
            "specs/bad.yaml": textwrap.dedent("""\
        title: Bad agents
        phase: tasks
        tasks:
          - {id: T-FAIL, title: Give up, agent: failing}
          - {id: T-SLOW, title: Take forever, agent: slow}
          - {id: T-SNOOP, title: Read secrets, agent: snoop}
        """),
        },
    )
    stack.settle()
    numbers = _ticket_numbers(stack)
    assert "T-X" not in numbers
    [typo] = stack.commit_comments(REPO, push["sha"])
    assert "specs/typo.yaml:3:8` error[unknown-agent]" in typo["body"]
    assert _tasks(stack) == {n: [TaskStatus.FAILED] for n in numbers.values()}
    comments = {key: stack.comments(REPO, n)[-1]["body"] for key, n in numbers.items()}
    assert (
        "exited with status 4" in comments["T-FAIL"] and "the model gave up" in comments["T-FAIL"]
    )
    assert "longer than its 2s timeout" in comments["T-SLOW"]
    assert "exited with status 1" in comments["T-SNOOP"]
    assert all("/retry" in body for body in comments.values())
    everything = " ".join(c["body"] for n in numbers.values() for c in stack.comments(REPO, n))
    assert WEBHOOK_SECRET not in everything
    assert "PRIVATE KEY" not in everything
    with session_scope(stack.database_url) as session:
        everything += " ".join(t.log_tail or "" for t in session.scalars(select(Task)))
    assert "secret=" in everything  # it tried, and found nothing
    assert WEBHOOK_SECRET not in everything
    assert "ghs_" not in everything  # installation tokens
    assert stack.repo_state(REPO)["pull_requests"] == []
    assert list(workspaces.glob("specbridge-task-*")) == []
    assert stack.mismatches() == []


def test_a_task_whose_worker_dies_is_run_again(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    stack, _ = _start(start_stack, tmp_path, workspaces)
    stack.commit(
        REPO,
        {
            "specs/steady.yaml": "title: Steady\nphase: tasks\n"
            "tasks:\n  - {id: T-1, title: Take a while, agent: steady}\n"
        },
    )
    wait_until(
        lambda: list(_tasks(stack).values()) == [[TaskStatus.RUNNING]],
        60,
        "the task to run",
    )
    for name in stack.job_runners():
        stack.kill(name)
    for name in stack.job_runners():
        stack.restart(name)
    # Only the task is waited for: a delivery the dead worker had taken comes
    # back when RQ declares its job abandoned, after the job timeout.
    [number] = _ticket_numbers(stack).values()
    wait_until(
        lambda: _tasks(stack) == {number: [TaskStatus.SUCCEEDED]}, 120, "the task to succeed"
    )
    with session_scope(stack.database_url) as session:
        assert session.scalars(select(Task.attempts)).one() == 2
    pulls = stack.repo_state(REPO)["pull_requests"]
    assert [p["head"]["ref"] for p in pulls] == ["specbridge/steady/T-1"]
