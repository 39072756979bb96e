"""The review loop end to end: an agent's pull request is revised on its own branch
when a person with write access asks, by `/revise` on the issue or on the pull request
(the reply goes there), or by a review that requests changes (with line comments); each
revision is one more commit on the same pull request, made by the agent told the
reviewer's words, up to the profile's `max_revisions`."""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from storage.db import session_scope
from storage.models import CommandRun, Task, TaskStatus
from tests.e2e.conftest import StartStack
from tests.e2e.harness import Stack

pytestmark = pytest.mark.e2e

REPO = "acme/rocket"
BRANCH = "specbridge/rocket/T-1"
# The agent copies its prompt into the clone, so what it was told is on the branch.
PROFILES = """\
default:
  command: cp "$SPECBRIDGE_TASK_FILE" "prompt-$SPECBRIDGE_ISSUE.md"
  test: test -s "prompt-$SPECBRIDGE_ISSUE.md"
  timeout: 60
  max_revisions: 3
"""
SPEC = textwrap.dedent("""\
    title: Rocket
    phase: tasks
    tasks:
      - {id: T-1, title: Build the engine, description: Make it go.}
    """)
PEOPLE = {"reviewer": "write", "reader": "read"}
FIRST_RUN = ["Backlog", "Analyzing", "Building", "Testing"]
ONE_MORE_RUN = ["Analyzing", "Building", "Testing"]


def _start(start_stack: StartStack, tmp_path: Path, workspaces: Path) -> Stack:
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(PROFILES)
    stack = start_stack(SPECBRIDGE_AGENTS=str(profiles), TMPDIR=str(workspaces))
    stack.create_repo(
        {"README.md": "rocket\n", ".github/specbridge.yml": "project: {owner: acme, number: 1}\n"},
        collaborators=PEOPLE,
    )
    stack.commit(REPO, {"specs/rocket.yaml": SPEC})
    stack.settle()
    return stack


def _get(stack: Stack, path: str, **params: Any) -> Any:
    """GitHub's REST API on the double, as a person's client reads it."""
    response = requests.get(f"{stack.hub}/repos/{REPO}/{path}", params=params, timeout=30)
    response.raise_for_status()
    return response.json()


def _head(stack: Stack) -> dict[str, Any]:
    """The branch's head commit: its sha and its parents."""
    return _get(stack, f"branches/{BRANCH}")["commit"]


def _prompt_at_head(stack: Stack, issue: int) -> str:
    data = _get(stack, f"contents/prompt-{issue}.md", ref=BRANCH)
    return base64.b64decode(data["content"]).decode()


