"""The tracking issue stays true: cards moved on the board show in its progress and graph
within seconds, without /sync; a sync at a newer commit that left the spec files as they
were writes nothing."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time

import pytest

from tests.e2e.harness import Stack, wait_until

pytestmark = pytest.mark.e2e

REPO = "acme/rocket"
SPEC = textwrap.dedent("""\
    title: Rocket
    phase: tasks
    tasks:
      - {id: T-1, title: Build the engine}
      - {id: T-2, title: Fuel the engine}
      - {id: T-3, title: Test the engine, depends_on: [T-1]}
      - {id: T-4, title: Paint the hull}
      - {id: T-5, title: Launch, depends_on: [T-3, T-4]}
    """)


def _synced(stack: Stack) -> tuple[dict[str, int], int]:
    stack.create_repo(
        {".github/specbridge.yml": "project: {owner: acme, number: 1}\n"},
        collaborators={"maintainer": "write"},
    )
    stack.commit(REPO, {"specs/rocket.yaml": SPEC})
    stack.settle()
    issues = stack.issues(REPO)
    numbers = {i["title"].split(":")[0]: i["number"] for i in issues if i["title"][:2] == "T-"}
    tracking = stack.issue_titled(REPO, "Spec: Rocket")["number"]
    return numbers, tracking


def _node(body: str, number: int) -> str:
    """The Mermaid node of issue #number in a tracking issue's body: its label and class."""
    match = re.search(rf'^  t{number}\["(.*)"\]:::(\w+)$', body, re.MULTILINE)
    assert match, body
    return f"{match[1]} :: {match[2]}"


def test_cards_moved_show_on_the_tracking_issue_within_seconds(stack: Stack) -> None:
    numbers, tracking = _synced(stack)
    body = stack.issue(REPO, tracking)["body"]
    assert "Open by phase: backlog 5" in body
    # Nodes name their task's title, not only its id.
    assert _node(body, numbers["T-1"]) == f"#{numbers['T-1']} T-1: Build the engine :: backlog"

    moved = time.monotonic()
    for key in ("T-1", "T-2"):
        stack.admin(
            "POST",
            f"orgs/acme/projects/1/items/{numbers[key]}/status",
            status="Building",
            user="maintainer",
        )

    def building() -> str | None:
        body = stack.issue(REPO, tracking)["body"]
        return body if "building 2" in body else None

    try:
        body = wait_until(building, 20, "the tracking issue to show two tasks building")
    except AssertionError:
        raise AssertionError(stack.logs()) from None
    took = time.monotonic() - moved

    assert "Open by phase: backlog 3, building 2" in body
    assert _node(body, numbers["T-1"]).endswith(":: building")
    assert _node(body, numbers["T-2"]).endswith(":: building")
    assert _node(body, numbers["T-3"]).endswith(":: backlog")
    assert took < 15, f"{took:.1f}s"
    # Nobody asked for it: no /sync, no comment on the tracking issue (but the one that
    # says, when it opened, that no agent profile works these tasks here).
    said = [c["body"] for c in stack.comments(REPO, tracking)]
    assert [s for s in said if not s.startswith("No agent works these tasks")] == []
    assert stack.mismatches() == []


def test_a_sync_at_a_newer_commit_with_the_same_spec_files_writes_nothing(stack: Stack) -> None:
    numbers, tracking = _synced(stack)
    first = stack.issue(REPO, tracking)["body"]
    stack.commit(REPO, {"README.md": "rocket, now with a README\n"}, message="Docs")
    stack.settle()

    stack.reset_requests()
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "sync", "--repo", REPO],
        env=stack.environment(),
        cwd=stack.workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "synced specs/rocket.yaml" in result.stdout
    stack.settle()

    assert [(w["method"], w["path"]) for w in stack.writes()] == []
    # The link still names the commit where the spec file last changed.
    assert stack.issue(REPO, tracking)["body"] == first
    assert len(numbers) == 5
