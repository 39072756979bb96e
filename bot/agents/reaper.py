"""Tasks and planning runs whose worker died: found by their silent heartbeat, run
again or failed, and said so on the ticket's (or the idea's) issue. Queued tasks whose
job was lost (the embedded server killed, Redis restarted empty): queued again."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select

from bot.agents.costs import record_lost_attempt
from bot.agents.failure import show_task_failed
from bot.agents.planning import MAX_ATTEMPTS as PLANNING_ATTEMPTS
from bot.agents.planning import queue_planning_again
from bot.agents.run import MAX_ATTEMPTS, STALE_AFTER_BEATS
from bot.agents.scheduler import enqueue_task, queue_run, stranded, task_job_id
from bot.github import RepositoryGateway, github_client
from bot.logs import log_context
from bot.settings import Settings
from storage.db import session_scope
from storage.models import PlanningRun, PlanningStatus, Task, TaskStatus


@dataclass(frozen=True)
class _Reaped:
    task_id: int
    agent: str
    job_id: str | None  # the job of its next run; None: it failed
    attempts: int
    full_name: str
    installation: int | None
    issue: int

    @property
    def again(self) -> bool:
        return self.job_id is not None


log = logging.getLogger(__name__)


def _silent_since(settings: Settings) -> datetime:
    """A run whose last heartbeat is older than this has lost its worker."""
    return datetime.now(UTC) - timedelta(
        seconds=settings.task_heartbeat_seconds * STALE_AFTER_BEATS
    )


def reap_stale_tasks(settings: Settings) -> int:
    """Tasks left running by a worker that died: queue them again, or fail them."""
    cutoff = _silent_since(settings)
    reaped: list[_Reaped] = []
    with session_scope(settings.database_url) as session:
        stale = session.scalars(
            select(Task).where(
                Task.status == TaskStatus.RUNNING,
                Task.heartbeat_at < cutoff,
                # Handed to an agent GitHub runs: no worker holds it (bot/agents/hosted.py).
                Task.dispatched_at.is_(None),
            )
        ).all()
        for task in stale:
            record_lost_attempt(task)  # its usage, if its agent ended, is recorded already
            again = task.attempts < MAX_ATTEMPTS
            if again:
                task.status = TaskStatus.QUEUED
                task.rq_job_id = task_job_id(task)
            else:
                task.status = TaskStatus.FAILED
                task.error = "its worker stopped responding, too many times"
                task.finished_at = datetime.now(UTC)
            repository = task.ticket.repository
            reaped.append(
                _Reaped(
                    task.id,
                    task.agent,
                    task.rq_job_id if again else None,
                    task.attempts,
                    repository.full_name,
                    repository.installation_github_id,
                    task.ticket.issue_number,
                )
            )
    for task in reaped:
        with log_context(task=task.task_id, repository=task.full_name, issue=task.issue):
            if task.job_id is not None:
                enqueue_task(settings, task.task_id, task.agent, task.job_id)
            _report(settings, task)
    return len(reaped)


def reap_stale_planning_runs(settings: Settings) -> int:
    """Planning runs left running by a worker that died: queued again, or failed."""
    cutoff = _silent_since(settings)
    told: list[tuple[str, int | None, int, str]] = []  # repository, installation, issue, what
    with session_scope(settings.database_url) as session:
        stale = session.scalars(
            select(PlanningRun)
            .where(
                PlanningRun.status == PlanningStatus.RUNNING,
                or_(
                    PlanningRun.heartbeat_at < cutoff,
                    # running since before heartbeats were written
                    and_(PlanningRun.heartbeat_at.is_(None), PlanningRun.started_at < cutoff),
                ),
            )
            .order_by(PlanningRun.id)
        ).all()
        for run in stale:
            again = run.attempts < PLANNING_ATTEMPTS
            run.status = PlanningStatus.QUEUED if again else PlanningStatus.FAILED
            if not again:
                run.error = f"its worker stopped responding {PLANNING_ATTEMPTS} times"
                run.finished_at = datetime.now(UTC)
            repository = run.repository
            told.append(
                (
                    repository.full_name,
                    repository.installation_github_id,
                    run.issue_number,
                    _planning_told(run, again),
                )
            )
        session.commit()
        for run in stale:
            if run.status is PlanningStatus.QUEUED:
                queue_planning_again(settings, run)
    for full_name, installation, issue, body in told:
        try:
            gateway = RepositoryGateway(github_client(settings, installation), full_name)
            gateway.comment_on_issue(issue, body)
        except Exception:  # the idea's run itself is handled; its issue is told next time
            log.warning("could not report a planning run on %s#%s", full_name, issue, exc_info=True)
    return len(stale)


def _planning_told(run: PlanningRun, again: bool) -> str:
    if again:
        return (
            f"The planner's worker stopped responding during attempt {run.attempts} of "
            f"{PLANNING_ATTEMPTS} (planning run {run.id}): the {run.phase.value} is written again."
        )
    return (
        f"The planner's worker stopped responding {PLANNING_ATTEMPTS} times (planning run "
        f"{run.id}), so the {run.phase.value} was not written. Comment `/specify continue` to "
        "run it again."
    )


def requeue_stranded_tasks(settings: Settings) -> int:
    """Queued tasks whose job is gone: a job again for each (the chore `/retry` does too)."""
    with session_scope(settings.database_url) as session:
        lost = stranded(session, settings)
        for task in lost:
            queue_run(session, settings, task)
    if lost:
        log.info("queued again %d agent tasks whose job was lost", len(lost))
    return len(lost)


def _report(settings: Settings, task: _Reaped) -> None:
    if task.again:
        body = (
            f"The agent's worker stopped responding during attempt {task.attempts} of "
            f"{MAX_ATTEMPTS} (task {task.task_id}): it runs again."
        )
    else:
        body = (
            f"The agent's worker stopped responding {MAX_ATTEMPTS} times (task {task.task_id}), "
            "so the task failed. Comment `/retry` to run it again."
        )
        reason = f"its worker stopped responding {MAX_ATTEMPTS} times"
        try:
            show_task_failed(settings, task.task_id, reason)  # card, label, tracking issue
        except Exception:  # shown next time it fails; the task itself is handled
            log.warning("could not show task %s failed", task.task_id, exc_info=True)
    try:
        RepositoryGateway(
            github_client(settings, task.installation), task.full_name
        ).comment_on_issue(task.issue, body)
    except Exception:  # the issue is told next time; the task itself is handled
        log.warning("could not report task %s on #%s", task.task_id, task.issue, exc_info=True)
