"""Hosted presets end to end against the double: each `hosted:` agent is started its
documented way (Copilot assigned with the task's prompt, a label, an `@claude` comment, a
workflow dispatched with the prompt as input), its pull request is followed to Done, and
a review that requests changes is passed on in its own way (`@copilot …`, `/kiro fix …`,
`@openhands-agent …`, `@claude …`, a new run of the workflow), counted as a revision.
The tests act as the agents with the double's admin routes."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from storage.db import session_scope
from storage.models import Task, TaskStatus, Ticket
from tests.e2e.conftest import StartStack
from tests.e2e.harness import Stack

pytestmark = pytest.mark.e2e

REPO = "acme/rocket"
CONFIG = "project: {owner: acme, number: 1}\n"
PEOPLE = {"maintainer": "write", "reviewer": "write"}
PROFILES = """\
copilot:
  hosted: copilot
  custom_agent: tester
  timeout: 600
claude:
  hosted: claude
  timeout: 600
codex:
  hosted: codex
  model: gpt-5-codex
  timeout: 600
kiro:
  hosted: kiro
  timeout: 600
openhands:
  hosted: openhands
  timeout: 600
claude-action:
  hosted: claude-code-action
  timeout: 600
runner:
  hosted: workflow
  workflow: agent.yml
  inputs: {issue: "{issue}"}
  timeout: 600
