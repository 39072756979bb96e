"""`issues` on a ticket → its state, its spec's progress, the tracking issue."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from bot.locks import exclusive, spec_lock
from bot.repositories import find_repository
from bot.router import Event, router
from bot.tickets import apply_issue_state, ticket_state_changed
from storage.models import IssueState, Ticket


@router.register("issues", "closed", "reopened", "deleted", "transferred")
def on_ticket_state(event: Event) -> None:
    ticket = _ticket(event)
    if ticket is None or ticket.spec is None:
        return
    lock = spec_lock(ticket.repository.full_name, ticket.spec.key)
    session = event.session
    session.commit()
    repo = event.repository_gateway()
    with exclusive(event.settings, lock):
        session.refresh(ticket)
        if event.action in ("deleted", "transferred"):
            ticket.state = IssueState(event.action)
            ticket.closed_at = ticket.closed_at or datetime.now(UTC)
        else:
            # The issue as it is now, not as the event says: events may arrive
            # out of order, and a replayed one must not undo a later change.
            session.commit()
            issue = repo.get_issue(ticket.issue_number)
            apply_issue_state(ticket, issue.state, issue.state_reason)
        ticket_state_changed(session, event.settings, ticket, repo)


def _ticket(event: Event) -> Ticket | None:
    repository = find_repository(event.session, event.repository_full_name or "")
    if repository is None:
        return None
    number = event.payload["issue"]["number"]
    return event.session.scalars(
        select(Ticket).where(Ticket.repository_id == repository.id, Ticket.issue_number == number)
    ).first()
