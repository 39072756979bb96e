"""A ticket's issue opened or closed, by a person or by specbridge: what follows.

Its live tasks stop when it closes, the spec's progress is counted again, the
tickets waiting for it are queued when they become ready, and the tracking
issue is rewritten soon. The cost is the same whatever the spec's size.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.agents.attempts import close_the_others
from bot.agents.hosted import finish_on_close
from bot.agents.scheduler import cancel_live_tasks, schedule_tickets
from bot.github import RepositoryGateway
from bot.settings import Settings
from bot.sync.progress import queue_tracking_refresh, refresh_progress
from bot.sync.write_back import queue_write_back
from storage.models import IssueState, Ticket, TicketDependency, TicketPhase


def apply_issue_state(
    ticket: Ticket, state: str, reason: str | None, closed_at: datetime | None = None
) -> None:
    """Record the issue's state (open or closed, with GitHub's reason) on the ticket."""
    if state == "closed":
        ticket.state, ticket.state_reason = IssueState.CLOSED, reason or "completed"
        ticket.closed_at = ticket.closed_at or closed_at or datetime.now(UTC)
        if ticket.state_reason == "completed":
            ticket.phase = TicketPhase.DONE
    else:
        ticket.state, ticket.state_reason, ticket.closed_at = IssueState.OPEN, None, None
        if ticket.phase is TicketPhase.DONE:
            ticket.phase = TicketPhase.BACKLOG


def ticket_state_changed(
    session: Session, settings: Settings, ticket: Ticket, repo: RepositoryGateway
) -> None:
    """Everything that follows a change of the ticket's state (the caller holds the spec lock)."""
    spec = ticket.spec
    if ticket.state is not IssueState.OPEN:
        finish_on_close(ticket)  # a hosted agent's pull request merged: its task is done
        cancel_live_tasks(ticket, "its issue closed")
    session.commit()
    if ticket.state is IssueState.CLOSED and ticket.state_reason == "completed":
        close_the_others(settings, ticket.id)  # one attempt merged: the others close
    if spec is None:
        return
    refresh_progress(session, spec, repo)
    schedule_tickets(session, settings, dependants(session, ticket), repo)
    queue_tracking_refresh(settings, spec.id)
    queue_write_back(settings, spec.id)  # its checkbox in the spec file, once a minute


def dependants(session: Session, ticket: Ticket) -> list[Ticket]:
    """The tickets that wait for this one."""
    return list(
        session.scalars(
            select(Ticket)
            .join(TicketDependency, TicketDependency.ticket_id == Ticket.id)
            .where(TicketDependency.depends_on_id == ticket.id)
        )
    )
