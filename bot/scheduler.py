"""Which tickets are ready, and a Task queued for each, once.

A ticket is ready when it is open and not blocked, every ticket it depends on
closed as completed, it needs no approval or has it, its agent profile exists,
and it has no live Task. Callers hold the spec's lock, so two workers never
queue two Tasks for one ticket.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.agents.profiles import load_profiles
from bot.github import RepositoryGateway
from bot.queue import AGENTS, enqueue
from bot.settings import Settings
from storage.models import Approval, IssueState, Spec, Task, TaskStatus, Ticket

LIVE = (TaskStatus.QUEUED, TaskStatus.RUNNING)


def agent_for(ticket: Ticket) -> str:
    task = ticket.spec_task
    spec = ticket.spec
    return (task.agent if task and task.agent else None) or (spec.agent if spec else "default")


def schedule_spec(
    session: Session, settings: Settings, spec: Spec, repo: RepositoryGateway
) -> list[Task]:
    """Queue a Task for every newly ready ticket of the spec; block the stuck ones."""
    profiles = load_profiles(settings)
    queued = []
    for ticket in spec.tickets:
        if ticket.state is not IssueState.OPEN:
            continue
        _block_if_dependency_abandoned(ticket, repo)
        if _ready(ticket) and agent_for(ticket) in profiles:
            task = Task(ticket=ticket, agent=agent_for(ticket), status=TaskStatus.QUEUED)
            session.add(task)
            queued.append(task)
    session.commit()
    from bot.agents.run import run_task

    for task in queued:
        enqueue(settings, AGENTS, run_task, task.id)
    return queued


def _ready(ticket: Ticket) -> bool:
    if ticket.blocked or ticket.approval is Approval.PENDING:
        return False
    if any(task.status in LIVE or task.status is TaskStatus.SUCCEEDED for task in ticket.tasks):
        # Live, or done and waiting for its pull request to merge.
        return False
    return all(
        d.depends_on.state is IssueState.CLOSED and d.depends_on.state_reason == "completed"
        for d in ticket.dependencies
    )


def _block_if_dependency_abandoned(ticket: Ticket, repo: RepositoryGateway) -> None:
    abandoned = [
        d.depends_on
        for d in ticket.dependencies
        if d.depends_on.state is not IssueState.OPEN and d.depends_on.state_reason != "completed"
    ]
    if not abandoned or ticket.blocked:
        return
    numbers = ", ".join(f"#{t.issue_number}" for t in abandoned)
    ticket.blocked = True
    ticket.blocked_reason = f"depends on {numbers}, closed as not planned"
    repo.comment_on_issue(
        ticket.issue_number,
        f"This ticket is blocked: it {ticket.blocked_reason}. Change the spec's `depends_on`, "
        "or reopen the dependency, to unblock it.",
    )


def cancel_live_tasks(ticket: Ticket, reason: str) -> list[Task]:
    """Stop the ticket's queued or running Task; a running one is killed by its worker."""
    cancelled = [task for task in ticket.tasks if task.status in LIVE]
    for task in cancelled:
        task.status = TaskStatus.CANCELLED
        task.error = f"cancelled: {reason}"
    return cancelled
