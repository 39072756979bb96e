"""Which tickets are ready, and a Task queued for each, once.

A ticket is ready when it is open and not blocked, every ticket it depends on
closed as completed, it needs no approval or has it, and its agent profile
exists. A ready ticket that never had a Task gets one by itself; after a
failure or a cancel, people decide (`/retry`, a card moved to Analyzing).
A pull request an agent opened is revised on request (a review, `/revise`): a
new Task on its branch, numbered by revision, up to the profile's `max_revisions`.
Callers hold the spec's lock, so two workers never queue two Tasks for one ticket.
A Task is created waiting; bot/agents/fleet.py starts it when a slot is free (caps,
no other agent on its files, a fair turn among specs).

Each run is a queue job of its own (`task_job_id`), recorded on the Task, so a
queued Task whose job was lost (the embedded server killed, Redis restarted
empty) is told from one that waits: `stranded` finds it, and the reaper's
chore and `/retry` queue it again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from github import GithubException
from requests import RequestException
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.agents.fleet import FLEET_LOCK, FLEET_LOCK_WAIT_SECONDS, admitted
from bot.agents.hosted import dispatch_task
from bot.agents.profiles import DEFAULT_TIMEOUT, load_profiles
from bot.agents.run import RUN_OVERHEAD_SECONDS, run_task
from bot.github import RepositoryGateway
from bot.hooks import on_run_ended
from bot.locks import LockBusy, exclusive
from bot.queue import AGENTS, EVENTS, enqueue, pending
from bot.settings import Settings
from specs.model import MANUAL_AGENT
from storage.db import session_scope
from storage.models import Approval, IssueState, Spec, Task, TaskStatus, Ticket

log = logging.getLogger(__name__)

LIVE = (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.WAITING)
# A run that fails for a passing reason (GitHub unreachable) is queued again after these.
RETRY_INTERVALS = (5, 30, 120)
# A queued Task whose job is gone this long after it was queued has lost it (its
# job is queued just after the Task is committed).
STRANDED_AFTER_SECONDS = 10


def agent_for(ticket: Ticket) -> str:
    task = ticket.spec_task
    spec = ticket.spec
    return (
        ticket.agent_override
        or (task.agent if task and task.agent else None)
        or (spec.agent if spec else "default")
    )


def not_ready_because(ticket: Ticket, settings: Settings) -> str | None:
    """Why the ticket cannot be worked now, or None when it can."""
    if ticket.state is not IssueState.OPEN:
        return "its issue is closed"
    if ticket.blocked:
        return f"it is blocked: {ticket.blocked_reason}"
    if ticket.approval is Approval.PENDING:
        return "it waits for `/approve`"
    if ticket.spec is not None and ticket.spec.paused:
        return "its spec is paused (its tracking issue's box resumes it)"
    unrecorded = _dependencies_without_issue(ticket)
    if unrecorded:
        return f"the issues of {', '.join(unrecorded)}, which it depends on, are not created yet"
    waiting = [
        f"#{d.depends_on.issue_number}"
        for d in ticket.dependencies
        if not (
            d.depends_on.state is IssueState.CLOSED and d.depends_on.state_reason == "completed"
        )
    ]
    if waiting:
        return f"it depends on {', '.join(waiting)}, not closed as completed yet"
    agent = agent_for(ticket)
    if agent == MANUAL_AGENT:
        return "its agent is `manual`: people work it"
    if agent not in load_profiles(settings):
        return f"no agent profile named `{agent}` is configured"
    if any(task.status in LIVE for task in ticket.tasks):
        return "a task is already queued or running"
    return None


def _dependencies_without_issue(ticket: Ticket) -> list[str]:
    task = ticket.spec_task
    if task is None:
        return []
    recorded = {d.depends_on.spec_task.key for d in ticket.dependencies if d.depends_on.spec_task}
    return [key for key in task.depends_on if key not in recorded]


def queue_task(session: Session, settings: Settings, ticket: Ticket) -> Task:
    """A run for the ticket (one per attempt, when its profile makes several), started
    now if a slot is free, else waiting for one; the first."""
    tasks = new_runs(session, settings, ticket)
    start_waiting(session, settings)
    return tasks[0]


def new_runs(
    session: Session, settings: Settings, ticket: Ticket, agents: Sequence[str] = ()
) -> list[Task]:
    """Waiting runs for the ticket: one, or one per attempt (the task's `attempts`, else
    its profile's, or one per agent named), each on a branch of its own."""
    if not agents:
        agent = agent_for(ticket)
        profile = load_profiles(settings).get(agent)
        asked = ticket.spec_task.attempts if ticket.spec_task else None
        several = profile is not None and not profile.hosted  # GitHub's agent works once
        agents = [agent] * ((asked or profile.attempts) if several and profile else 1)
    several = len(agents) > 1
    # Numbered after earlier attempts, so each has a branch and pull request of its own.
    first = max((t.attempt_number or 0 for t in ticket.tasks), default=0) + 1
    tasks = [
        Task(
            ticket=ticket,
            agent=agent,
            status=TaskStatus.WAITING,
            attempt_number=number if several else None,
        )
        for number, agent in enumerate(agents, start=first)
    ]
    session.add_all(tasks)
    return tasks


def queue_run(session: Session, settings: Settings, task: Task) -> None:
    """Record the job of the queued Task's next run, commit, and queue that job."""
    session.flush()  # a new Task's id
    task.rq_job_id = task_job_id(task)
    session.commit()
    enqueue_task(settings, task.id, task.agent, task.rq_job_id)


def task_job_id(task: Task) -> str:
    """The queue job of the Task's next run: one per attempt, so a run queued again
    never shares its id with one of a dead worker (RQ's bookkeeping of the one would
    delete or fail the other)."""
    return f"task-{task.id}-{task.attempts}"


def enqueue_task(settings: Settings, task_id: int, agent: str, job_id: str) -> None:
    """Queue a run with room for the profile's timeout, so the queue never cuts it short;
    for a profile GitHub runs, the short job that hands the issue over."""
    profile = load_profiles(settings).get(agent)
    retries = {"job_id": job_id, "retry_intervals": RETRY_INTERVALS}
    if _queue_of(settings, agent) == EVENTS:
        enqueue(settings, EVENTS, dispatch_task, task_id, **retries)
        return
    timeout = (profile.timeout if profile else DEFAULT_TIMEOUT) + RUN_OVERHEAD_SECONDS
    enqueue(settings, AGENTS, run_task, task_id, timeout=timeout, **retries)


def stranded(session: Session, settings: Settings, ticket: Ticket | None = None) -> list[Task]:
    """Queued Tasks (of one ticket, or all) whose job is gone: they would never run."""
    cutoff = datetime.now(UTC) - timedelta(seconds=STRANDED_AFTER_SECONDS)
    query = select(Task).where(
        Task.status == TaskStatus.QUEUED,
        Task.dispatched_at.is_(None),
        Task.queued_at <= cutoff,
    )
    if ticket is not None:
        query = query.where(Task.ticket_id == ticket.id)
    queued = session.scalars(query.order_by(Task.id)).all()
    lost = []
    for queue_name in (AGENTS, EVENTS):
        mine = [task for task in queued if _queue_of(settings, task.agent) == queue_name]
        # A job RQ calls started whose Task is still queued died before it claimed it.
        alive = pending(
            settings, queue_name, [t.rq_job_id for t in mine if t.rq_job_id], started=False
        )
        lost += [task for task in mine if task.rq_job_id not in alive]
    return sorted(lost, key=lambda task: task.id)


def _queue_of(settings: Settings, agent: str) -> str:
    profile = load_profiles(settings).get(agent)
    return EVENTS if profile is not None and profile.hosted else AGENTS


def agent_pull_request(ticket: Ticket) -> Task | None:
    """The newest Task of the ticket that opened (or revised) a pull request on its branch."""
    opened = [t for t in ticket.tasks if t.pull_request_number and t.branch]
    return max(opened, key=lambda t: t.id, default=None)


def next_revision(ticket: Ticket, pull_request: int) -> int:
    """The revision a new run on this pull request would be: one more than the last,
    failed ones included (each took a run)."""
    done = [t.revision for t in ticket.tasks if t.pull_request_number == pull_request]
    return max(done, default=0) + 1


def not_revisable_because(ticket: Ticket, settings: Settings, on: Task | None = None) -> str | None:
    """Why the agent cannot run again on the ticket's pull request (`on`'s, for one of
    several attempts) now, or None when it can."""
    if ticket.state is not IssueState.OPEN:
        return "its issue is closed"
    if ticket.blocked:
        return f"it is blocked: {ticket.blocked_reason}"
    previous = on or agent_pull_request(ticket)
    if previous is None or previous.pull_request_number is None:
        return "no agent has opened a pull request for it yet"
    if any(task.status in LIVE and not following_pull_request(task) for task in ticket.tasks):
        return "a task is already queued or running for it"
    agent = agent_for(ticket)
    if agent == MANUAL_AGENT:
        return "its agent is `manual`: people work it"
    profile = load_profiles(settings).get(agent)
    if profile is None:
        return f"no agent profile named `{agent}` is configured"
    if profile.dispatch and not (profile.dispatch.workflow or profile.dispatch.revise_template):
        return (
            f"the agent `{agent}` works on GitHub and its profile does not say how it is asked "
            "to revise (a `revise:` template): ask it on its pull request"
        )
    revision = next_revision(ticket, previous.pull_request_number)
    if revision > profile.max_revisions:
        if profile.max_revisions == 0:
            return f"the profile `{agent}` allows no revisions (`max_revisions: 0`)"
        return (
            f"#{previous.pull_request_number} was revised {revision - 1} times already, the "
            f"most the profile `{agent}` allows (`max_revisions: {profile.max_revisions}`)"
        )
    return None


def following_pull_request(task: Task) -> bool:
    """A task handed to an agent GitHub runs, live until its pull request merges: a
    revision asked of that agent takes over from it (bot/agents/hosted.py)."""
    return (
        task.status is TaskStatus.RUNNING
        and task.dispatched_at is not None
        and task.pull_request_number is not None
    )


def failed_revision(ticket: Ticket) -> Task | None:
    """The ticket's newest Task when it is a revision that failed or was cancelled: run
    again (`/retry`, a card moved to Analyzing), it is that revision again, on the pull
    request's branch, not a first run that would replace what the branch holds."""
    last = ticket.tasks[-1] if ticket.tasks else None
    if (
        last is not None
        and last.revision > 0
        and last.status in (TaskStatus.FAILED, TaskStatus.CANCELLED)
        and last.branch
        and last.pull_request_number
    ):
        return last
    return None


def queue_revision(
    session: Session,
    settings: Settings,
    ticket: Ticket,
    review: str,
    again: Task | None = None,
    fixes_checks: bool = False,
    merges_base: str | None = None,
    on: Task | None = None,
) -> Task:
    """Queue the agent again on its pull request's branch, told what the reviewers asked
    (or, `fixes_checks`, what the repository's failing checks report; `merges_base`, that
    merging this commit of the default branch conflicts); `again`: a revision that
    failed, run once more with its own number; `on`: the run whose pull request it
    revises (one of several attempts), else the newest.

    The caller checked `not_revisable_because` (or `not_ready_because` for `again`)
    under the spec's lock.
    """
    previous = again or on or agent_pull_request(ticket)
    assert previous is not None and previous.pull_request_number is not None
    task = Task(
        ticket=ticket,
        # one of several attempts is revised by its own agent
        agent=previous.agent if previous.attempt_number else agent_for(ticket),
        status=TaskStatus.WAITING,
        revision=again.revision if again else next_revision(ticket, previous.pull_request_number),
        branch=previous.branch,
        pull_request_number=previous.pull_request_number,
        review=review,
        fixes_checks=again.fixes_checks if again else fixes_checks,
        merges_base=again.merges_base if again else merges_base,
    )
    session.add(task)
    start_waiting(session, settings)
    return task


def schedule_spec(
    session: Session, settings: Settings, spec: Spec, repo: RepositoryGateway
) -> list[Task]:
    """Queue a Task for every ready ticket of the spec that never had one."""
    return schedule_tickets(session, settings, spec.tickets, repo)


def schedule_tickets(
    session: Session, settings: Settings, tickets: Sequence[Ticket], repo: RepositoryGateway
) -> list[Task]:
    """Queue a Task for each ready ticket that never had one; block the stuck ones.
    They start as slots allow (bot/agents/fleet.py), fairly among specs."""
    queued = []
    for ticket in tickets:
        if ticket.state is not IssueState.OPEN:
            continue
        _block_if_dependency_abandoned(session, ticket, repo)
        if not ticket.tasks and not_ready_because(ticket, settings) is None:
            queued += new_runs(session, settings, ticket)
    start_waiting(session, settings)
    return queued


def cancel_live_tasks(ticket: Ticket, reason: str) -> list[Task]:
    """Stop the ticket's queued or running Task; a running one is killed by its worker."""
    cancelled = [task for task in ticket.tasks if task.status in LIVE]
    for task in cancelled:
        task.status = TaskStatus.CANCELLED
        task.error = f"cancelled: {reason}"
    return cancelled


def _block_if_dependency_abandoned(
    session: Session, ticket: Ticket, repo: RepositoryGateway
) -> None:
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
    session.commit()
    repo.comment_on_issue(
        ticket.issue_number,
        f"This ticket is blocked: it {ticket.blocked_reason}. Change the spec's `depends_on`, "
        "or reopen the dependency and `/unblock`.",
    )


def start_waiting(session: Session, settings: Settings) -> list[Task]:
    """Queue the jobs of the waiting runs that may start now (bot/agents/fleet.py says
    which); those started. One pass at a time across every worker: the count of runs
    under way is the database's, read and changed under the fleet's lock."""
    session.commit()  # what the caller wrote is seen by the others before we decide
    try:
        with exclusive(settings, FLEET_LOCK, wait=FLEET_LOCK_WAIT_SECONDS):
            decided = admitted(session, settings)
            for task in decided.started:
                task.rq_job_id = task_job_id(task)
            session.commit()
            for task in decided.started:
                enqueue_task(settings, task.id, task.agent, task_job_id(task))
    except LockBusy:
        log.info("another worker is starting waiting agent runs; the chore runs this again")
        return []
    for notice in decided.notices:  # held by a budget: said once on its issue
        try:
            notice.tell(settings)
        except (GithubException, RequestException) as error:  # the hold stands all the same
            log.warning("could not say on #%s why its task waits: %s", notice.issue, error)
    return decided.started


def start_waiting_runs(settings: Settings) -> int:
    """The chore: start what may start (a run ended without saying, a pass was missed)."""
    with session_scope(settings.database_url) as session:
        return len(start_waiting(session, settings))


@on_run_ended
def slot_freed(settings: Settings, task_id: int) -> None:
    """A run ended: its slot goes to a waiting run."""
    start_waiting_runs(settings)
