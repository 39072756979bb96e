"""`issues` on a ticket → its state, its spec's progress, the tracking issue."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from bot.events.router import Event, router
from bot.locks import card_lock, exclusive, spec_lock
from bot.repositories import find_repository
from bot.steer.tickets import apply_issue_state, ticket_state_changed
from storage.models import IssueState, Ticket


@router.register("issues", "closed", "reopened", "deleted", "transferred")
def on_ticket_state(event: Event) -> None:
    ticket = _ticket(event)
    if ticket is None or ticket.spec is None:
        return
    full_name = ticket.repository.full_name
    spec, card = spec_lock(full_name, ticket.spec.key), card_lock(full_name, ticket.issue_number)
    session = event.session
    session.commit()
    repo = event.repository_gateway()
    # The card's lock too: an agent's run moving the card must not write its phase
    # over the one the issue's close gives the ticket.
    with exclusive(event.settings, spec), exclusive(event.settings, card):
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
