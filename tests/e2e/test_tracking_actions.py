"""The tracking issue acts: ticking "retry every failed task" retries exactly the failed
ones, once; a reader's tick is undone with a reply; pausing holds new runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from storage.db import session_scope
from storage.models import Task, TaskStatus, Ticket
from tests.e2e.conftest import StartStack
from tests.e2e.harness import Stack, wait_until

pytestmark = pytest.mark.e2e

REPO = "acme/rocket"
PROFILES = """\
default:
  command: echo done > "work-$SPECBRIDGE_ISSUE.txt"
  timeout: 60
failing:
  command: echo "the model gave up"; exit 3
  timeout: 60
"""
SPEC = textwrap.dedent("""\
    title: Rocket
    phase: tasks
    tasks:
      - {id: T-1, title: Build the engine}
      - {id: T-2, title: Fuel it, agent: failing}
      - {id: T-3, title: Paint it, agent: failing}
    """)
RETRY = "- [ ] <!-- specbridge-action: retry-failed -->"


def _start(start_stack: StartStack, tmp_path: Path, workspaces: Path) -> Stack:
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(PROFILES)
    stack = start_stack(SPECBRIDGE_AGENTS=str(profiles), TMPDIR=str(workspaces))
    stack.create_repo(
        {"README.md": "rocket\n", ".github/specbridge.yml": "project: {owner: acme, number: 1}\n"},
        collaborators={"maintainer": "write", "reader": "read"},
    )
    stack.commit(REPO, {"specs/rocket.yaml": SPEC})
    stack.settle(timeout=180)
    return stack


def _runs(stack: Stack) -> dict[str, list[TaskStatus]]:
    with session_scope(stack.database_url) as session:
        rows = session.execute(
            select(Ticket.issue_number, Task.status).join(Task.ticket).order_by(Task.id)
        )
        titles = {i["number"]: i["title"][:3] for i in stack.issues(REPO)}
        found: dict[str, list[TaskStatus]] = {}
        for number, status in rows:
            found.setdefault(titles[number], []).append(status)
        return found


def _body_with(stack: Stack, text: str) -> str:
    """The tracking issue's body once it shows `text` (it is written a few seconds after
    a change, once for a burst of them)."""
    number = stack.issue_titled(REPO, "Spec: Rocket")["number"]

    def shown() -> str | None:
        body = stack.issue(REPO, number)["body"]
        return body if text in body else None

    return wait_until(shown, 30, f"the tracking issue to show {text!r}")


def _tick(stack: Stack, user: str, body: str) -> None:
    """Edit the tracking issue as `user`; wait until specbridge wrote it again, unticked
    (a few seconds after, once for a burst of changes)."""
    tracking = stack.issue_titled(REPO, "Spec: Rocket")["number"]
    stack.admin("POST", f"repos/{REPO}/issues/{tracking}/edit", user=user, body=body)
    stack.settle(timeout=180)
    if "[x] <!-- specbridge-action" in body:
        wait_until(
            lambda: "[x] <!-- specbridge-action" not in stack.issue(REPO, tracking)["body"],
            30,
            "the tracking issue written again",
        )
        stack.settle(timeout=180)


def test_ticking_retry_all_failed_retries_exactly_the_failed_ones_once(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    stack = _start(start_stack, tmp_path, workspaces)
    failed, succeeded = TaskStatus.FAILED, TaskStatus.SUCCEEDED
    assert _runs(stack) == {"T-1": [succeeded], "T-2": [failed], "T-3": [failed]}
    tracking = stack.issue_titled(REPO, "Spec: Rocket")
    body = _body_with(stack, f"{RETRY} Retry every failed task (2)")

    _tick(stack, "reader", body.replace(RETRY, RETRY.replace("[ ]", "[x]")))

    assert _runs(stack) == {"T-1": [succeeded], "T-2": [failed], "T-3": [failed]}
    reply = stack.comments(REPO, tracking["number"])[-1]["body"]
    assert "@reader ticked 'retry every failed task'" in reply and "has read access" in reply
    body = stack.issue(REPO, tracking["number"])["body"]
    assert f"{RETRY} Retry every failed task (2)" in body  # unticked again

    _tick(stack, "maintainer", body.replace(RETRY, RETRY.replace("[ ]", "[x]")))
    rewritten = stack.issue(REPO, tracking["number"])["body"]
    assert "<!-- specbridge-action: retry-failed --> Retry" in rewritten
    assert "[x] <!-- specbridge-action" not in rewritten  # written again, unticked
    _tick(stack, "maintainer", rewritten + "\n\nEdited back, with a note of my own.")

    assert _runs(stack) == {
        "T-1": [succeeded],
        "T-2": [failed, failed],
        "T-3": [failed, failed],
    }
    said = [c["body"] for c in stack.comments(REPO, tracking["number"])]
    assert sum("@maintainer: retried 2 failed task(s)." in s for s in said) == 1
    assert stack.mismatches() == []


def test_pausing_holds_new_runs_until_resumed(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    stack = _start(start_stack, tmp_path, workspaces)
    tracking = stack.issue_titled(REPO, "Spec: Rocket")
    pause = "- [ ] <!-- specbridge-action: pause -->"
    body = _body_with(stack, f"{RETRY} Retry every failed task (2)")
    _tick(stack, "maintainer", body.replace(pause, pause.replace("[ ]", "[x]")))
    body = _body_with(stack, "Resume this spec: **paused**")

    _tick(stack, "maintainer", body.replace(RETRY, RETRY.replace("[ ]", "[x]")))

    assert _runs(stack)["T-2"] == [TaskStatus.FAILED]  # paused: nothing starts
    said = stack.comments(REPO, tracking["number"])[-1]["body"]
    assert "Nothing is queued: its spec is paused" in said
    resume = "- [ ] <!-- specbridge-action: resume -->"
    body = stack.issue(REPO, tracking["number"])["body"]
    _tick(stack, "maintainer", body.replace(resume, resume.replace("[ ]", "[x]")))
    body = _body_with(stack, "<!-- specbridge-action: pause --> Pause this spec")
    _tick(stack, "maintainer", body.replace(RETRY, RETRY.replace("[ ]", "[x]")))

    assert _runs(stack)["T-2"] == [TaskStatus.FAILED, TaskStatus.FAILED]
    assert _runs(stack)["T-3"] == [TaskStatus.FAILED, TaskStatus.FAILED]
