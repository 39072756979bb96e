"""Agents GitHub runs, end to end against the double: the bot hands a ready task
over (a label, or Copilot assigned with a person's token), follows the pull
request the agent opens, and takes the task back when it is cancelled or its
pull request is closed unmerged. The tests act as the hosted agent with the
double's admin routes."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from storage.db import session_scope
from storage.models import Task, TaskStatus, Ticket, TicketPhase
from tests.e2e.conftest import StartStack
from tests.e2e.harness import Stack

pytestmark = pytest.mark.e2e

REPO = "acme/rocket"
CONFIG = "project: {owner: acme, number: 1}\n"
PEOPLE = {"maintainer": "write"}
PROFILES = """\
fixer:
  github: {label: fix-me}
  timeout: 600
copilot:
  github: {assign: copilot, base: main, instructions: "Run the tests before you finish."}
  timeout: 600
"""
SPEC = textwrap.dedent("""\
    title: Rocket
    phase: tasks
    agent: fixer
    context: Rockets need engines.
    design: One engine, liquid fuel.
    requirements:
      - id: R-1
        text: THE SYSTEM SHALL fly.
        acceptance:
          - {id: AC-1, text: It leaves the ground.}
    tasks:
      - {id: T-A, title: Build the engine, requirements: [R-1], files: [engine/]}
      - {id: T-B, title: Fuel the engine, depends_on: [T-A], files: [fuel/]}
      - {id: T-C, title: Paint the hull, files: [hull/]}
    """)


def _start(start_stack: StartStack, tmp_path: Path, **options: Any) -> Stack:
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(PROFILES)
    stack = start_stack(SPECBRIDGE_AGENTS=str(profiles))
    stack.create_repo({".github/specbridge.yml": CONFIG}, collaborators=PEOPLE, **options)
    return stack


def _numbers(stack: Stack) -> dict[str, int]:
    return {i["title"].split(":")[0]: i["number"] for i in stack.issues(REPO)}


def _tasks(stack: Stack, number: int) -> list[TaskStatus]:
    with session_scope(stack.database_url) as session:
        query = select(Task.status).join(Task.ticket).where(Ticket.issue_number == number)
        return list(session.scalars(query.order_by(Task.id)))


def _labels(stack: Stack, number: int) -> list[str]:
    return list(_issue(stack, number)["labels"])


def _assignees(stack: Stack, number: int) -> list[str]:
    return list(_issue(stack, number)["assignees"])


def _phase(stack: Stack, number: int) -> TicketPhase:
    with session_scope(stack.database_url) as session:
        return session.scalars(select(Ticket.phase).where(Ticket.issue_number == number)).one()


def _issue(stack: Stack, number: int) -> dict[str, Any]:
    return stack.issue(REPO, number)


def _say(stack: Stack, number: int, body: str) -> None:
    stack.admin(
        "POST",
        f"repos/{REPO}/issues/{number}/comments",
        user="maintainer",
        body=body,
        author_association="COLLABORATOR",
    )


def _open_pull(stack: Stack, number: int, user: str, draft: bool) -> int:
    """The hosted agent pushes a branch and opens a pull request that fixes the issue."""
    branch = f"agent/fix-{number}"
    stack.admin(
        "POST",
        f"repos/{REPO}/commits",
        branch=branch,
        files={f"fix-{number}.txt": "fixed\n"},
        message=f"Fix #{number}",
        user=user,
    )
    pull = stack.admin(
        "POST",
        f"repos/{REPO}/pulls",
        head=branch,
        base="main",
        title=f"Fix #{number}",
        body=f"Does what the issue asks.\n\nFixes #{number}",
        draft=draft,
        user=user,
    )
    return pull["number"]


def test_a_label_profile_hands_over_ready_tasks_and_follows_their_pull_requests(
    start_stack: StartStack, tmp_path: Path
) -> None:
    stack = _start(start_stack, tmp_path)
    stack.commit(REPO, {"specs/rocket.yaml": SPEC})
    stack.settle()
    numbers = _numbers(stack)
    a, b, c = numbers["T-A"], numbers["T-B"], numbers["T-C"]

    # Ready tasks get the label, and only they: T-B waits for T-A.
    assert "fix-me" in _labels(stack, a) and "fix-me" in _labels(stack, c)
    assert "fix-me" not in _labels(stack, b)
    assert _tasks(stack, a) == _tasks(stack, c) == [TaskStatus.RUNNING]
    assert _tasks(stack, b) == []
    assert stack.board(REPO)[a] == "Analyzing"
    # The issue carries what a local agent's prompt has: requirements, criteria, context.
    body = _issue(stack, a)["body"]
    assert "THE SYSTEM SHALL fly." in body and "It leaves the ground." in body
    assert "Rockets need engines." in body and "One engine, liquid fuel." in body
    assert f"#{a} `T-A`" in _issue(stack, b)["body"]

    # The hosted agent's draft → Building, ready → Testing, merged → Done.
    pull_a = _open_pull(stack, a, "openhands-agent", draft=True)
    stack.settle()
    assert stack.board(REPO)[a] == "Building"
    stack.admin("POST", f"repos/{REPO}/pulls/{pull_a}/ready", user="openhands-agent")
    stack.settle()
    assert stack.board(REPO)[a] == "Testing"
    stack.admin("POST", f"repos/{REPO}/pulls/{pull_a}/merge", user="maintainer")
    stack.settle()
    assert _issue(stack, a)["state"] == "closed"
    # Done as for any issue closed as completed: specbridge moves the card itself.
    assert stack.board_history(REPO, a) == ["Backlog", "Analyzing", "Building", "Testing", "Done"]
    assert _phase(stack, a) is TicketPhase.DONE
    assert _tasks(stack, a) == [TaskStatus.SUCCEEDED]

    # Its dependant is handed over once the dependency's pull request merged.
    assert "fix-me" in _labels(stack, b)
    assert _tasks(stack, b) == [TaskStatus.RUNNING]
    assert stack.board(REPO)[b] == "Analyzing"

    # A pull request closed unmerged: the card goes back, the label comes off, a comment.
    pull_c = _open_pull(stack, c, "openhands-agent", draft=False)
    stack.settle()
    assert stack.board(REPO)[c] == "Testing"
    stack.admin("POST", f"repos/{REPO}/pulls/{pull_c}/close", user="maintainer")
    stack.settle()
    # Failed: the card in the column before Building, the failure's label on the issue.
    assert stack.board(REPO)[c] == "Analyzing"
    assert "fix-me" not in _labels(stack, c)
    assert "specbridge: failed" in _labels(stack, c)
    assert _tasks(stack, c) == [TaskStatus.FAILED]
    said = stack.comments(REPO, c)[-1]["body"]
    assert f"#{pull_c} was closed without merging" in said and "`/retry`" in said

    # /cancel takes the label back.
    _say(stack, b, "/cancel")
    stack.settle()
    assert "fix-me" not in _labels(stack, b)
    assert _tasks(stack, b) == [TaskStatus.CANCELLED]
    assert stack.board(REPO)[b] == "Backlog"
    assert "the label `fix-me` is removed" in stack.comments(REPO, b)[-1]["body"]

    # /retry hands it over again; its card moved back to Backlog takes it back.
    _say(stack, c, "/retry")
    stack.settle()
    assert "fix-me" in _labels(stack, c)
    assert "specbridge: failed" not in _labels(stack, c)  # a new hand-over: no more failed
    assert _tasks(stack, c) == [TaskStatus.FAILED, TaskStatus.RUNNING]
    assert stack.board(REPO)[c] == "Analyzing"
    stack.admin(
        "POST", f"orgs/acme/projects/1/items/{c}/status", status="Backlog", user="maintainer"
    )
    stack.settle()
    assert "fix-me" not in _labels(stack, c)
    assert _tasks(stack, c) == [TaskStatus.FAILED, TaskStatus.CANCELLED]
    assert stack.mismatches() == []


def test_copilot_is_assigned_with_a_persons_token_and_refused_without_one(
    start_stack: StartStack, tmp_path: Path
) -> None:
    stack = _start(start_stack, tmp_path, copilot=True)
    spec = "title: Rocket\nphase: tasks\nagent: copilot\ntasks:\n  - {id: T-1, title: Fly}\n"
    stack.commit(REPO, {"specs/rocket.yaml": spec})
    stack.settle()
    [number] = [n for key, n in _numbers(stack).items() if key == "T-1"]

    # No person's token: refused, said on the issue, the task failed.
    assert _tasks(stack, number) == [TaskStatus.FAILED]
    said = stack.comments(REPO, number)[-1]["body"]
    assert "SPECBRIDGE_AGENT_USER_TOKEN" in said and "`/retry`" in said
    assert _assignees(stack, number) == []
    ready = requests.get(f"{stack.bot}/readyz", timeout=10).json()
    assert "SPECBRIDGE_AGENT_USER_TOKEN" in ready["warnings"]["agent_user_token"]

    # The operator sets a person's token; /retry assigns Copilot.
    token = stack.admin("POST", "tokens", user="maintainer")["token"]
    stack.extra_env["SPECBRIDGE_AGENT_USER_TOKEN"] = token
    for name in {*stack.job_runners(), "serve"}:
        stack.kill(name)
        stack.restart(name)
    _say(stack, number, "/retry")
    stack.settle()
    assert _tasks(stack, number) == [TaskStatus.FAILED, TaskStatus.RUNNING]
    assert _assignees(stack, number) == ["Copilot"]
    [assignment] = [a for a in stack.repo_state(REPO)["copilot_assignments"] if a["accepted"]]
    assert assignment["base_ref"] == "main" and assignment["assigned_by"] == "maintainer"
    assert assignment["custom_instructions"].startswith("Run the tests before you finish.")
    assert f"Fixes #{number}" in assignment["custom_instructions"]
    assert stack.board(REPO)[number] == "Analyzing"
    assert "warnings" not in requests.get(f"{stack.bot}/readyz", timeout=10).json()

    # Copilot opens its draft: Building. /cancel unassigns it.
    _open_pull(stack, number, "Copilot", draft=True)
    stack.settle()
    assert stack.board(REPO)[number] == "Building"
    _say(stack, number, "/cancel")
    stack.settle()
    assert _assignees(stack, number) == []
    assert _tasks(stack, number) == [TaskStatus.FAILED, TaskStatus.CANCELLED]
    assert "Copilot is unassigned" in stack.comments(REPO, number)[-1]["body"]
    assert stack.mismatches() == []
