"""A tracking issue that acts, as Renovate's dashboard does: boxes on it (bot/sync/render.py)
that a person with write access ticks to approve every waiting task, retry every failed
one, pause the spec or resume it.

Only a box going from unticked to ticked acts, and each action does only what is left to
do, so a box ticked twice, an edit redelivered or a box edited back changes nothing more.
The tracking issue is written again with its boxes unticked; a reader's tick is undone
with a reply naming their access. The rest of the body is people's words: an edit outside
the boxes is left to the rules that apply to it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.agents.budget_release import release_budget_holds
from bot.agents.scheduler import LIVE, schedule_tickets
from bot.github import BoardGateway, RepositoryGateway
from bot.github.text import MAX_BODY, cut
from bot.locks import exclusive, spec_lock
from bot.settings import Settings
from bot.steer.permissions import may_steer, permission_to_steer
from bot.steer.steering import Steering
from bot.sync.progress import queue_tracking_refresh
from bot.sync.render import APPROVE_WAITING, PAUSE, RESUME, RETRY_FAILED, action_boxes
from storage.models import Approval, IssueState, Spec, Ticket

log = logging.getLogger(__name__)

# The reply of a big spec's boxes (a line per task retried) can pass GitHub's limit on a
# comment, which would refuse it whole after the tasks were retried: it is cut instead.
CUT_NOTE = "\n\n_… cut to fit GitHub's limit on a comment: the tasks not listed had it done too._"

SAID = {
    APPROVE_WAITING: "approve every task waiting for approval",
    RETRY_FAILED: "retry every failed task",
    PAUSE: "pause this spec",
    RESUME: "resume this spec",
}


def spec_tracked_by(session: Session, repository_id: int, issue_number: int) -> Spec | None:
    return session.scalars(
        select(Spec).where(
            Spec.repository_id == repository_id, Spec.tracking_issue_number == issue_number
        )
    ).first()


def newly_ticked(before: str, after: str) -> list[str]:
    """The action boxes ticked in `after` that were not in `before`, in their order."""
    was = action_boxes(before)
    return [name for name, ticked in action_boxes(after).items() if ticked and not was.get(name)]


def act_on_edit(
    session: Session,
    settings: Settings,
    repo: RepositoryGateway,
    boards: BoardGateway,
    spec: Spec,
    sender: str,
    before: str,
    after: str,
) -> list[str]:
    """Do what the newly ticked boxes ask, if the sender may; what was done (for the reply)."""
    ticked = [name for name in newly_ticked(before, after) if name in SAID]
    if not ticked:
        return []
    full_name, key, spec_id = repo.full_name, spec.key, spec.id
    session.commit()
    permission = permission_to_steer(repo, sender)
    if not may_steer(permission):
        has = "no" if permission == "none" else permission
        done = [
            f"@{sender} ticked '{SAID[name]}', which needs write access to this repository, "
            f"and @{sender} has {has} access: the box is unticked, nothing changed."
            for name in ticked
        ]
    else:
        with exclusive(settings, spec_lock(full_name, key)):
            session.refresh(spec)
            steering = Steering(session, settings, repo, boards)
            done = [f"@{sender}: {ACTIONS[name](steering, spec, sender)}" for name in ticked]
    spec.tracking_issue_hash = None  # written again, its boxes unticked
    number = spec.tracking_issue_number
    session.commit()
    if number is not None:
        repo.comment_on_issue(number, cut("\n\n".join(done), MAX_BODY, CUT_NOTE))
    queue_tracking_refresh(settings, spec_id)
    log.info("tracking issue of %s: %s by %s", key, ", ".join(ticked), sender)
    return done


def _approve_waiting(steering: Steering, spec: Spec, sender: str) -> str:
    waiting = [t for t in _open(spec) if t.approval is Approval.PENDING]
    if not waiting:
        return "no task waits for approval."
    for ticket in waiting:
        steering.approve(ticket, sender)
    steering.session.commit()
    return f"approved {len(waiting)} task(s): {_numbers(waiting)}."


def _retry_failed(steering: Steering, spec: Spec, _sender: str) -> str:
    failed = [
        t for t in _open(spec) if t.failure and not any(task.status in LIVE for task in t.tasks)
    ]
    if not failed:
        return "no failed task is left to retry."
    said = [f"#{t.issue_number}: {steering.start(t)}" for t in failed]
    steering.session.commit()
    return f"retried {len(failed)} failed task(s).\n\n" + "\n".join(f"- {s}" for s in said)


def _pause(steering: Steering, spec: Spec, _sender: str) -> str:
    if spec.paused:
        return "this spec is paused already."
    spec.paused = True
    steering.session.commit()
    return "paused this spec: no new agent run starts (runs going finish). Tick 'Resume' to go on."


def _resume(steering: Steering, spec: Spec, _sender: str) -> str:
    if not spec.paused:
        return "this spec is not paused."
    spec.paused = False
    steering.session.commit()
    held = release_budget_holds(steering.settings, spec.id)
    queued = schedule_tickets(steering.session, steering.settings, spec.tickets, steering.repo)
    return f"resumed this spec: {held + len(queued)} task(s) go on."


def _open(spec: Spec) -> list[Ticket]:
    return [t for t in spec.tickets if t.state is IssueState.OPEN]


def _numbers(tickets: list[Ticket]) -> str:
    return ", ".join(f"#{t.issue_number}" for t in tickets)


ACTIONS: dict[str, Callable[[Steering, Spec, str], str]] = {
    APPROVE_WAITING: _approve_waiting,
    RETRY_FAILED: _retry_failed,
    PAUSE: _pause,
    RESUME: _resume,
}
