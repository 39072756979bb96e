"""`issues` on a ticket → its state, its spec's progress, the tracking issue."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from bot.github import Issue
from bot.locks import exclusive, spec_lock
from bot.progress import refresh_progress
from bot.repositories import find_repository
from bot.router import Event, router
from bot.scheduler import cancel_live_tasks, schedule_spec
from storage.models import IssueState, Ticket, TicketPhase


@router.register("issues", "closed", "reopened", "deleted", "transferred")
def on_ticket_state(event: Event) -> None:
    ticket = _ticket(event)
    if ticket is None or ticket.spec is None:
        return
    spec = ticket.spec
    repo = event.repository_gateway()
    with exclusive(event.settings, spec_lock(spec.repository.full_name, spec.key)):
        event.session.refresh(ticket)
        if event.action in ("deleted", "transferred"):
            ticket.state = IssueState(event.action)
            ticket.closed_at = ticket.closed_at or datetime.now(UTC)
        else:
            # The issue as it is now, not as the event says: events may arrive
            # out of order, and a replayed one must not undo a later change.
            _apply_issue_state(ticket, repo.get_issue(ticket.issue_number))
        if ticket.state is not IssueState.OPEN:
            cancel_live_tasks(ticket, "its issue closed")
        refresh_progress(event.session, spec, repo)
        event.session.commit()
        schedule_spec(event.session, event.settings, spec, repo)


def _ticket(event: Event) -> Ticket | None:
    repository = find_repository(event.session, event.repository_full_name or "")
    if repository is None:
        return None
    number = event.payload["issue"]["number"]
    return event.session.scalars(
        select(Ticket).where(Ticket.repository_id == repository.id, Ticket.issue_number == number)
    ).first()


def _apply_issue_state(ticket: Ticket, issue: Issue) -> None:
    if issue.state == "closed":
        ticket.state, ticket.state_reason = IssueState.CLOSED, issue.state_reason or "completed"
        ticket.closed_at = ticket.closed_at or datetime.now(UTC)
        if ticket.state_reason == "completed":
            ticket.phase = TicketPhase.DONE
    else:
        ticket.state, ticket.state_reason, ticket.closed_at = IssueState.OPEN, None, None
        if ticket.phase is TicketPhase.DONE:
            ticket.phase = TicketPhase.BACKLOG
