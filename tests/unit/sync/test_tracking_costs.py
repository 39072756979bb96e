"""The tracking issue says what agents' work on the spec cost: per task its pull request,
runs and cost; the spec's total and share merged; and its final comment the total."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from bot.repo_config import parse_repo_config
from bot.sync import render
from storage.models import (
    IssueState,
    Repository,
    Spec,
    SpecStatus,
    SpecTask,
    Task,
    TaskStatus,
    Ticket,
)

NOW = datetime.now(UTC)


def a_spec(session: Session) -> Spec:
    config, _ = parse_repo_config(b"budget: {usd: 5}\n")
    repository = Repository(full_name="acme/rocket", settings=config.as_dict())
    spec = Spec(
        repository=repository,
        key="rocket",
        path="specs/rocket.yaml",
        title="Rocket",
        phase="tasks",
        status=SpecStatus.PLANNED,
    )
    tickets = []
    for number, key in enumerate(("T-1", "T-2", "T-3"), start=1):
        task = SpecTask(spec=spec, key=key, title=key, position=number)
        tickets.append(
            Ticket(repository=repository, spec=spec, spec_task=task, issue_number=number)
        )
    one, two, _three = tickets
    session.add_all(
        [
            Task(
                ticket=one,
                agent="a",
                status=TaskStatus.SUCCEEDED,
                started_at=NOW,
                cost_usd=1.25,
                input_tokens=1000,
                output_tokens=200,
                pull_request_number=7,
                pull_request_outcome="merged",
            ),
            Task(
                ticket=one,
                agent="a",
                status=TaskStatus.SUCCEEDED,
                started_at=NOW,
                cost_usd=0.5,
                input_tokens=100,
                output_tokens=20,
                pull_request_number=7,
                pull_request_outcome="merged",
                revision=1,
            ),
            Task(
                ticket=two,
                agent="a",
                status=TaskStatus.SUCCEEDED,
                started_at=NOW,
                cost_usd=1.0,
                input_tokens=300,
                output_tokens=30,
                pull_request_number=8,
                pull_request_outcome="open",
            ),
        ]
    )
    session.add(spec)
    session.commit()
    return spec


def test_the_tracking_issue_lists_each_tasks_pull_request_runs_and_cost(
    session: Session,
) -> None:
    spec = a_spec(session)

    body = render.tracking_body(spec, spec.tickets)

    assert "| #1 T-1 | #7 merged | 2 | $1.75 |" in body
    assert "| #2 T-2 | #8 open | 1 | $1.00 |" in body
    assert "#3 T-3 |" not in body  # no agent ran on it yet
    assert (
        "**Spent:** $2.75 on 3 runs (1,650 tokens); 1 of 2 pull requests merged (50%). "
        "Budget: $5.00." in body
    )


def test_a_spec_no_agent_worked_shows_no_costs(session: Session) -> None:
    spec = a_spec(session)
    for ticket in spec.tickets:
        for task in list(ticket.tasks):
            session.delete(task)
    session.commit()
    session.expire_all()

    assert "Agents' work" not in render.tracking_body(spec, spec.tickets)


def test_the_final_comment_says_what_the_spec_cost(session: Session) -> None:
    spec = a_spec(session)
    for ticket in spec.tickets:
        ticket.state, ticket.state_reason = IssueState.CLOSED, "completed"

    said = render.completion_comment(spec, spec.tickets)

    assert said.endswith(
        "Agents' work on it: $2.75 on 3 runs (1,650 tokens); 1 of 2 pull requests merged "
        "(50%). Budget: $5.00."
    )
