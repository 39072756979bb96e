"""`issues` on a ticket → its state, its spec's progress, the tracking issue; a ticket a
person closed as not planned → a pull request removing its task (bot/sync/proposals.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from bot.events.router import Event, router
from bot.locks import card_lock, exclusive, spec_lock
from bot.repositories import find_repository
from bot.steer.tickets import apply_issue_state, ticket_state_changed
from bot.sync.proposals import propose_removal
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


@router.register("issues", "closed")
def on_closed_as_not_planned(event: Event) -> None:
    """A person closed a ticket as not planned: its task's removal is proposed. The bot's
    own closes (a task removed from the spec, a spec deleted) are not a person's."""
    sender = event.payload.get("sender") or {}
    if event.payload["issue"].get("state_reason") != "not_planned" or sender.get("type") == "Bot":
        return
    ticket = _ticket(event)
    if ticket is None or ticket.spec is None or ticket.spec_task is None:
        return
    if ticket.spec_task.removed_at is not None:
        return
    spec, number = ticket.spec, ticket.issue_number
    session = event.session
    session.commit()
    repo = event.repository_gateway()
    with exclusive(event.settings, spec_lock(ticket.repository.full_name, spec.key)):
        session.refresh(ticket)
        proposed = propose_removal(
            session, repo, spec, ticket, event.sender, f"closed #{number} as not planned"
        )
        if proposed.again:
            return
        said = (
            f"@{event.sender} closed this issue as not planned: {proposed.said()} removes its "
            f"task `{proposed.task_key}` from the spec. Close that pull request to keep it."
            if not proposed.left
            else f"@{event.sender}: {proposed.said()}"
        )
        repo.comment_on_issue(number, said)


def _ticket(event: Event) -> Ticket | None:
    repository = find_repository(event.session, event.repository_full_name or "")
    if repository is None:
        return None
    number = event.payload["issue"]["number"]
    return event.session.scalars(
        select(Ticket).where(Ticket.repository_id == repository.id, Ticket.issue_number == number)
    ).first()
