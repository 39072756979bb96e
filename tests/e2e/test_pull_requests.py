"""Pull requests end to end: real web process and workers, and the GitHub
double over HTTP. A pull request's spec files are checked on its head, with
the plan of its merge, and the merge opens exactly what was planned."""

from __future__ import annotations

import re
from typing import Any

import pytest

from fakehub.fixtures import FIXTURES
from tests.e2e.conftest import StartStack
from tests.e2e.harness import Stack, wait_until

pytestmark = pytest.mark.e2e

REPO = "acme/rocket"
CONFIG = "project:\n  owner: acme\n  number: 1\n"
VALID = """id: passwordless-login
title: Passwordless login
phase: tasks
tasks:
  - id: TSK-1
    title: Store one-time tokens
  - id: TSK-2
    title: Email the link
    depends_on: [TSK-1]
  - id: TSK-3
    title: Verify the link
    depends_on: [TSK-1]
"""
BROKEN = """id: audit
title: Audit log
phase: tasks
tasks:
  - id: AUD-1
    title: Record sign-ins
    depends_on: [AUD-9]
"""
FIXED = BROKEN.replace("[AUD-9]", "[]")


@pytest.fixture
def stack(start_stack: StartStack) -> Stack:
    # The processes get no SPECBRIDGE_* variable of ours unless named: say where the fixtures are.
    return start_stack(SPECBRIDGE_GITHUB_FIXTURES=str(FIXTURES))


def check_runs(stack: Stack, sha: str) -> list[dict[str, Any]]:
    return [r for r in stack.repo_state(REPO)["check_runs"] if r["head_sha"] == sha]


