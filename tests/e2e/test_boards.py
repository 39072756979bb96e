"""Any board, with no configuration: one made with GitHub's defaults shows the
work in its own columns, and a board that cannot be found is said where people
look while the issues are still created."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from storage.db import session_scope
from storage.models import Task, TaskStatus
from tests.e2e.conftest import StartStack
from tests.e2e.harness import Stack, wait_until

pytestmark = pytest.mark.e2e

REPO = "acme/rocket"
PROFILES = 'default:\n  command: cp "$SPECBRIDGE_TASK_FILE" task.md\n  timeout: 60\n'
SPEC = textwrap.dedent("""\
    title: Rocket
    phase: tasks
    tasks:
      - {id: T-A, title: Build the engine}
      - {id: T-B, title: Fuel the engine, depends_on: [T-A]}
    """)


def _repo_with_githubs_default_board(stack: Stack, config: str) -> None:
    """As `Stack.create_repo`, but the board keeps the Status options GitHub gives a new one."""
    stack.admin(
        "POST",
        "repos",
        owner="acme",
        name="rocket",
        default_branch="main",
        files={"README.md": "rocket\n", ".github/specbridge.yml": config},
        project={"number": 1},
    )


def _numbers(stack: Stack) -> dict[str, int]:
    issues = stack.issues(REPO)
    return {i["title"].split(":")[0]: i["number"] for i in issues if i["title"].startswith("T-")}


def test_on_a_board_with_githubs_default_columns_work_moves_to_in_progress(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(PROFILES)
    stack = start_stack(SPECBRIDGE_AGENTS=str(profiles), TMPDIR=str(workspaces))
    _repo_with_githubs_default_board(stack, "project:\n  owner: acme\n  number: 1\n")

    stack.commit(REPO, {"specs/rocket.yaml": SPEC})
    stack.settle()

    numbers = _numbers(stack)
    with session_scope(stack.database_url) as session:
        assert session.scalars(select(Task.status)).all() == [TaskStatus.SUCCEEDED]
    assert stack.board_history(REPO, numbers["T-A"]) == ["Todo", "In Progress"]
    assert stack.board(REPO)[numbers["T-B"]] == "Todo"  # waits for T-A's pull request
    assert stack.mismatches() == []


def test_a_board_that_cannot_be_found_is_said_on_the_tracking_issue(
    start_stack: StartStack,
) -> None:
    stack = start_stack()
    _repo_with_githubs_default_board(stack, "project:\n  owner: acme\n  number: 7\n")

    stack.commit(REPO, {"specs/rocket.yaml": SPEC})
    stack.settle()

    assert sorted(_numbers(stack)) == ["T-A", "T-B"]  # issues are created all the same
    tracking = wait_until(
        lambda: next((i for i in stack.issues(REPO) if i["title"] == "Spec: Rocket"), None),
        30,
        "the tracking issue",
    )
    assert "[!WARNING]" in tracking["body"]
    assert "no project number 7 owned by acme" in tracking["body"]
    assert stack.board(REPO) == {}
