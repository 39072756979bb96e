"""The repository's checks close the loop on an agent's pull request, end to end: a CI
reports on its head (check runs of another App, or commit statuses); while they run the
card is in Testing; a failing required check sends it back to Building and runs the
agent again on the branch, told the check's output and annotations, up to
`max_revisions`; all passing marks the draft ready for review and asks the profile's
reviewers (and GitHub the code owners), with one comment on the issue."""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from storage.db import session_scope
from storage.models import Task, TaskStatus
from tests.e2e.conftest import StartStack
from tests.e2e.harness import Stack, wait_until

pytestmark = pytest.mark.e2e

REPO = "acme/rocket"
BRANCH = "specbridge/rocket/T-1"
SPEC = textwrap.dedent("""\
    title: Rocket
    phase: tasks
    tasks:
      - {id: T-1, title: Build the engine, description: Make it go.}
    """)
# The agent copies its prompt into the clone: what it was told is on the branch. No
# `test:`, so the card ends a run in Building, and the checks show it in Testing.
FIXING = """\
default:
  command: cp "$SPECBRIDGE_TASK_FILE" "prompt-$SPECBRIDGE_ISSUE.md"
  timeout: 60
  max_revisions: 1
  reviewers: [reviewer]
"""
NOT_FIXING = """\
default:
  command: cp "$SPECBRIDGE_TASK_FILE" "prompt-$SPECBRIDGE_ISSUE.md"
  timeout: 60
  fix_checks: false
"""
PEOPLE = {"maintainer": "write", "reviewer": "write", "docs-writer": "write"}
FAILING_OUTPUT = "\n".join(f"line {n}" for n in range(1, 200)) + "\nE   assert engine.go()"


def _start(start_stack: StartStack, tmp_path: Path, workspaces: Path, profiles: str) -> Stack:
    agents = tmp_path / "agents.yaml"
    agents.write_text(profiles)
    stack = start_stack(SPECBRIDGE_AGENTS=str(agents), TMPDIR=str(workspaces))
    stack.create_repo(
        {
            "README.md": "rocket\n",
            ".github/specbridge.yml": "project: {owner: acme, number: 1}\n",
            ".github/CODEOWNERS": "*.md @docs-writer\n",
        },
        collaborators=PEOPLE,
    )
    return stack


def _synced(stack: Stack) -> tuple[int, dict[str, Any]]:
    stack.commit(REPO, {"specs/rocket.yaml": SPEC})
    stack.settle()
    [issue] = [i["number"] for i in stack.issues(REPO) if i["title"].startswith("T-1")]
    [pull] = stack.repo_state(REPO)["pull_requests"]
    return issue, pull


def _pull(stack: Stack, number: int) -> dict[str, Any]:
    return requests.get(f"{stack.hub}/repos/{REPO}/pulls/{number}", timeout=30).json()


def _ci(stack: Stack, sha: str, name: str, **report: Any) -> None:
    stack.admin("POST", f"repos/{REPO}/check-runs", head_sha=sha, name=name, **report)


def _prompt_at_head(stack: Stack, issue: int) -> str:
    data = requests.get(
        f"{stack.hub}/repos/{REPO}/contents/prompt-{issue}.md", params={"ref": BRANCH}, timeout=30
    ).json()
    return base64.b64decode(data["content"]).decode()


