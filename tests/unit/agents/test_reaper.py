"""Agent tasks whose run was lost: a queued Task whose job is gone (the embedded server
killed, Redis restarted empty) is queued again; one whose worker died is run again on a
job of its own."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import responses
from sqlalchemy.orm import Session

from bot.agents.reaper import reap_stale_planning_runs, reap_stale_tasks, requeue_stranded_tasks
from bot.agents.scheduler import queue_task
from bot.settings import Settings
from storage.models import (
    PlanningRun,
    PlanningStatus,
    Repository,
    SpecPhase,
    Task,
    TaskStatus,
    Ticket,
)
from tests.support import MOCK_API
from tests.unit.conftest import HeldJob

REPO = "acme/rocket"


@pytest.fixture
def ticket(session: Session) -> Ticket:
    repository = Repository(full_name=REPO)
    ticket = Ticket(repository=repository, issue_number=1)
    session.add_all([repository, ticket])
    session.commit()
    return ticket


def _task(session: Session, ticket: Ticket, minutes_ago: float, **values: object) -> Task:
    queued_at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    task = Task(ticket=ticket, agent="default", queued_at=queued_at, **values)
    session.add(task)
    session.commit()
    return task


def test_a_queued_task_whose_job_is_gone_is_queued_again(
    session: Session, handler_settings: Settings, ticket: Ticket, held_jobs: list[HeldJob]
) -> None:
    lost = _task(session, ticket, 5, status=TaskStatus.QUEUED, rq_job_id="task-lost")
    before_jobs = _task(session, ticket, 5, status=TaskStatus.QUEUED)  # queued by an older bot

    assert requeue_stranded_tasks(handler_settings) == 2

    assert sorted((job.args, job.job_id) for job in held_jobs) == [
        ((lost.id,), f"task-{lost.id}-0"),
        ((before_jobs.id,), f"task-{before_jobs.id}-0"),
    ]
    assert requeue_stranded_tasks(handler_settings) == 0  # their jobs now wait


def test_a_task_whose_job_waits_or_that_was_queued_a_moment_ago_is_left(
    session: Session, handler_settings: Settings, ticket: Ticket, held_jobs: list[HeldJob]
) -> None:
    waiting = queue_task(session, handler_settings, ticket)  # its job is held, pending
    session.get_one(Task, waiting.id).queued_at = datetime.now(UTC) - timedelta(minutes=5)
    _task(session, ticket, 0, status=TaskStatus.QUEUED, rq_job_id="task-being-queued")
    _task(session, ticket, 5, status=TaskStatus.RUNNING, rq_job_id="task-running")
    _task(session, ticket, 5, status=TaskStatus.FAILED, rq_job_id="task-failed")

    assert requeue_stranded_tasks(handler_settings) == 0
    assert len(held_jobs) == 1


@responses.activate
def test_a_task_whose_worker_died_runs_again_on_a_job_of_its_own(
    session: Session, handler_settings: Settings, ticket: Ticket, held_jobs: list[HeldJob]
) -> None:
    """Not the dead run's job id: RQ's bookkeeping of the dead job would touch the new one."""
    responses.post(f"{MOCK_API}/repos/{REPO}/issues/1/comments", json={}, status=201)
    silent = datetime.now(UTC) - timedelta(minutes=5)
    dead = _task(
        session,
        ticket,
        10,
        status=TaskStatus.RUNNING,
        attempts=1,
        heartbeat_at=silent,
        rq_job_id="task-x-0",
    )

    assert reap_stale_tasks(handler_settings) == 1

    session.refresh(dead)
    assert (dead.status, dead.rq_job_id) == (TaskStatus.QUEUED, f"task-{dead.id}-1")
    assert [job.job_id for job in held_jobs] == [f"task-{dead.id}-1"]


def _planning_run(session: Session, ticket: Ticket, attempts: int, silent_for: float) -> int:
    heard = datetime.now(UTC) - timedelta(minutes=silent_for)
    run = PlanningRun(
        repository=ticket.repository,
        issue_number=9,
        title="Launch button",
        asked_by="maintainer",
        phase=SpecPhase.DESIGN,
        status=PlanningStatus.RUNNING,
        agent="planner",
        attempts=attempts,
        started_at=heard,
        heartbeat_at=heard,
    )
    session.add(run)
    session.commit()
    return run.id


@responses.activate
def test_a_planning_run_whose_worker_died_is_run_again_then_failed_and_the_idea_told(
    session: Session, handler_settings: Settings, ticket: Ticket, held_jobs: list[HeldJob]
) -> None:
    """Before, it stayed "the planner is writing the design" on the idea's issue for good."""
    told = responses.post(f"{MOCK_API}/repos/{REPO}/issues/9/comments", json={}, status=201)
    first = _planning_run(session, ticket, attempts=1, silent_for=5)
    last = _planning_run(session, ticket, attempts=3, silent_for=5)
    _planning_run(session, ticket, attempts=1, silent_for=0)  # alive: beating now

    assert reap_stale_planning_runs(handler_settings) == 2

    session.expire_all()
    assert session.get_one(PlanningRun, first).status is PlanningStatus.QUEUED
    assert [(job.name, job.args, job.job_id) for job in held_jobs] == [
        ("run_planning", (first,), f"planning-{first}-1")
    ]
    failed = session.get_one(PlanningRun, last)
    assert failed.status is PlanningStatus.FAILED and "stopped responding 3 times" in (
        failed.error or ""
    )
    bodies = [json.loads(call.request.body)["body"] for call in told.calls]
    assert "the design is written again" in bodies[0]
    assert "Comment `/specify continue` to run it again" in bodies[1]
    assert reap_stale_planning_runs(handler_settings) == 0
