"""Tasks held by a budget (bot/agents/budgets.py) go on when their cap no longer holds:
after settings are pushed, `/budget`, and from the periodic chore (a new day, the
profiles file edited)."""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from bot.agents.budgets import hold_of
from bot.agents.scheduler import queue_run
from bot.settings import Settings
from storage.db import session_scope
from storage.models import Task, TaskStatus, Ticket

log = logging.getLogger(__name__)


def release_budget_holds(settings: Settings, spec_id: int | None = None) -> int:
    """Queue again the held tasks (of one spec, or all) whose cap no longer holds. Safe
    to run anywhere at once: each task is taken from its hold by one UPDATE."""
    released = 0
    with session_scope(settings.database_url) as session:
        query = select(Task).where(Task.status == TaskStatus.QUEUED, Task.budget_hold.is_not(None))
        if spec_id is not None:
            query = query.join(Ticket, Task.ticket_id == Ticket.id).where(Ticket.spec_id == spec_id)
        for task in session.scalars(query.order_by(Task.id)).all():
            if hold_of(session, settings, task) is not None:
                continue
            taken = session.execute(
                update(Task)
                .where(Task.id == task.id, Task.budget_hold.is_not(None))
                .values(budget_hold=None)
                .execution_options(synchronize_session=False)
            ).rowcount
            if taken == 1:
                session.refresh(task)
                queue_run(session, settings, task)
                released += 1
    if released:
        log.info("%d task(s) held by a budget go on", released)
    return released