def _tasks(stack: Stack) -> list[tuple[int, TaskStatus, bool]]:
    with session_scope(stack.database_url) as session:
        rows = session.execute(
            select(Task.revision, Task.status, Task.fixes_checks).order_by(Task.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def _said(stack: Stack, issue: int) -> list[str]:
    return [c["body"] for c in stack.comments(REPO, issue)]


def test_a_red_required_check_runs_the_agent_told_its_output_and_a_green_one_asks_review(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    stack = _start(start_stack, tmp_path, workspaces, FIXING)
    stack.admin("POST", f"repos/{REPO}/protect", required_checks=["tests"])
    issue, pull = _synced(stack)
    number, first = pull["number"], pull["head"]["sha"]
    assert pull["draft"]
    # A moment after the run its head is read again: a required check is expected there,
    # so the card is in Testing (whether CI's first event or that look comes first).
    wait_until(lambda: stack.board(REPO)[issue] == "Testing", 30, "Testing")

    # 1. The CI starts: the card is in Testing while the checks run.
    _ci(stack, first, "tests", status="queued")
    _ci(stack, first, "lint", status="in_progress")
    stack.settle()
    assert stack.board(REPO)[issue] == "Testing"

    # 2. The required check fails (lint, not required, too): back to Building, and the
    #    agent runs again on the branch, told the check's words, output and annotations.
    _ci(stack, first, "lint", conclusion="failure", output={"title": "style", "summary": "x"})
    _ci(
        stack,
        first,
        "tests",
        conclusion="failure",
        output={"title": "1 test failed", "summary": "test_engine failed", "text": FAILING_OUTPUT},
        annotations=[{"path": f"prompt-{issue}.md", "start_line": 1, "message": "no engine"}],
    )
    stack.settle()
    # The run, Testing while checks ran, back to Building, the fixing run, and Testing
    # again once it pushed: the required check is expected on its head (read a moment
    # after the run, in a job of its own).
    wait_until(lambda: stack.board_history(REPO, issue)[-1] == "Testing", 30, "Testing")
    assert stack.board_history(REPO, issue) == [
        *("Backlog", "Analyzing", "Building", "Testing"),
        *("Building", "Analyzing", "Building", "Testing"),
    ]
    assert _tasks(stack) == [(0, TaskStatus.SUCCEEDED, False), (1, TaskStatus.SUCCEEDED, True)]
    second = _pull(stack, number)["head"]["sha"]
    assert second != first
    prompt = _prompt_at_head(stack, issue)
    assert "## What the repository's checks report (this run fixes your pull request)" in prompt
    assert "### `tests` (check run): failure" in prompt
    assert "1 test failed" in prompt and "test_engine failed" in prompt
    assert "E   assert engine.go()" in prompt and "line 199" in prompt
    assert "line 1\n" not in prompt  # the last lines of the output, not all of it
    assert f"- `prompt-{issue}.md` line 1 (failure): no engine" in prompt
    assert "`lint`" not in prompt  # not a required check
    told = [s for s in _said(stack, issue) if s.startswith("The repository's checks failed")]
    assert told == [told[0]] and f"failed on #{number}: `tests`." in told[0]
    assert "runs again on `specbridge/rocket/T-1`" in told[0] and "(revision 1 of 1)" in told[0]
    assert _pull(stack, number)["draft"]  # red: still a draft

    # 3. Red again on the new head: past max_revisions, nothing runs; people are told.
    _ci(stack, second, "tests", conclusion="failure", output={"title": "still failing"})
    stack.settle()
    assert len(_tasks(stack)) == 2 and stack.board(REPO)[issue] == "Building"
    refusal = _said(stack, issue)[-1]
    assert refusal.startswith(f"The repository's checks failed on #{number}: `tests`.")
    assert "does not run again" in refusal and "`max_revisions: 1`" in refusal

    # 4. A person re-runs it, green: the draft is marked ready, the profile's reviewer and
    #    the code owner of the changed file are asked, once, and the issue says so once.
    _ci(stack, second, "tests", status="queued")
    stack.settle()
    assert stack.board(REPO)[issue] == "Testing"
    _ci(stack, second, "tests", conclusion="success", output={"title": "all passed"})
    stack.settle()
    now = _pull(stack, number)
    assert not now["draft"]
    assert sorted(u["login"] for u in now["requested_reviewers"]) == ["docs-writer", "reviewer"]
    passed = [s for s in _said(stack, issue) if s.startswith("The repository's checks passed")]
    assert passed == [
        f"The repository's checks passed on #{number} (`tests`): it is marked ready for "
        "review, and @docs-writer, @reviewer are asked to review it."
    ]
    assert stack.board(REPO)[issue] == "Testing"
    # The same news delivered again: nothing more.
    [suite] = [
        d
        for d in stack.admin("GET", "deliveries")
        if d["event"] == "check_suite"
        and d["payload"]["check_suite"]["head_sha"] == second
        and d["payload"]["check_suite"]["conclusion"] == "success"
    ]
    stack.redeliver(suite["id"])
    stack.settle()
    assert len([s for s in _said(stack, issue) if "checks passed" in s]) == 1
    assert len(_tasks(stack)) == 2
    assert stack.mismatches() == []


def test_commit_statuses_count_and_without_fix_checks_people_are_told(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    stack = _start(start_stack, tmp_path, workspaces, NOT_FIXING)
    issue, pull = _synced(stack)
    number, head = pull["number"], pull["head"]["sha"]
    path = f"repos/{REPO}/statuses/{head}"

    # No branch protection: every check but specbridge's own counts, statuses too.
    stack.admin("POST", path, context="ci/jenkins", state="pending", description="building")
    stack.settle()
    assert stack.board(REPO)[issue] == "Testing"
    stack.admin("POST", path, context="ci/jenkins", state="failure", description="2 tests failed")
    stack.settle()
    assert stack.board(REPO)[issue] == "Building"
    said = _said(stack, issue)[-1]
    assert said.startswith(f"The repository's checks failed on #{number}: `ci/jenkins`.")
    assert f"`/revise <what to change>` on #{number}" in said and "2 tests failed" in said
    assert len(_tasks(stack)) == 1  # the profile says fix_checks: false: nothing runs

    # Fixed by a person on the branch: the new head's status passes; no reviewer named.
    pushed = stack.admin(
        "POST", f"repos/{REPO}/commits", branch=BRANCH, files={"fix.txt": "fixed\n"}
    )
    stack.admin(
        "POST", f"repos/{REPO}/statuses/{pushed['sha']}", context="ci/jenkins", state="success"
    )
    stack.settle()
    assert not _pull(stack, number)["draft"]
    assert _said(stack, issue)[-1] == (
        f"The repository's checks passed on #{number} (`ci/jenkins`): it is marked ready for "
        "review, and @docs-writer is asked to review it."
    )
    assert stack.board(REPO)[issue] == "Testing"
    assert stack.mismatches() == []