def completed_run(stack: Stack, sha: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        runs = [r for r in check_runs(stack, sha) if r["status"] == "completed"]
        return runs[0] if runs else None

    return wait_until(done, 90, f"the specbridge check on {sha[:7]}")


def test_a_pull_request_is_checked_with_its_plan_and_merged_as_planned(stack: Stack) -> None:
    stack.create_repo({"README.md": "rocket\n", ".github/specbridge.yml": CONFIG})
    stack.admin(
        "POST",
        f"repos/{REPO}/commits",
        branch="login",
        files={"specs/login.yaml": VALID, "specs/audit.yaml": BROKEN},
        message="Add two specs",
    )
    stack.settle()
    pull = stack.admin(
        "POST", f"repos/{REPO}/pulls", head="login", base="main", title="Specs", user="mona"
    )

    # 1. The broken spec fails the check at its line; the valid one's plan is the summary.
    first = completed_run(stack, pull["head"]["sha"])
    assert (first["name"], first["conclusion"]) == ("specbridge", "failure")
    assert [(a["path"], a["start_line"], a["annotation_level"]) for a in first["annotations"]] == [
        ("specs/audit.yaml", 7, "failure")
    ]
    summary = first["output"]["summary"]
    planned = re.findall(r"^  - `(TSK-\d)` ([^\n(]+?)(?: \(after|$)", summary, re.M)
    assert planned == [
        ("TSK-1", "Store one-time tokens"),
        ("TSK-2", "Email the link"),
        ("TSK-3", "Verify the link"),
    ]
    assert "```mermaid" in summary and "**Starts at once**" not in summary
    assert stack.issues(REPO) == []  # a check writes no issue

    # 2. A fix pushed to the branch gets its own run, green.
    fixed = stack.admin(
        "POST",
        f"repos/{REPO}/commits",
        branch="login",
        files={"specs/audit.yaml": FIXED},
        message="Fix the audit spec",
    )
    second = completed_run(stack, fixed["sha"])
    assert second["conclusion"] == "success"
    assert second["annotations"] == []
    assert "`AUD-1` Record sign-ins" in second["output"]["summary"]
    stack.settle()
    assert [r["conclusion"] for r in check_runs(stack, pull["head"]["sha"])] == ["failure"]

    # 3. The merge opens exactly the planned issues (and the two tracking issues).
    stack.admin("POST", f"repos/{REPO}/pulls/{pull['number']}/merge")
    stack.settle()
    titles = sorted(i["title"] for i in stack.issues(REPO))
    assert titles == sorted(
        [
            "Spec: Passwordless login",
            "Spec: Audit log",
            "TSK-1: Store one-time tokens",
            "TSK-2: Email the link",
            "TSK-3: Verify the link",
            "AUD-1: Record sign-ins",
        ]
    )
    assert stack.mismatches() == []


def test_a_person_re_runs_the_check_and_gets_a_new_run(stack: Stack) -> None:
    stack.create_repo({"README.md": "rocket\n", ".github/specbridge.yml": CONFIG})
    stack.admin("POST", f"repos/{REPO}/commits", branch="audit", files={"specs/audit.yaml": BROKEN})
    pull = stack.admin(
        "POST", f"repos/{REPO}/pulls", head="audit", base="main", title="Audit", user="mona"
    )
    sha = pull["head"]["sha"]
    first = completed_run(stack, sha)

    def runs_done(count: int) -> list[dict[str, Any]] | None:
        runs = [r for r in check_runs(stack, sha) if r["status"] == "completed"]
        return runs if len(runs) >= count else None

    # Re-run on the one check, then Re-run all checks on the commit: a new run each time.
    stack.admin("POST", f"repos/{REPO}/check-runs/{first['id']}/rerequest", user="mona")
    wait_until(lambda: runs_done(2), 90, "the re-run of the check")
    stack.admin(
        "POST", f"repos/{REPO}/check-suites/{first['check_suite_id']}/rerequest", user="mona"
    )
    wait_until(lambda: runs_done(3), 90, "the re-run of the suite")
    stack.settle()

    # Its own check_run and check_suite events (created, completed) start nothing more.
    runs = check_runs(stack, sha)
    assert [r["conclusion"] for r in runs] == ["failure"] * 3
    assert {r["check_suite_id"] for r in runs} == {first["check_suite_id"]}
    assert all(
        [(a["path"], a["start_line"]) for a in r["annotations"]] == [("specs/audit.yaml", 7)]
        for r in runs
    )
    [suite] = [s for s in stack.repo_state(REPO)["check_suites"] if s["head_sha"] == sha]
    assert (suite["status"], suite["conclusion"]) == ("completed", "failure")


def test_a_pull_request_from_a_fork_is_checked_and_writes_nothing(stack: Stack) -> None:
    stack.create_repo({"README.md": "rocket\n", ".github/specbridge.yml": CONFIG})
    stack.commit(REPO, {"specs/login.yaml": VALID})
    stack.settle()
    before = {i["number"]: (i["title"], i["state"]) for i in stack.issues(REPO)}
    edited = VALID.replace("Verify the link", "Verify the one-time link")
    stack.admin(
        "POST",
        f"repos/{REPO}/commits",
        branch="patch-1",
        files={
            "specs/login.yaml": edited.replace(
                "  - id: TSK-3", "  - id: TSK-4\n    title: Rate-limit\n  - id: TSK-3"
            )
        },
        user="stranger",
    )
    stack.settle()
    stack.reset_requests()
    pull = stack.admin(
        "POST",
        f"repos/{REPO}/pulls",
        head="patch-1",
        base="main",
        title="Tweak",
        user="stranger",
        head_repo_fork=True,
    )

    run = completed_run(stack, pull["head"]["sha"])
    stack.settle()
    assert run["conclusion"] == "success"
    tsk3 = next(n for n, (title, _) in before.items() if title.startswith("TSK-3"))
    assert f"**Changes** #{tsk3} `TSK-3`: title" in run["output"]["summary"]
    assert "`TSK-4` Rate-limit" in run["output"]["summary"]
    assert {i["number"]: (i["title"], i["state"]) for i in stack.issues(REPO)} == before
    writes = {(w["method"], w["path"].split("?")[0].rsplit("/", 1)[0]) for w in stack.writes()}
    assert writes <= {("POST", f"/repos/{REPO}"), ("PATCH", f"/repos/{REPO}/check-runs")}
