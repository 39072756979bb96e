"""The fleet: which waiting runs may start now, read from the database.

The one gate of a run's start: a slot free (caps, files, fairness) and no budget past
its cap (bot/agents/budgets.py), both decided in one pass under one lock.

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

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.agents.admission import Admission, Caps, Run, admit
from bot.agents.budgets import FIRST_RUN, PAUSED, SILENT, Hold, Notice, hold_of, hold_waiting
from bot.agents.profiles import load_profiles
from bot.queue import agent_slots
from bot.repo_config import RepoConfig
from bot.settings import Settings, SettingsError
from storage.models import Task, TaskStatus, Ticket

FLEET_LOCK = "fleet"
# How long a pass waits for another worker's; a pass given up is the chore's to run.
FLEET_LOCK_WAIT_SECONDS = 10
HOLDING = (TaskStatus.QUEUED, TaskStatus.RUNNING)


@dataclass
class Pass:
    """What a pass decided: the runs to start (queued, in the order they should), and
    what to say on the issues of runs a budget holds (after the pass commits)."""

    started: list[Task] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)


def admitted(session: Session, settings: Settings) -> Pass:
    """Queue the waiting runs that may start now: a free slot (bot/agents/admission.py) and
    no budget past its cap (bot/agents/budgets.py). The caller holds the fleet's lock,
    commits, and queues their jobs.

    A run a budget holds stays waiting, takes no slot, and the pass asks again for the
    others: each run started counts, at once, in what its spec and profile spend (about
    an average run, or, before any run's cost is known, holding the next silently)."""
    waiting, active = _tasks(session)
    decided = Pass()
    limits = _limits(settings, waiting + active)
    holds: dict[tuple[int | None, str], Hold] = {}  # starting more never lifts a hold
    while waiting:
        admission = _admission(limits, waiting, active)
        if not admission.started:
            break
        by_id = {task.id: task for task in waiting}
        for run in admission.started:
            task = by_id[run.id]
            key = (task.ticket.spec_id, task.agent)
            hold = holds.get(key) or hold_of(session, settings, task)
            if hold is not None:
                holds[key] = hold
                notice = hold_waiting(task, hold)
                decided.notices += [notice] if notice else []
                # the others of its spec and profile are held as well: not asked again
                waiting = [t for t in waiting if (t.ticket.spec_id, t.agent) != key]
                break  # the slot it would have taken may go to another: admitted again
            task.budget_hold = None
            task.status = TaskStatus.QUEUED
            session.flush()  # what its budget counts as going, for the next run asked
            waiting.remove(task)
            active.append(task)
            decided.started.append(task)
        else:
            break  # all that may start have started
    _lift_holds(session, settings, waiting)
    return decided


def _lift_holds(session: Session, settings: Settings, waiting: list[Task]) -> None:
    """A held run that waits for a slot now says so, its cap raised or lifted."""
    for task in waiting:
        if task.budget_hold is not None and hold_of(session, settings, task) is None:
            task.budget_hold = None


def waits_for(session: Session, settings: Settings, task: Task) -> str:
    """What a waiting run waits for, as a sentence's end ("a slot of …", "a budget: …")."""
    hold = hold_of(session, settings, task)
    if hold is not None:
        return f"a budget: {hold.cap}" if hold.cap not in SILENT else _SILENT_WAITS[hold.cap]
    waiting, active = _tasks(session)
    reason = _admission(_limits(settings, waiting + active), waiting, active).waiting.get(task.id)
    return reason or "the scheduler's next pass: it starts within seconds"


_SILENT_WAITS = {
    PAUSED: "its spec to resume: it is paused (its tracking issue's box resumes it)",
    FIRST_RUN: "a budget: a first run of its spec or agent is going, and what a run costs "
    "is not known yet; it is looked at again when that run ends",
}


def _tasks(session: Session) -> tuple[list[Task], list[Task]]:
    loads = (
        selectinload(Task.ticket).selectinload(Ticket.repository),
        selectinload(Task.ticket).selectinload(Ticket.spec_task),
    )
    query = select(Task).options(*loads).order_by(Task.id)
    waiting = session.scalars(query.where(Task.status == TaskStatus.WAITING)).all()
    active = session.scalars(query.where(Task.status.in_(HOLDING))).all()
    return list(waiting), list(active)


@dataclass(frozen=True)
class Limits:
    """The caps of a pass, and the profiles whose runs GitHub's agents work (no worker's
    agent slot holds them)."""

    caps: Caps
    hosted: frozenset[str] = frozenset()


def _admission(limits: Limits, waiting: list[Task], active: list[Task]) -> Admission:
    return admit(
        [run_of(task, limits.hosted) for task in waiting],
        [run_of(task, limits.hosted) for task in active],
        limits.caps,
    )


def run_of(task: Task, hosted: frozenset[str] = frozenset()) -> Run:
    """The run as admission sees it (`hosted`: the profiles of agents GitHub runs)."""
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
        on_worker=task.agent not in hosted,
    )


def _limits(settings: Settings, tasks: list[Task]) -> Limits:
    try:
        profiles = load_profiles(settings)
    except SettingsError:  # the run itself says what is wrong with the file
        profiles = {}
    repositories = {task.ticket.repository for task in tasks}
    caps = Caps(
        {name: profile.max_parallel for name, profile in profiles.items()},
        {r.full_name: RepoConfig.from_dict(r.settings).max_parallel for r in repositories},
        settings.max_parallel_per_installation or None,
        agent_slots(settings),
    )
    return Limits(caps, frozenset(name for name, p in profiles.items() if p.hosted))
