"""The bridge end to end: real web process, real workers, real database and
queue, and the GitHub double over HTTP."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import select

from storage.db import session_scope
from storage.models import Spec, SpecStatus, SpecTask, Ticket, TicketDependency
from tests.e2e.harness import Stack

pytestmark = pytest.mark.e2e

REPO = "acme/rocket"
CONFIG = "project:\n  owner: acme\n  number: 1\n"


def spec_yaml(tasks: list[tuple[str, str, list[str]]]) -> str:
    lines = [
        "id: passwordless-login",
        "title: Passwordless login",
        "phase: tasks",
        "requirements:",
        "  - id: REQ-1",
        "    text: WHEN a user asks for a sign-in link THE SYSTEM SHALL email a one-time link",
        "    acceptance:",
        "      - id: AC-1",
        "        text: The link expires after 15 minutes",
        "tasks:",
    ]
    for key, title, depends_on in tasks:
        lines += [
            f"  - id: {key}",
            f"    title: {title}",
            "    requirements: [REQ-1]",
            f"    depends_on: [{', '.join(depends_on)}]",
        ]
    return "\n".join(lines) + "\n"


FIVE_TASKS = [
    ("TSK-1", "Store one-time tokens", []),
    ("TSK-2", "Email the link", ["TSK-1"]),
    ("TSK-3", "Verify the link", ["TSK-1"]),
    ("TSK-4", "Rate-limit requests", []),
    ("TSK-5", "Audit log", []),
]


def test_a_spec_becomes_tracked_issues_and_completes(stack: Stack) -> None:
    stack.create_repo({"README.md": "rocket\n", ".github/specbridge.yml": CONFIG})

    # 1. A spec of five tasks is merged.
    stack.commit(REPO, {"specs/login.yaml": spec_yaml(FIVE_TASKS)})
    stack.settle()
    issues = stack.issues(REPO)
    tracking = stack.issue_titled(REPO, "Spec: Passwordless login")
    tickets = {i["title"].split(":")[0]: i for i in issues if i["number"] != tracking["number"]}
    assert sorted(tickets) == ["TSK-1", "TSK-2", "TSK-3", "TSK-4", "TSK-5"]
    assert sorted(tracking["sub_issues"]) == sorted(i["number"] for i in tickets.values())
    assert stack.board(REPO) == {i["number"]: "Backlog" for i in tickets.values()}
    assert f"#{tickets['TSK-1']['number']}" in tickets["TSK-2"]["body"]
    assert tickets["TSK-2"]["blocked_by"] == [tickets["TSK-1"]["number"]]
    with session_scope(stack.database_url) as session:
        spec = session.scalars(select(Spec)).one()
        rows = session.scalars(select(Ticket)).all()
        assert {t.spec_id for t in rows} == {spec.id}
        assert {session.get(SpecTask, t.spec_task_id).key for t in rows} == set(tickets)
        assert len(session.scalars(select(TicketDependency)).all()) == 2
        assert spec.tracking_issue_number == tracking["number"]
        assert spec.status is SpecStatus.PLANNED

    # 2. The spec is edited: one task added, one removed, one retitled.
    edited = [
        ("TSK-1", "Store hashed one-time tokens", []),
        *FIVE_TASKS[1:4],
        ("TSK-6", "Expire old tokens", ["TSK-1"]),
    ]
    stack.reset_requests()
    push = stack.commit(REPO, {"specs/login.yaml": spec_yaml(edited)})
    stack.settle()
    after = {i["number"]: i for i in stack.issues(REPO)}
    new = [i for n, i in after.items() if n not in {t["number"] for t in issues}]
    assert [i["title"] for i in new] == ["TSK-6: Expire old tokens"]
    assert after[tickets["TSK-1"]["number"]]["title"] == "TSK-1: Store hashed one-time tokens"
    removed = after[tickets["TSK-5"]["number"]]
    assert (removed["state"], removed["state_reason"]) == ("closed", "not_planned")
    assert "removed from the spec" in stack.comments(REPO, removed["number"])[-1]["body"]
    for key in ("TSK-2", "TSK-3", "TSK-4"):
        unchanged = after[tickets[key]["number"]]
        assert (unchanged["title"], unchanged["body"]) == (
            tickets[key]["title"],
            tickets[key]["body"],
        )
    assert stack.board(REPO)[new[0]["number"]] == "Backlog"
    assert new[0]["number"] in after[tracking["number"]]["sub_issues"]
    # One write of each kind the edit needs, batched: nothing for the unchanged tasks.
    assert stack.mutations() == {
        "createIssue": 1,  # TSK-6
        "updateIssue": 2,  # TSK-1's title, the tracking issue's list and progress
        "addComment": 1,  # why TSK-5 closes
        "closeIssue": 1,  # TSK-5, not planned
        "addBlockedBy": 1,  # TSK-6 waits for TSK-1
        "updateProjectV2ItemFieldValue": 1,  # TSK-6's card in Backlog
    }

    # 3. The same push delivered again, and a sync by hand, write nothing.
    stack.reset_requests()
    stack.redeliver(push["delivery_id"])
    stack.settle()
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "sync", "--repo", REPO],
        env=stack.environment(),
        cwd=stack.workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "synced specs/login.yaml" in result.stdout
    assert [(w["method"], w["path"]) for w in stack.writes()] == []

    # 4. Every ticket closes → the tracking issue closes and the spec completes.
    open_tickets = [
        i for i in stack.issues(REPO) if i["state"] == "open" and i["number"] != tracking["number"]
    ]
    for issue in open_tickets:
        stack.admin(
            "POST", f"repos/{REPO}/issues/{issue['number']}/close", state_reason="completed"
        )
    stack.settle()
    assert stack.issue(REPO, tracking["number"])["state"] == "closed"
    assert "complete" in stack.comments(REPO, tracking["number"])[-1]["body"]
    assert _spec_status(stack) is SpecStatus.COMPLETED

    # 5. One reopens → so does the tracking issue.
    stack.admin("POST", f"repos/{REPO}/issues/{open_tickets[0]['number']}/reopen")
    stack.settle()
    assert stack.issue(REPO, tracking["number"])["state"] == "open"
    assert _spec_status(stack) is SpecStatus.EXECUTING
    assert stack.mismatches() == []


def test_a_broken_spec_is_reported_and_does_not_stop_the_others(stack: Stack) -> None:
    stack.create_repo({"README.md": "rocket\n"})
    broken = textwrap.dedent("""\
        id: broken
        title: Broken
        phase: tasks
        tasks:
          - id: TSK-1
            title: A
            depends_on: [TSK-9]
        """)
    push = stack.commit(
        REPO, {"specs/broken.yaml": broken, "specs/login.yaml": spec_yaml(FIVE_TASKS[:2])}
    )
    stack.settle()
    titles = sorted(i["title"] for i in stack.issues(REPO))
    assert titles == [
        "Spec: Passwordless login",
        "TSK-1: Store one-time tokens",
        "TSK-2: Email the link",
    ]
    [comment] = stack.commit_comments(REPO, push["sha"])
    assert "specs/broken.yaml:7:" in comment["body"] and "unknown-reference" in comment["body"]
    with session_scope(stack.database_url) as session:
        broken_row = session.scalars(select(Spec).where(Spec.path == "specs/broken.yaml")).one()
        assert broken_row.status is SpecStatus.INVALID
        assert broken_row.findings[0]["code"] == "unknown-reference"
    assert stack.mismatches() == []


def _spec_status(stack: Stack) -> SpecStatus:
    with session_scope(stack.database_url) as session:
        return session.scalars(select(Spec.status)).one()