"""
WORKFLOW = textwrap.dedent("""\
    name: Agent
    on:
      workflow_dispatch:
        inputs:
          prompt: {required: true, type: string}
          issue: {required: true, type: string}
    jobs:
      agent:
        runs-on: ubuntu-latest
        steps: [{run: echo "$PROMPT"}]
    """)
REVIEW = "Reject an empty password too."


def _spec(agent: str) -> str:
    return textwrap.dedent(f"""\
        title: Login
        phase: tasks
        agent: {agent}
        context: People sign in with a password.
        requirements:
          - id: R-1
            text: THE SYSTEM SHALL refuse a wrong password.
            acceptance:
              - {{id: AC-1, text: A wrong password is refused.}}
        tasks:
          - {{id: T-1, title: Check the password, requirements: [R-1]}}
        """)


@dataclass(frozen=True)
class Case:
    profile: str
    author: str  # who opens the pull request, as the agent
    branch: str  # its branch's prefix
    revise: str  # how the relayed request starts ("" for a new workflow run)


CASES = [
    Case("copilot", "Copilot", "copilot/", "@copilot "),
    Case("claude", "claude", "claude/", "@claude "),
    Case("codex", "codex", "codex/", "@codex "),
    Case("kiro", "kiro-agent", "kiro/", "/kiro fix "),
    Case("openhands", "openhands-agent", "openhands-fix-issue-", "@openhands-agent "),
    Case("claude-action", "claude", "claude/", "@claude "),
    Case("runner", "github-actions", "agent/", ""),
]


def _start(start_stack: StartStack, tmp_path: Path, more: str = "") -> Stack:
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(PROFILES + more)
    stack = start_stack(SPECBRIDGE_AGENTS=str(profiles))
    files = {".github/specbridge.yml": CONFIG, ".github/workflows/agent.yml": WORKFLOW}
    stack.create_repo(files, collaborators=PEOPLE, agents=["copilot", "claude", "codex"])
    # A person's token (the maintainer's), as the operator sets it.
    token = stack.admin("POST", "tokens", user="maintainer")["token"]
    stack.extra_env["SPECBRIDGE_AGENT_USER_TOKEN"] = token
    for name in {*stack.job_runners(), "serve"}:
        stack.kill(name)
        stack.restart(name)
    return stack


def _tasks(stack: Stack, number: int) -> list[TaskStatus]:
    with session_scope(stack.database_url) as session:
        query = select(Task.status).join(Task.ticket).where(Ticket.issue_number == number)
        return list(session.scalars(query.order_by(Task.id)))


def _runs(stack: Stack) -> list[dict[str, Any]]:
    return stack.admin("GET", f"repos/{REPO}/actions/runs")["runs"]


def _open_pull(stack: Stack, number: int, case: Case) -> int:
    """The agent pushes a branch and opens a draft that fixes the issue."""
    branch = f"{case.branch}fix-{number}"
    stack.admin(
        "POST",
        f"repos/{REPO}/commits",
        branch=branch,
        files={"login.py": "def check(password):\n    return password == 'secret'\n"},
        message=f"Check the password (#{number})",
        user=case.author,
    )
    pull = stack.admin(
        "POST",
        f"repos/{REPO}/pulls",
        head=branch,
        base="main",
        title="Check the password",
        body=f"Checks it.\n\nFixes #{number}",
        draft=True,
        user=case.author,
    )
    return pull["number"]


def _started_its_way(stack: Stack, number: int, case: Case) -> None:
    """The agent was started as its documentation says, told the task where it needs to."""
    issue = stack.issue(REPO, number)
    if case.profile in ("copilot", "claude", "codex"):
        assert issue["assignees"] == [case.author]
        [assignment] = [a for a in stack.repo_state(REPO)["copilot_assignments"] if a["accepted"]]
        assert assignment["assigned_by"] == "maintainer"
        assert assignment["agent"] == case.author
        if case.profile == "copilot":
            assert assignment["custom_agent"] == "tester"
        if case.profile == "codex":
            assert assignment["model"] == "gpt-5-codex"
        # Copilot reads the issue once: the task's prompt goes along.
        told = assignment["custom_instructions"]
        assert "THE SYSTEM SHALL refuse a wrong password." in told
        assert "A wrong password is refused." in told and f"`Fixes #{number}`" in told
    elif case.profile in ("kiro", "openhands"):
        assert ("kiro" if case.profile == "kiro" else "fix-me") in issue["labels"]
    elif case.profile == "claude-action":
        [said] = [c for c in stack.comments(REPO, number) if c["body"].startswith("@claude ")]
        assert said["user"] == "maintainer"  # the action answers people only
    else:
        [run] = _runs(stack)
        assert run["inputs"]["issue"] == str(number)
        assert "THE SYSTEM SHALL refuse a wrong password." in run["inputs"]["prompt"]
        assert f"`Fixes #{number}`" in run["inputs"]["prompt"]
        stack.admin("POST", f"repos/{REPO}/actions/runs/{run['id']}", status="in_progress")
        stack.settle()
        assert stack.board(REPO)[number] == "Building"


# Copilot's assignment, an action (claude-action) and a workflow (runner) in every run;
# the other partner agents (the same steps with their own handles and branches) when
# heavy tests run, as .ci/run always does.
ASSIGNED_ALIKE = {"claude", "codex", "kiro", "openhands"}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            c, id=c.profile, marks=[pytest.mark.heavy] if c.profile in ASSIGNED_ALIKE else []
        )
        for c in CASES
    ],
)
def test_each_preset_dispatches_follows_its_pull_request_and_is_revised_its_own_way(
    start_stack: StartStack, tmp_path: Path, case: Case
) -> None:
    stack = _start(start_stack, tmp_path)
    stack.commit(REPO, {"specs/login.yaml": _spec(case.profile)})
    stack.settle()
    [number] = [i["number"] for i in stack.issues(REPO) if i["title"].startswith("T-1")]
    assert _tasks(stack, number) == [TaskStatus.RUNNING]
    assert stack.board(REPO)[number] == "Analyzing"
    _started_its_way(stack, number, case)

    pull = _open_pull(stack, number, case)
    stack.settle()
    assert stack.board(REPO)[number] == "Building"

    # A reviewer requests changes, with a line comment: passed on in the agent's own way.
    stack.admin(
        "POST",
        f"repos/{REPO}/pulls/{pull}/reviews",
        user="reviewer",
        event="REQUEST_CHANGES",
        body=REVIEW,
        comments=[{"path": "login.py", "line": 2, "body": "Empty is wrong too."}],
    )
    stack.settle()
    if case.revise:
        relayed = [c for c in stack.comments(REPO, pull) if c["body"].startswith(case.revise)]
        [comment] = relayed
        assert (
            REVIEW in comment["body"]
            and "`login.py` line 2: Empty is wrong too." in (comment["body"])
        )
        if case.profile not in ("openhands",):
            assert comment["user"] == "maintainer"  # a person, as these answer
    else:
        first, again = _runs(stack)
        assert REVIEW in again["inputs"]["prompt"] and REVIEW not in first["inputs"]["prompt"]
        assert "`login.py` line 2: Empty is wrong too." in again["inputs"]["prompt"]
    # Counted as the first revision; the issue says how the agent was asked.
    assert _tasks(stack, number) == [TaskStatus.SUCCEEDED, TaskStatus.RUNNING]
    said = stack.comments(REPO, number)[-1]["body"]
    assert "requested changes on" in said and "(revision 1 of 3)" in said

    # The agent pushes its fix, marks it ready, and a person merges it: Done.
    stack.admin("POST", f"repos/{REPO}/pulls/{pull}/ready", user=case.author)
    stack.settle()
    assert stack.board(REPO)[number] == "Testing"
    stack.admin("POST", f"repos/{REPO}/pulls/{pull}/merge", user="maintainer")
    stack.settle()
    assert stack.issue(REPO, number)["state"] == "closed"
    assert stack.board(REPO)[number] == "Done"
    assert _tasks(stack, number) == [TaskStatus.SUCCEEDED, TaskStatus.SUCCEEDED]
    assert stack.mismatches() == []


def test_a_failed_workflow_run_fails_the_task_with_the_runs_link(
    start_stack: StartStack, tmp_path: Path
) -> None:
    stack = _start(start_stack, tmp_path)
    stack.commit(REPO, {"specs/login.yaml": _spec("runner")})
    stack.settle()
    [number] = [i["number"] for i in stack.issues(REPO) if i["title"].startswith("T-1")]
    [run] = _runs(stack)
    stack.admin("POST", f"repos/{REPO}/actions/runs/{run['id']}", status="in_progress")
    stack.admin("POST", f"repos/{REPO}/actions/runs/{run['id']}", conclusion="failure")
    stack.settle()
    assert _tasks(stack, number) == [TaskStatus.FAILED]
    link = f"https://github.com/{REPO}/actions/runs/{run['id']}"
    said = stack.comments(REPO, number)[-1]["body"]
    assert link in said and "`failure`" in said and "`/retry`" in said
    assert "specbridge: failed" in stack.issue(REPO, number)["labels"]
    assert stack.board(REPO)[number] == "Analyzing"  # the column before Building

    # /retry dispatches a new run.
    stack.admin(
        "POST",
        f"repos/{REPO}/issues/{number}/comments",
        user="maintainer",
        body="/retry",
        author_association="COLLABORATOR",
    )
    stack.settle()
    _, second = _runs(stack)
    assert second["status"] == "queued"
    assert _tasks(stack, number) == [TaskStatus.FAILED, TaskStatus.RUNNING]

    # /cancel cancels the run it dispatched.
    stack.admin(
        "POST",
        f"repos/{REPO}/issues/{number}/comments",
        user="maintainer",
        body="/cancel",
        author_association="COLLABORATOR",
    )
    stack.settle()
    assert [run["conclusion"] for run in _runs(stack)] == ["failure", "cancelled"]
    assert _tasks(stack, number) == [TaskStatus.FAILED, TaskStatus.CANCELLED]
    assert (
        f"its workflow run {second['id']} is cancelled" in stack.comments(REPO, number)[-1]["body"]
    )
    assert stack.mismatches() == []


def test_revise_on_copilots_pull_request_is_an_at_copilot_comment_up_to_max_revisions(
    start_stack: StartStack, tmp_path: Path
) -> None:
    stack = _start(start_stack, tmp_path, "once:\n  hosted: copilot\n  max_revisions: 1\n")
    stack.commit(REPO, {"specs/login.yaml": _spec("once")})
    stack.settle()
    [number] = [i["number"] for i in stack.issues(REPO) if i["title"].startswith("T-1")]
    pull = _open_pull(stack, number, CASES[0])
    stack.settle()

    stack.admin(
        "POST",
        f"repos/{REPO}/issues/{pull}/comments",
        user="maintainer",
        body="/revise Add a test for an empty password.",
        author_association="COLLABORATOR",
    )
    stack.settle()
    asked = [c for c in stack.comments(REPO, pull) if c["body"].startswith("@copilot ")]
    [comment] = asked
    assert "Add a test for an empty password." in comment["body"]
    assert comment["user"] == "maintainer"
    assert _tasks(stack, number) == [TaskStatus.SUCCEEDED, TaskStatus.RUNNING]

    # The profile allows one revision: a review asks for nothing more of Copilot.
    stack.admin(
        "POST",
        f"repos/{REPO}/pulls/{pull}/reviews",
        user="reviewer",
        event="REQUEST_CHANGES",
        body=REVIEW,
    )
    stack.settle()
    assert [c for c in stack.comments(REPO, pull) if c["body"].startswith("@copilot ")] == asked
    said = stack.comments(REPO, number)[-1]["body"]
    assert "`max_revisions: 1`" in said
    assert _tasks(stack, number) == [TaskStatus.SUCCEEDED, TaskStatus.RUNNING]
    assert stack.mismatches() == []
