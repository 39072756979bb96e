"""Tasks held by a budget (bot/agents/budgets.py) go on when their cap no longer holds:
every pass of the fleet (bot/agents/fleet.py) asks again, and one runs after settings
are pushed, `/budget`, the spec resumed, a run's end and the periodic chore (a new day,
the profiles file edited)."""

from __future__ import annotations

from sqlalchemy import select

from bot.agents.scheduler import start_waiting
from bot.settings import Settings
from storage.db import session_scope
from storage.models import Task, TaskStatus, Ticket


def release_budget_holds(settings: Settings, spec_id: int | None = None) -> int:
    """Run a pass of the fleet; how many of the tasks a budget held (of one spec, or all)
    it started."""
    with session_scope(settings.database_url) as session:
        query = select(Task.id).where(
            Task.status == TaskStatus.WAITING, Task.budget_hold.is_not(None)
        )
        if spec_id is not None:
            query = query.join(Ticket, Task.ticket_id == Ticket.id).where(Ticket.spec_id == spec_id)
        held = set(session.scalars(query))
        return sum(1 for task in start_waiting(session, settings) if task.id in held)
