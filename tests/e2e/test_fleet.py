"""A fleet of agents against the double, with several workers on one Redis: a cap
holds across workers, two tasks naming the same file never run at once, and tasks
marked parallel do; an agent's pull request gets the moved base merged in, and a
conflict with it is resolved by a revision of the agent; two attempts at one task open
two drafts, the first to pass its checks is marked ready (none with `pick: manual`), and
merging one closes the other and counts it won."""

from __future__ import annotations

import re
import subprocess
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from storage.db import session_scope
from storage.models import Task, TaskStatus, Ticket
from tests.e2e.conftest import StartStack
from tests.e2e.harness import Stack, wait_until

pytestmark = pytest.mark.e2e

REPO = "acme/rocket"
PROFILES = """\
sleeper:
  command: sleep 3; cp "$SPECBRIDGE_TASK_FILE" "task-$SPECBRIDGE_ISSUE.md"
  timeout: 60
  max_parallel: 2
"""


def _start(start_stack: StartStack, tmp_path: Path, workspaces: Path, workers: int) -> Stack:
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(PROFILES)
    stack = start_stack(
        own_redis=True,
        SPECBRIDGE_AGENTS=str(profiles),
        TMPDIR=str(workspaces),
        SPECBRIDGE_HEARTBEAT_SECONDS="1",
    )
    for _ in range(workers - 2):
        stack.add_worker()
    stack.create_repo({"README.md": "rocket\n"})
    return stack


def _runs(stack: Stack) -> dict[str, tuple[datetime, datetime]]:
    """Each task's run (by spec task id): when it started and ended."""
    with session_scope(stack.database_url) as session:
        rows = session.execute(
            select(Ticket.issue_number, Task.status, Task.started_at, Task.finished_at)
            .join(Task.ticket)
            .order_by(Task.id)
        ).all()
        titles = {i["number"]: i["title"].split(":")[0] for i in stack.issues(REPO)}
    assert all(status is TaskStatus.SUCCEEDED for _, status, _, _ in rows), rows
    return {titles[number]: (start, end) for number, _, start, end in rows}


def _most_at_once(runs: list[tuple[datetime, datetime]]) -> int:
    edges = sorted([(start, 1) for start, _ in runs] + [(end, -1) for _, end in runs])
    most = count = 0
    for _, change in edges:
        count += change
        most = max(most, count)
    return most


def _overlap(first: tuple[datetime, datetime], second: tuple[datetime, datetime]) -> bool:
    return first[0] < second[1] and second[0] < first[1]


