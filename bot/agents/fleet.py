"""The fleet: which waiting runs may start now, read from the database.

A run is created `waiting` (bot/agents/scheduler.py); the scheduler's
`start_waiting` asks `admitted` which may start beside those queued or running
(bot/agents/admission.py decides), and queues their jobs. The count is the
database's (the Tasks queued or running), read and changed under one lock across
every worker, so caps hold however many workers there are; a run that ends, fails,
is cancelled or whose worker died (the reaper fails it, or queues it again in its
slot) gives its slot back by its status alone.

A pass runs after runs are created and after one ends; a chore runs it too, so a
pass missed (the lock busy, Redis away for a moment) costs seconds, not a stuck task.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.agents.admission import Admission, Caps, Run, admit
from bot.agents.profiles import load_profiles
from bot.repo_config import RepoConfig
from bot.settings import Settings, SettingsError
from storage.models import Task, TaskStatus, Ticket

FLEET_LOCK = "fleet"
# How long a pass waits for another worker's; a pass given up is the chore's to run.
FLEET_LOCK_WAIT_SECONDS = 10
HOLDING = (TaskStatus.QUEUED, TaskStatus.RUNNING)


def admitted(session: Session, settings: Settings) -> list[Task]:
    """The waiting runs that may start now, in the order they should (the caller holds
    the fleet's lock, and starts them)."""
    waiting, active = _tasks(session)
    if not waiting:
        return []
    by_id = {task.id: task for task in waiting}
    return [by_id[run.id] for run in _admission(settings, waiting, active).started]


def waits_for(session: Session, settings: Settings, task: Task) -> str:
    """What a waiting run waits for, as a sentence's end ("a slot of …")."""
    waiting, active = _tasks(session)
    reason = _admission(settings, waiting, active).waiting.get(task.id)
    return reason or "the scheduler's next pass: it starts within seconds"


def _tasks(session: Session) -> tuple[list[Task], list[Task]]:
    loads = (
        selectinload(Task.ticket).selectinload(Ticket.repository),
        selectinload(Task.ticket).selectinload(Ticket.spec_task),
    )
    query = select(Task).options(*loads).order_by(Task.id)
    waiting = session.scalars(query.where(Task.status == TaskStatus.WAITING)).all()
    active = session.scalars(query.where(Task.status.in_(HOLDING))).all()
    return list(waiting), list(active)


def _admission(settings: Settings, waiting: list[Task], active: list[Task]) -> Admission:
    return admit(
        [run_of(task) for task in waiting],
        [run_of(task) for task in active],
        _caps(settings, waiting + active),
    )


def run_of(task: Task) -> Run:
    """The run as admission sees it."""
    ticket = task.ticket
    spec_task = ticket.spec_task
    repository = ticket.repository
    files = spec_task.files if spec_task is not None else None
    return Run(
        id=task.id,
        profile=task.agent,
        repository=repository.full_name,
        installation=str(repository.installation_id or "token"),
        spec=str(ticket.spec_id) if ticket.spec_id is not None else f"ticket-{ticket.id}",
        files=tuple(files) if files is not None else None,
        parallel=spec_task.parallel if spec_task is not None else False,
        priority=spec_task.priority if spec_task is not None else "medium",
        position=spec_task.position if spec_task is not None else 0,
        label=f"#{ticket.issue_number}",
        ticket=ticket.id,
    )


def _caps(settings: Settings, tasks: list[Task]) -> Caps:
    try:
        profiles = {name: p.max_parallel for name, p in load_profiles(settings).items()}
    except SettingsError:  # the run itself says what is wrong with the file
        profiles = {}
    repositories = {task.ticket.repository for task in tasks}
    return Caps(
        profiles,
        {r.full_name: RepoConfig.from_dict(r.settings).max_parallel for r in repositories},
        settings.max_parallel_per_installation or None,
    )
