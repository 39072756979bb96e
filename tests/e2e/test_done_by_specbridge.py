"""Done by specbridge: an issue that closes as completed (its agent's pull request merged,
or a person closing it) has its card set to Done by specbridge itself, with GitHub's
built-in "Item closed" workflow off; with it on, the card is moved once, by GitHub.
Closed as not planned, the card stays where it was; reopened, it leaves Done."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.e2e.conftest import StartStack
from tests.e2e.harness import Stack

pytestmark = pytest.mark.e2e

REPO = "acme/rocket"
PROFILES = """\
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
      - {id: T-2, title: Fuel the engine}
      - {id: T-3, title: Paint the hull}
      - {id: T-4, title: Launch}
    """)
RUN = ["Backlog", "Analyzing", "Building", "Testing"]


def _pulls(stack: Stack) -> dict[str, int]:
    return {
        p["head"]["ref"].rsplit("/", 1)[-1]: p["number"]
        for p in stack.repo_state(REPO)["pull_requests"]
    }


def _status_writes(stack: Stack) -> int:
    return stack.mutations().get("updateProjectV2ItemFieldValue", 0)


def test_an_issue_closed_as_completed_moves_its_card_to_done_without_githubs_workflow(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    agents = tmp_path / "agents.yaml"
    agents.write_text(PROFILES)
    stack = start_stack(SPECBRIDGE_AGENTS=str(agents), TMPDIR=str(workspaces))
    stack.create_repo(
        {"README.md": "rocket\n", ".github/specbridge.yml": "project: {owner: acme, number: 1}\n"},
        collaborators={"maintainer": "write"},
    )
    stack.commit(REPO, {"specs/rocket.yaml": SPEC})
    stack.settle()
    numbers = {i["title"][:3]: i["number"] for i in stack.issues(REPO) if i["title"][:2] == "T-"}
    pulls = _pulls(stack)
    assert {stack.board(REPO)[n] for n in numbers.values()} == {"Testing"}

    # 1. The agent's pull request merged, GitHub's workflow off: specbridge sets Done.
    stack.admin("POST", f"repos/{REPO}/pulls/{pulls['T-1']}/merge", user="maintainer")
    stack.settle()
    assert stack.issue(REPO, numbers["T-1"])["state"] == "closed"
    assert stack.board_history(REPO, numbers["T-1"]) == [*RUN, "Done"]

    # 2. A person closes an issue as completed: the same.
    stack.admin("POST", f"repos/{REPO}/issues/{numbers['T-2']}/close", user="maintainer")
    stack.settle()
    assert stack.board_history(REPO, numbers["T-2"]) == [*RUN, "Done"]

    # 3. Closed as not planned: the card stays where people put it.
    stack.admin(
        "POST",
        f"repos/{REPO}/issues/{numbers['T-3']}/close",
        user="maintainer",
        state_reason="not_planned",
    )
    stack.settle()
    assert stack.board_history(REPO, numbers["T-3"]) == RUN

    # 4. Reopened, a done ticket leaves Done for the backlog's column.
    stack.admin("POST", f"repos/{REPO}/issues/{numbers['T-2']}/reopen", user="maintainer")
    stack.settle()
    assert stack.board_history(REPO, numbers["T-2"]) == [*RUN, "Done", "Backlog"]

    # 5. GitHub's "Item closed" workflow on: it moves the card; specbridge, reading it
    #    there, writes nothing more (no second Done, no Status write).
    stack.admin("POST", "orgs/acme/projects/1/workflows", item_closed=True)
    stack.reset_requests()
    stack.admin("POST", f"repos/{REPO}/pulls/{pulls['T-4']}/merge", user="maintainer")
    stack.settle()
    assert stack.board_history(REPO, numbers["T-4"]) == [*RUN, "Done"]
    assert _status_writes(stack) == 0
    # The same close delivered again changes nothing either.
    [closed] = [
        d
        for d in stack.admin("GET", "deliveries")
        if d["event"] == "issues"
        and d["action"] == "closed"
        and d["payload"]["issue"]["number"] == numbers["T-1"]
    ]
    stack.redeliver(closed["id"])
    stack.settle()
    assert stack.board_history(REPO, numbers["T-1"]) == [*RUN, "Done"]
    assert _status_writes(stack) == 0
    assert stack.mismatches() == []