def test_max_parallel_two_never_has_more_than_two_runs_across_four_workers(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    stack = _start(start_stack, tmp_path, workspaces, workers=4)
    tasks = "\n".join(
        f"  - {{id: T-{n}, title: Part {n}, files: [src/part{n}.py]}}" for n in range(5)
    )
    stack.commit(
        REPO, {"specs/parts.yaml": f"title: Parts\nphase: tasks\nagent: sleeper\ntasks:\n{tasks}\n"}
    )
    stack.settle(timeout=180)

    runs = _runs(stack)
    assert len(runs) == 5
    assert _most_at_once(list(runs.values())) == 2


def test_tasks_naming_one_file_take_turns_and_parallel_ones_run_together(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    stack = _start(start_stack, tmp_path, workspaces, workers=2)
    stack.commit(
        REPO,
        {
            "specs/same.yaml": textwrap.dedent("""\
            title: Same file
            phase: tasks
            agent: sleeper
            tasks:
              - {id: S-1, title: Add a route, files: [src/app.py]}
              - {id: S-2, title: Add another route, files: ["src/*.py"]}
            """)
        },
    )
    stack.settle(timeout=120)
    same = _runs(stack)
    assert not _overlap(same["S-1"], same["S-2"])

    stack.commit(
        REPO,
        {
            "specs/apart.yaml": textwrap.dedent("""\
            title: Apart
            phase: tasks
            agent: sleeper
            tasks:
              - {id: P-1, title: Write the guide, parallel: true}
              - {id: P-2, title: Write the changelog, parallel: true}
            """)
        },
    )
    stack.settle(timeout=120)
    apart = _runs(stack)
    assert _overlap(apart["P-1"], apart["P-2"])


COPIER = """\
default:
  command: cp "$SPECBRIDGE_TASK_FILE" "task-$SPECBRIDGE_ISSUE.md"
  timeout: 60
"""


def _git(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """git on the double's own repository of acme/rocket."""
    bare = next((stack.workdir / "hub").rglob("rocket.git"))
    return subprocess.run(["git", *args], cwd=bare, capture_output=True, text=True)


def _contains(stack: Stack, branch: str, ref: str = "main") -> bool:
    return _git(stack, "merge-base", "--is-ancestor", ref, branch).returncode == 0


def test_a_pull_request_whose_base_moved_is_updated_and_a_conflict_gets_a_revision(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(COPIER)
    stack = start_stack(
        SPECBRIDGE_AGENTS=str(profiles), TMPDIR=str(workspaces), SPECBRIDGE_HEARTBEAT_SECONDS="1"
    )
    stack.create_repo({"README.md": "rocket\n"})
    stack.commit(
        REPO,
        {
            "specs/fresh.yaml": "title: Fresh\nphase: tasks\ntasks:\n"
            "  - {id: T-A, title: Write the notes}\n"
        },
    )
    stack.settle()
    branch = "specbridge/fresh/T-A"
    pull = next(p for p in stack.repo_state(REPO)["pull_requests"] if p["head"]["ref"] == branch)
    issue = int(pull["body"].split("#")[1].split()[0])
    person_head = _git(stack, "rev-parse", branch).stdout.strip()

    stack.commit(REPO, {"CHANGELOG.md": "a person's change\n"}, message="Unrelated change")
    stack.settle()

    assert _contains(stack, branch)  # the base merged in
    assert _contains(stack, branch, person_head)  # on top of what was there: no force
    parents = _git(stack, "rev-list", "--parents", "-n", "1", branch).stdout.split()
    assert len(parents) == 3  # a merge commit

    stack.commit(REPO, {f"task-{issue}.md": "a person's version\n"}, message="Conflicting")
    stack.settle()

    said = [c["body"] for c in stack.comments(REPO, pull["number"])]
    assert any("now conflicts with this branch in" in s and f"task-{issue}.md" in s for s in said)
    with session_scope(stack.database_url) as session:
        tasks = session.scalars(select(Task).order_by(Task.id)).all()
        last = tasks[-1]
        assert (last.status, last.revision) == (TaskStatus.SUCCEEDED, 1), last.error
        assert last.merges_base is not None
    assert _contains(stack, branch)
    resolved = _git(stack, "show", f"{branch}:task-{issue}.md").stdout
    assert "<<<<<<<" not in resolved and resolved.strip()
    label_writes = [(w["method"], w["path"]) for w in stack.writes() if "/labels" in w["path"]]
    labelled = f"/repos/{REPO}/issues/{pull['number']}/labels"
    assert ("POST", labelled) in label_writes  # shown conflicted while it was
    assert ("DELETE", f"{labelled}/specbridge: conflict") in label_writes  # then not

    stack.admin("POST", f"repos/{REPO}/pulls/{pull['number']}/merge")
    stack.settle()
    assert stack.issue(REPO, issue)["state"] == "closed"


# Each attempt writes its usage, for the comparison's cost, and its checkout's path: two
# attempts ending in the same second would otherwise push the very same commit.
TWICE = """\
default:
  command: >-
    cp "$SPECBRIDGE_TASK_FILE" "task-$SPECBRIDGE_ISSUE.md" && pwd >> "task-$SPECBRIDGE_ISSUE.md" &&
    echo '{"input_tokens": 1000, "output_tokens": 250, "cost_usd": 1.25}' > "$SPECBRIDGE_USAGE_FILE"
  test: test -s "task-$SPECBRIDGE_ISSUE.md"
  timeout: 60
  attempts: 2
"""


def _attempts(
    start_stack: StartStack, tmp_path: Path, workspaces: Path, task: str
) -> tuple[Stack, int, dict[str, Any], dict[str, Any]]:
    """Two attempts at one task, each with its draft, the check `tests` required on main
    and not yet reported: the stack, the issue, and the two pull requests."""
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(TWICE)
    stack = start_stack(
        SPECBRIDGE_AGENTS=str(profiles), TMPDIR=str(workspaces), SPECBRIDGE_HEARTBEAT_SECONDS="1"
    )
    stack.create_repo({"README.md": "rocket\n"})
    stack.admin("POST", f"repos/{REPO}/protect", required_checks=["tests"])
    stack.commit(REPO, {"specs/two.yaml": f"title: Two\nphase: tasks\ntasks:\n  - {task}\n"})
    stack.settle()
    pulls = {p["head"]["ref"]: p for p in stack.repo_state(REPO)["pull_requests"]}
    assert sorted(pulls) == ["specbridge/two/T-A/1", "specbridge/two/T-A/2"]
    assert all(p["draft"] and p["state"] == "open" for p in pulls.values())
    first, second = pulls["specbridge/two/T-A/1"], pulls["specbridge/two/T-A/2"]
    issue = int(first["body"].split("#")[1].split()[0])
    return stack, issue, first, second


def _compared(stack: Stack, issue: int) -> str:
    [compared] = [c["body"] for c in stack.comments(REPO, issue) if "Every attempt" in c["body"]]
    return compared


def _tests_pass(stack: Stack, pull: dict[str, Any]) -> None:
    sha = pull["head"]["sha"]
    stack.admin(
        "POST", f"repos/{REPO}/check-runs", head_sha=sha, name="tests", conclusion="success"
    )
    stack.settle()


def _draft(stack: Stack, pull: dict[str, Any]) -> bool:
    return bool(
        requests.get(f"{stack.hub}/repos/{REPO}/pulls/{pull['number']}", timeout=30).json()["draft"]
    )


def test_two_attempts_open_two_drafts_the_first_to_pass_is_ready_and_merging_it_closes_the_other(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    stack, issue, first, second = _attempts(
        start_stack, tmp_path, workspaces, "{id: T-A, title: Fly}"
    )
    compared = _compared(stack, issue)
    for pull in (first, second):
        row = next(line for line in compared.splitlines() if f"| #{pull['number']} |" in line)
        # tests passed, the required check not reported yet, one file added, the usage's cost
        assert re.search(r"\| passed \| pending \| \+\d+ -0 in 1 file \| \$1\.25 \|$", row), row
    assert "The first to pass its checks is marked ready for review" in compared

    _tests_pass(stack, second)  # the second attempt passes first
    assert not _draft(stack, second)
    assert _draft(stack, first)
    _tests_pass(stack, first)
    assert _draft(stack, first)  # the other stays a draft
    said = [c["body"] for c in stack.comments(REPO, issue)]
    assert any(
        f"passed on #{first['number']}" in s
        and f"it stays a draft: #{second['number']}, another attempt, passed its checks first" in s
        for s in said
    )

    stack.admin("POST", f"repos/{REPO}/pulls/{second['number']}/merge")
    stack.settle()

    assert stack.issue(REPO, issue)["state"] == "closed"
    after = {p["number"]: p for p in stack.repo_state(REPO)["pull_requests"]}
    assert after[first["number"]]["state"] == "closed" and not after[first["number"]]["merged"]
    said = stack.comments(REPO, first["number"])[-1]["body"]
    assert f"Closed: #{second['number']} (attempt 2" in said
    [row] = stack.report(REPO)
    assert (row["profile"], row["attempts_run"], row["attempts_won"]) == ("default", 2, 1)


def test_with_pick_manual_both_attempts_stay_drafts_when_their_checks_pass(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    stack, issue, first, second = _attempts(
        start_stack, tmp_path, workspaces, "{id: T-A, title: Fly, pick: manual}"
    )
    assert "None is marked ready for review (`pick: manual`): people pick." in _compared(
        stack, issue
    )

    _tests_pass(stack, first)
    _tests_pass(stack, second)

    assert _draft(stack, first) and _draft(stack, second)
    said = [c["body"] for c in stack.comments(REPO, issue)]
    assert sum("people pick one of the attempts (`pick: manual`)" in s for s in said) == 2


QUICK_AND_SLOW = """\
quick:
  command: cp "$SPECBRIDGE_TASK_FILE" "task-$SPECBRIDGE_ISSUE.md"
  timeout: 60
slow:
  command: sleep 8; cp "$SPECBRIDGE_TASK_FILE" "task-$SPECBRIDGE_ISSUE.md"
  timeout: 60
"""


def test_an_attempt_that_passes_while_another_runs_is_marked_ready_once_that_one_ends(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(QUICK_AND_SLOW)
    stack = start_stack(
        SPECBRIDGE_AGENTS=str(profiles), TMPDIR=str(workspaces), SPECBRIDGE_HEARTBEAT_SECONDS="1"
    )
    stack.create_repo({"README.md": "rocket\n"}, collaborators={"maintainer": "write"})
    stack.admin("POST", f"repos/{REPO}/protect", required_checks=["tests"])
    spec = "title: Two\nphase: tasks\nagent: manual\ntasks:\n  - {id: T-A, title: Fly}\n"
    stack.commit(REPO, {"specs/two.yaml": spec})
    stack.settle()
    issue = next(i["number"] for i in stack.issues(REPO) if i["title"].startswith("T-A"))
    stack.admin(
        "POST",
        f"repos/{REPO}/issues/{issue}/comments",
        user="maintainer",
        body="/attempt quick slow",
        author_association="COLLABORATOR",
    )

    def pull(branch: str) -> dict[str, Any] | None:
        pulls = stack.repo_state(REPO)["pull_requests"]
        return next((p for p in pulls if p["head"]["ref"] == branch), None)

    quick = wait_until(lambda: pull("specbridge/two/T-A/1"), 60, "the quick attempt's draft")
    assert pull("specbridge/two/T-A/2") is None  # the slow one still runs
    _tests_pass(stack, quick)  # while it runs: the run owns the card

    stack.settle()
    slow = pull("specbridge/two/T-A/2")
    assert slow is not None and _draft(stack, slow)
    assert not _draft(stack, quick)  # looked at again once the slow one ended
