"""A run's outcome follows its pull request: merged, closed unmerged, reopened."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from bot.events.handlers.pull_request import on_agent_pull_request_outcome
from bot.events.router import Event
from bot.settings import Settings
from storage.models import Repository, Spec, SpecStatus, Task, TaskStatus, Ticket
from tests.support import github_payload

FULL_NAME = "Codertocat/Hello-World"  # the payload's


@pytest.fixture
def runs(session: Session) -> list[Task]:
    """A first run that opened #2, and a revision of it; a run of another pull request."""
    repository = Repository(full_name=FULL_NAME)
    spec = Spec(
        repository=repository,
        key="s",
        path="specs/s.yaml",
        title="S",
        phase="tasks",
        status=SpecStatus.PLANNED,
    )
    ticket = Ticket(repository=repository, spec=spec, issue_number=1)
    first = Task(ticket=ticket, agent="a", status=TaskStatus.SUCCEEDED, pull_request_number=2)
    revision = Task(
        ticket=ticket, agent="a", status=TaskStatus.SUCCEEDED, pull_request_number=2, revision=1
    )
    other = Task(ticket=ticket, agent="a", status=TaskStatus.SUCCEEDED, pull_request_number=9)
    session.add_all([repository, spec, ticket, first, revision, other])
    session.commit()
    return [first, revision, other]


def deliver(session: Session, settings: Settings, action: str, merged: bool) -> None:
    payload = github_payload("pull_request", "closed.payload.json")
    payload["action"] = action
    payload["pull_request"]["merged"] = merged
    payload["pull_request"]["merged_at"] = "2026-12-07T10:00:00Z" if merged else None
    on_agent_pull_request_outcome(Event("pull_request", payload, "d", settings, session))


def test_merged_pull_request_marks_every_run_on_it(
    session: Session, handler_settings: Settings, runs: list[Task]
) -> None:
    deliver(session, handler_settings, "closed", merged=True)

    first, revision, other = runs
    for task in (first, revision):
        session.refresh(task)
        assert task.pull_request_outcome == "merged"
        assert task.merged_at is not None
        assert task.merged_at.replace(tzinfo=UTC) == datetime(2026, 12, 7, 10, tzinfo=UTC)
    session.refresh(other)
    assert other.pull_request_outcome is None


def test_closed_unmerged_then_reopened(
    session: Session, handler_settings: Settings, runs: list[Task]
) -> None:
    deliver(session, handler_settings, "closed", merged=False)
    session.refresh(runs[0])
    assert (runs[0].pull_request_outcome, runs[0].merged_at) == ("closed", None)

    deliver(session, handler_settings, "reopened", merged=False)
    session.refresh(runs[0])
    assert runs[0].pull_request_outcome == "open"
