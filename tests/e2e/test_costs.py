"""What agents cost, end to end: a spec of three tasks worked by a `command:` profile that
writes its usage file, under a budget that allows two runs. The third waits with one
comment; a writer's `/budget` changes nothing, a maintainer's lets it run; the report,
`/metrics`, the status page and the tracking issue agree on the totals."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from storage.db import session_scope
from storage.models import Task, TaskStatus, Ticket
from tests.e2e.conftest import StartStack
from tests.e2e.harness import Stack, wait_until

pytestmark = pytest.mark.e2e

REPO = "acme/rocket"
TOKEN = "costs-status-token"
USAGE = {"input_tokens": 1000, "output_tokens": 250, "cost_usd": 1.25, "model": "house-1"}
PROFILES = f"""\
metered:
  command: >-
    echo done > "work-$SPECBRIDGE_ISSUE.txt" &&
    echo '{json.dumps(USAGE)}' > "$SPECBRIDGE_USAGE_FILE"
  timeout: 60
"""
CONFIG = """\
project: {owner: acme, number: 1}
budget:
  specs:
    rocket: {usd: 2.5}
"""
SPEC = textwrap.dedent("""\
    title: Rocket
    phase: tasks
    agent: metered
    tasks:
      - {id: T-1, title: Build the engine}
      - {id: T-2, title: Fuel it}
      - {id: T-3, title: Paint it}
    """)


def _start(start_stack: StartStack, tmp_path: Path, workspaces: Path) -> Stack:
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(PROFILES)
    stack = start_stack(
        SPECBRIDGE_AGENTS=str(profiles),
        TMPDIR=str(workspaces),
        SPECBRIDGE_STATUS_TOKEN=TOKEN,
    )
    stack.create_repo(
        {"README.md": "rocket\n", ".github/specbridge.yml": CONFIG},
        collaborators={"maintainer": "admin", "writer": "write"},
    )
    stack.commit(REPO, {"specs/rocket.yaml": SPEC})
    stack.settle(timeout=180)
    return stack


def _runs(stack: Stack) -> list[Task]:
    with session_scope(stack.database_url) as session:
        tasks = list(session.scalars(select(Task).order_by(Task.id)))
        for task in tasks:
            session.expunge(task)
        return tasks


def _issue_of(stack: Stack, task_id: int) -> int:
    with session_scope(stack.database_url) as session:
        query = select(Ticket.issue_number).join(Task.ticket).where(Task.id == task_id)
        return session.scalars(query).one()


def _say(stack: Stack, number: int, user: str, body: str) -> None:
    stack.admin(
        "POST",
        f"repos/{REPO}/issues/{number}/comments",
        user=user,
        body=body,
        author_association="COLLABORATOR",
    )
    stack.settle(timeout=180)


def _metrics(stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(f"{stack.bot}/metrics", timeout=30).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_budget_holds_the_third_run_until_a_maintainer_raises_it_and_totals_agree(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    stack = _start(start_stack, tmp_path, workspaces)

    runs = _runs(stack)
    assert sorted(t.status for t in runs) == sorted(
        [TaskStatus.SUCCEEDED, TaskStatus.SUCCEEDED, TaskStatus.WAITING]
    ), stack.logs()
    [held] = [t for t in runs if t.status is TaskStatus.WAITING]
    assert held.budget_hold and "the spec `rocket`" in held.budget_hold
    issue = _issue_of(stack, held.id)
    [waits] = [c["body"] for c in stack.comments(REPO, issue)]
    # Two workers: the second run may still be going when the third would start.
    assert "This task waits: the spec `rocket` has spent $" in waits and "of $2.50" in waits
    assert "`/budget rocket +N`" in waits
    assert stack.board(REPO)[issue] == "Backlog"  # it waits in its column

    page = requests.get(f"{stack.bot}/", auth=("ops", TOKEN), timeout=30).text
    assert f'data-task="{held.id}"' in page and "waits: the spec `rocket`: $" in page
    _say(stack, issue, "writer", "/budget rocket +5")
    assert _runs(stack)[-1].budget_hold is not None
    assert "needs admin access" in stack.comments(REPO, issue)[-1]["body"]

    _say(stack, issue, "maintainer", "/budget rocket +1.25")
    wait_until(lambda: all(t.status is TaskStatus.SUCCEEDED for t in _runs(stack)), 120)
    stack.settle(timeout=120)
    said = [c["body"] for c in stack.comments(REPO, issue)]
    assert any("Added $1.25 to the budget of the spec `rocket`" in s for s in said), said
    assert any(s.startswith("The agent finished") for s in said)

    runs = _runs(stack)
    for run in runs:
        assert (run.input_tokens, run.output_tokens, run.cost_usd) == (1000, 250, 1.25)
        assert (run.preset, run.model, run.exit_reason) == ("command", "house-1", "completed")
        assert run.pull_request_outcome == "open"
    # Every place says the same: 3 runs, $3.75, 3,000 tokens in and 750 out.
    [row] = stack.report(REPO)
    assert (row["profile"], row["model"], row["runs"], row["open"]) == ("metered", "house-1", 3, 3)
    assert (row["cost_usd"], row["input_tokens"], row["output_tokens"]) == (3.75, 3000, 750)
    samples = _metrics(stack)
    assert samples["specbridge_agent_cost_usd_total", (("profile", "metered"),)] == 3.75
    tokens = "specbridge_agent_tokens_total"
    assert samples[tokens, (("direction", "input"), ("profile", "metered"))] == 3000
    assert samples[tokens, (("direction", "output"), ("profile", "metered"))] == 750
    pulls = "specbridge_agent_pull_requests"
    assert samples[pulls, (("outcome", "open"), ("profile", "metered"))] == 3
    page = requests.get(f"{stack.bot}/", auth=("ops", TOKEN), timeout=30).text
    row_html = page.split('data-profile="metered"')[1].split("</tr>")[0]
    assert 'data-value="3.75">3.75</td>' in row_html
    wait_until(  # written a few seconds after the last run's end; 2.50, and 1.25 more
        lambda: (
            "**Spent:** $3.75 on 3 runs (3,750 tokens); 0 of 3 pull requests merged "
            "(0%). Budget: $3.75." in stack.issue_titled(REPO, "Spec: Rocket")["body"]
        ),
        30,
        "the tracking issue to show the spec's cost and budget",
    )
    assert stack.mismatches() == []


def test_settings_pushed_with_a_higher_cap_let_the_waiting_task_run(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(PROFILES)
    # With Redis, two workers: the second run waits for the first to say what it cost.
    stack = start_stack(SPECBRIDGE_AGENTS=str(profiles), TMPDIR=str(workspaces))
    config = "project: {owner: acme, number: 1}\nbudget: {tokens: 1000}\n"
    stack.create_repo({"README.md": "rocket\n", ".github/specbridge.yml": config})
    two_tasks = SPEC.split("  - {id: T-3")[0]
    stack.commit(REPO, {"specs/rocket.yaml": two_tasks})
    stack.settle(timeout=180)
    runs = _runs(stack)
    assert sorted(t.status for t in runs) == sorted([TaskStatus.WAITING, TaskStatus.SUCCEEDED]), [
        (t.status, t.budget_hold, t.error) for t in runs
    ]
    [held] = [t for t in runs if t.status is TaskStatus.WAITING]
    said = [c["body"] for c in stack.comments(REPO, _issue_of(stack, held.id))]
    [waits] = [s for s in said if "This task waits" in s]
    assert said == [waits], said  # one comment, no other
    assert "has spent 1,250 of 1,000 tokens" in waits
    assert "`/budget rocket +N tokens`" in waits

    raised = config.replace("tokens: 1000", "tokens: 5000")
    stack.commit(REPO, {".github/specbridge.yml": raised}, message="More tokens for agents")
    stack.settle(timeout=180)

    assert [t.status for t in _runs(stack)] == [TaskStatus.SUCCEEDED] * 2
    wait_until(  # written a few seconds after the run's end
        lambda: (
            "on 2 runs (2,500 tokens); 0 of 2 pull requests merged (0%). Budget: 5,000 "
            "tokens." in stack.issue_titled(REPO, "Spec: Rocket")["body"]
        ),
        30,
        "the tracking issue to show the spec's cost and budget",
    )
