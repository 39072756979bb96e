"""A failed agent run is shown where people look: the card back in the column before
Building (or the column the settings name for failed tickets), the label
`specbridge: failed`, the tracking issue (counts, graph, list) and the status page
(counts, graph), with a reason a person can act on. `/retry`, or the card moved to
Building, runs it again, and the failure is taken back once the run starts."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from storage.db import session_scope
from storage.models import Task, TaskStatus
from tests.e2e.conftest import StartStack
from tests.e2e.harness import Stack, wait_until
from tests.support import SPECBRIDGE_COLUMNS

pytestmark = pytest.mark.e2e

REPO = "acme/rocket"
TOKEN = "status-page-token"
LABEL = "specbridge: failed"
# The agent's CLI is not installed on the worker: the shell says so (status 127).
MISSING_CLI = """\
default:
  command: claude -p "$(cat "$SPECBRIDGE_TASK_FILE")"
  timeout: 60
"""
GIVING_UP = """\
default:
  command: 'echo "error: the quota is spent" >&2; exit 3'
  timeout: 60
"""
WORKING = """\
default:
  command: cp "$SPECBRIDGE_TASK_FILE" "task-$SPECBRIDGE_ISSUE.md"
  test: test -s "task-$SPECBRIDGE_ISSUE.md"
  timeout: 60
"""
SPEC = textwrap.dedent("""\
    title: Rocket
    phase: tasks
    tasks:
      - {id: T-1, title: Build the engine}
      - {id: T-2, title: Fuel the engine, depends_on: [T-1]}
    """)


def _start(
    start_stack: StartStack,
    tmp_path: Path,
    workspaces: Path,
    profiles: str,
    config: str = "project: {owner: acme, number: 1}\n",
    columns: list[str] = SPECBRIDGE_COLUMNS,
) -> tuple[Stack, Path, dict[str, int]]:
    agents = tmp_path / "agents.yaml"
    agents.write_text(profiles)
    stack = start_stack(
        SPECBRIDGE_AGENTS=str(agents), TMPDIR=str(workspaces), SPECBRIDGE_STATUS_TOKEN=TOKEN
    )
    stack.create_repo(
        {"README.md": "rocket\n", ".github/specbridge.yml": config},
        collaborators={"maintainer": "write"},
        status_options=columns,
    )
    stack.commit(REPO, {"specs/rocket.yaml": SPEC})
    stack.settle()
    numbers = {i["title"][:3]: i["number"] for i in stack.issues(REPO) if i["title"][:2] == "T-"}
    return stack, agents, numbers


def _statuses(stack: Stack) -> list[TaskStatus]:
    with session_scope(stack.database_url) as session:
        return list(session.scalars(select(Task.status).order_by(Task.id)))


def _labels(stack: Stack, number: int) -> list[str]:
    return stack.issue(REPO, number)["labels"]


def _tracking(stack: Stack) -> str:
    return stack.issue_titled(REPO, "Spec: Rocket")["body"]


def _say(stack: Stack, number: int, body: str) -> None:
    stack.admin(
        "POST",
        f"repos/{REPO}/issues/{number}/comments",
        user="maintainer",
        body=body,
        author_association="COLLABORATOR",
    )
    stack.settle()


def _status_page(stack: Stack) -> str:
    page = requests.get(f"{stack.bot}/", auth=("ops", TOKEN), timeout=30)
    page.raise_for_status()
    return page.text


def test_a_run_that_fails_shows_failed_on_card_label_tracking_issue_and_status_page(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    stack, agents, numbers = _start(start_stack, tmp_path, workspaces, MISSING_CLI)
    one, two = numbers["T-1"], numbers["T-2"]
    assert _statuses(stack) == [TaskStatus.FAILED]

    # The card: back in the column before Building; the label on the issue.
    assert stack.board_history(REPO, one) == ["Backlog", "Analyzing", "Building", "Analyzing"]
    assert stack.board(REPO)[two] == "Backlog"
    assert _labels(stack, one) == ["specbridge", "priority: medium", LABEL]
    # The reason a person can act on, not only a status.
    said = stack.comments(REPO, one)[-1]["body"]
    assert "claude: not found" in said and "`/retry`" in said

    # The tracking issue counts it apart, lists why, and draws it failed (rewritten a
    # few seconds after the change, once for a burst of them).
    wait_until(lambda: "failed 1" in _tracking(stack), 30, "the tracking issue")
    body = _tracking(stack)
    assert "Open by phase: backlog 1, **failed 1**" in body
    assert f"### Failed\n\n- #{one}: claude: not found (the command exited with status 127" in body
    assert re.search(rf'^  t{one}\[".*✗ failed"\]:::failed$', body, re.MULTILINE), body
    assert f"- [ ] #{one} T-1 (failed)" in body

    # The status page: counted as failed, drawn failed, the task's reason in its table.
    page = _status_page(stack)
    assert re.search(r'data-phase="failed">1<', page), page
    assert re.search(rf'data-issue="{one}"[^>]*data-style="failed"', page), page
    assert "claude: not found" in page

    # /status on the issue says so too.
    _say(stack, one, "/status")
    assert "- **failed**: claude: not found" in stack.comments(REPO, one)[-1]["body"]

    # The agent installed, /retry runs it again: the failure goes, everywhere.
    agents.write_text(WORKING)
    _say(stack, one, "/retry")
    assert _statuses(stack) == [TaskStatus.FAILED, TaskStatus.SUCCEEDED]
    assert LABEL not in _labels(stack, one)
    assert stack.board(REPO)[one] == "Testing"
    wait_until(lambda: "### Failed" not in _tracking(stack), 30, "the tracking issue")
    assert "failed" not in _tracking(stack).replace("classDef failed", "")
    assert not re.search(r'data-phase="failed">[1-9]', _status_page(stack))
    assert stack.mismatches() == []


def test_a_column_named_for_failed_tickets_holds_them_and_a_move_to_building_runs_again(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    config = "project: {owner: acme, number: 1}\nstatus: {failed: Blocked}\n"
    columns = ["Backlog", "Analyzing", "Building", "Testing", "Blocked", "Done"]
    stack, agents, numbers = _start(start_stack, tmp_path, workspaces, GIVING_UP, config, columns)
    one = numbers["T-1"]
    assert stack.board(REPO)[one] == "Blocked"
    assert LABEL in _labels(stack, one)
    said = stack.comments(REPO, one)[-1]["body"]
    assert "the command exited with status 3: error: the quota is spent" in said

    # A person moving the card on within Blocked's neighbours changes nothing; to
    # Building, it runs again (the settings are fixed meanwhile).
    agents.write_text(WORKING)
    stack.admin(
        "POST", f"orgs/acme/projects/1/items/{one}/status", status="Building", user="maintainer"
    )
    stack.settle()
    assert _statuses(stack) == [TaskStatus.FAILED, TaskStatus.SUCCEEDED]
    assert stack.board(REPO)[one] == "Testing"
    assert LABEL not in _labels(stack, one)
    wait_until(lambda: "### Failed" not in _tracking(stack), 30, "the tracking issue")
    assert stack.mismatches() == []
