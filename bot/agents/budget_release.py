"""Tasks held by a budget (bot/agents/budgets.py) go on when their cap no longer holds:
after settings are pushed, `/budget`, and from the periodic chore (a new day, the
profiles file edited)."""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from bot.agents.budgets import SILENT, held_by_budget, hold_of
from bot.agents.scheduler import queue_run
from bot.hooks import on_ticket_changed
from bot.settings import Settings
from storage.db import session_scope
from storage.models import Task, TaskStatus, Ticket

log = logging.getLogger(__name__)


def release_budget_holds(settings: Settings, spec_id: int | None = None) -> int:
    """Queue again the held tasks (of one spec, or all) whose cap no longer holds; tell the
    issue of one that waited for a first run and is now past a cap. Safe to run anywhere
    at once: each task is taken from its hold by one UPDATE."""
    released = 0
    with session_scope(settings.database_url) as session:
        query = select(Task).where(Task.status == TaskStatus.QUEUED, Task.budget_hold.is_not(None))
        if spec_id is not None:
            query = query.join(Ticket, Task.ticket_id == Ticket.id).where(Ticket.spec_id == spec_id)
        for task in session.scalars(query.order_by(Task.id)).all():
            hold = hold_of(session, settings, task)
            if hold is not None:
                if task.budget_hold in SILENT and hold.said:
                    held_by_budget(session, settings, task.id)  # held by a cap now: told
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


@on_ticket_changed
def _look_again(settings: Settings, _ticket: object) -> None:
    """A run ended (or a ticket moved): what it cost is recorded, so tasks held for a
    budget, or waiting for a first run's cost, are looked at now, not at the next chore."""
    release_budget_holds(settings)