def _tasks(stack: Stack) -> list[tuple[int, TaskStatus, int | None, str | None]]:
    with session_scope(stack.database_url) as session:
        rows = session.execute(
            select(Task.revision, Task.status, Task.pull_request_number, Task.branch).order_by(
                Task.id
            )
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def _say(stack: Stack, issue: int, user: str, body: str) -> dict[str, Any]:
    """A person's comment on an issue or a pull request (one numbering)."""
    association = "COLLABORATOR" if user in PEOPLE else "NONE"
    return stack.admin(
        "POST",
        f"repos/{REPO}/issues/{issue}/comments",
        user=user,
        body=body,
        author_association=association,
    )


def _reactions(stack: Stack, number: int, comment_id: int) -> list[str]:
    return next(c for c in stack.comments(REPO, number) if c["id"] == comment_id)["reactions"]


def _review(stack: Stack, pull: int, event: str, body: str, **extra: Any) -> dict[str, Any]:
    path = f"repos/{REPO}/pulls/{pull}/reviews"
    return stack.admin("POST", path, user="reviewer", event=event, body=body, **extra)


def test_revise_and_a_review_each_add_a_commit_to_the_pull_request_up_to_max_revisions(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    stack = _start(start_stack, tmp_path, workspaces)
    [issue] = [i["number"] for i in stack.issues(REPO) if i["title"].startswith("T-1")]
    [pull] = stack.repo_state(REPO)["pull_requests"]
    number = pull["number"]
    assert pull["head"]["ref"] == BRANCH and pull["draft"]
    assert stack.board_history(REPO, issue) == FIRST_RUN
    opened = _head(stack)
    assert "What the review asks" not in _prompt_at_head(stack, issue)

    # 1. /revise on the issue, by a person with write access.
    _say(stack, issue, "reviewer", "/revise Say in the README how to start the engine.")
    stack.settle()
    first = _head(stack)
    assert [p["sha"] for p in first["parents"]] == [opened["sha"]]  # added, not forced
    prompt = _prompt_at_head(stack, issue)
    assert "## What the review asks (this run revises your pull request)" in prompt
    assert "@reviewer asked on issue" in prompt
    assert "Say in the README how to start the engine." in prompt
    assert _tasks(stack)[-1] == (1, TaskStatus.SUCCEEDED, number, BRANCH)
    said = [c["body"] for c in stack.comments(REPO, issue)]
    assert any("the agent `default` revises" in s and "(revision 1 of 3)" in s for s in said)
    assert said[-1].startswith(f"The agent revised #{number} after its review")
    assert "(revision 1 of 3)" in said[-1]
    assert stack.board_history(REPO, issue) == FIRST_RUN + ONE_MORE_RUN

    # 2. A review that requests changes, with a line comment on the agent's file.
    review = _review(
        stack,
        number,
        "REQUEST_CHANGES",
        "Keep the prompt, but name the issue.",
        comments=[{"path": f"prompt-{issue}.md", "line": 1, "body": "Start with the title."}],
    )
    stack.settle()
    second = _head(stack)
    assert [p["sha"] for p in second["parents"]] == [first["sha"]]
    prompt = _prompt_at_head(stack, issue)
    assert f"@reviewer requested changes in a review of #{number}:" in prompt
    assert "Keep the prompt, but name the issue." in prompt
    assert f"- `prompt-{issue}.md` line 1: Start with the title." in prompt
    assert "Say in the README" not in prompt  # this run was told this review only
    assert _tasks(stack)[-1] == (2, TaskStatus.SUCCEEDED, number, BRANCH)
    assert stack.comments(REPO, issue)[-1]["body"].startswith(f"The agent revised #{number}")
    assert stack.board_history(REPO, issue) == FIRST_RUN + ONE_MORE_RUN * 2

    # The same review delivered again runs nothing twice.
    [delivery] = [
        d
        for d in stack.admin("GET", "deliveries")
        if d["event"] == "pull_request_review" and d["payload"]["review"]["id"] == review["id"]
    ]
    comments_before = len(stack.comments(REPO, issue))
    stack.redeliver(delivery["id"])
    stack.settle()
    assert len(_tasks(stack)) == 3 and len(stack.comments(REPO, issue)) == comments_before

    # 3. An approval, a plain comment, a reader's /revise: nothing runs.
    _review(stack, number, "COMMENT", "Nice.")
    _review(stack, number, "APPROVE", "")
    _say(stack, issue, "reader", "/revise do it all again")
    stack.settle()
    assert "needs write access" in stack.comments(REPO, issue)[-1]["body"]
    assert len(_tasks(stack)) == 3 and _head(stack)["sha"] == second["sha"]

    # 4. /revise on the pull request itself, where reviewers are: the same, replied there.
    _say(stack, number, "reader", "/revise not from a reader")
    stack.settle()
    assert "needs write access" in stack.comments(REPO, number)[-1]["body"]
    assert len(_tasks(stack)) == 3
    revise_on_pull = _say(stack, number, "reviewer", "/revise Name the engine's maker too.")
    stack.settle()
    third = _head(stack)
    assert [p["sha"] for p in third["parents"]] == [second["sha"]]
    prompt = _prompt_at_head(stack, issue)
    assert f"@reviewer asked on pull request #{number} (`/revise`):" in prompt
    assert "Name the engine's maker too." in prompt
    assert _tasks(stack)[-1] == (3, TaskStatus.SUCCEEDED, number, BRANCH)
    reply = stack.comments(REPO, number)[-1]["body"]
    assert reply.startswith("@reviewer") and "(revision 3 of 3)" in reply
    assert "eyes" in _reactions(stack, number, revise_on_pull["id"])
    assert stack.board_history(REPO, issue) == FIRST_RUN + ONE_MORE_RUN * 3
    # Delivered again, it runs nothing twice.
    [again] = [
        d
        for d in stack.admin("GET", "deliveries")
        if d["event"] == "issue_comment" and d["payload"]["comment"]["id"] == revise_on_pull["id"]
    ]
    assert again["payload"]["issue"]["pull_request"]
    stack.redeliver(again["id"])
    stack.settle()
    assert len(_tasks(stack)) == 4

    # 5. Past max_revisions (3): refused, by /revise on the issue and on the pull request
    #    and by a review, with a comment each.
    _say(stack, issue, "reviewer", "/revise one more thing")
    stack.settle()
    refusal = stack.comments(REPO, issue)[-1]["body"]
    assert (
        f"Nothing runs: #{number} was revised 3 times already, the most the profile "
        "`default` allows (`max_revisions: 3`)." in refusal
    )
    _say(stack, number, "reviewer", "/revise and one more")
    stack.settle()
    assert "`max_revisions: 3`" in stack.comments(REPO, number)[-1]["body"]
    _review(stack, number, "REQUEST_CHANGES", "And another.")
    stack.settle()
    refusal = stack.comments(REPO, issue)[-1]["body"]
    assert refusal.startswith(f"@reviewer requested changes on #{number}. Nothing runs:")
    assert "`max_revisions: 3`" in refusal
    assert len(_tasks(stack)) == 4 and _head(stack)["sha"] == third["sha"]
    assert stack.board_history(REPO, issue) == FIRST_RUN + ONE_MORE_RUN * 3

    # One pull request throughout; every review recorded once.
    assert [p["number"] for p in stack.repo_state(REPO)["pull_requests"]] == [number]
    with session_scope(stack.database_url) as session:
        reviews = session.scalars(select(CommandRun).where(CommandRun.command == "review")).all()
        assert [(r.allowed, r.line) for r in reviews] == [(True, 0), (True, 0)]
    assert list(workspaces.glob("specbridge-task-*")) == []
    assert stack.mismatches() == []
