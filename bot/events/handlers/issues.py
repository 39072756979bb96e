"""`issues` on a ticket → its state, its spec's progress, the tracking issue, and its card:
closed as completed (a merged pull request, or a person) → Done, set by specbridge itself
(GitHub's "Item closed" workflow may be off, and knows only a column named Done); reopened
→ back from Done to the backlog; closed as not planned → the card stays where people put
it. A ticket a person closed as not planned → a pull request removing its task
(bot/sync/proposals.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from bot.agents.failure import clear_failed
from bot.events.router import Event, router
from bot.github import RepositoryGateway
from bot.github.columns import settle_card
from bot.locks import card_lock, exclusive, spec_lock
from bot.repositories import find_repository, repository_from_payload
from bot.settings import SettingsError
from bot.steer.dashboard import act_on_edit, spec_tracked_by
from bot.steer.permissions import may_steer, permission_to_steer
from bot.steer.planning import IDEA_LABEL, idea_lock, start_idea
from bot.steer.tickets import apply_issue_state, ticket_state_changed
from bot.sync.proposals import propose_removal
from storage.models import IssueState, Ticket, TicketPhase


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
        was = ticket.phase
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
        if event.action in ("closed", "reopened"):
            _show_on_the_card(event, ticket, was, repo)


def _show_on_the_card(
    event: Event, ticket: Ticket, was: TicketPhase, repo: RepositoryGateway
) -> None:
    """Done by specbridge: completed → Done (a failure shown before is cleared); reopened
    from Done → the backlog's column; not planned → nothing. The caller holds the card lock."""
    boards = event.board_gateway()
    done = ticket.state is IssueState.CLOSED and ticket.state_reason == "completed"
    if done:
        clear_failed(event.session, event.settings, boards, repo, ticket)
    elif not (ticket.state is IssueState.OPEN and was is TicketPhase.DONE):
        return
    ticket.repository  # noqa: B018 - loaded before the commit, read by settle_card
    event.session.commit()
    settle_card(boards, ticket)


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


def _not_an_idea(payload: dict[str, Any]) -> bool:
    sender = payload.get("sender") or {}
    return (payload.get("label") or {}).get("name") != IDEA_LABEL or sender.get("type") == "Bot"


@router.register("issues", "labeled", unless=_not_an_idea)
def on_idea_labelled(event: Event) -> None:
    """`specbridge: idea` added by a person with write access starts planning the issue's
    idea (as `/specify` does); added by anyone else, it is said why nothing runs."""
    if _not_an_idea(event.payload):
        return
    sender = event.payload.get("sender") or {}
    repository = repository_from_payload(event.session, event.payload)
    issue = event.payload["issue"]
    number, login = issue["number"], sender.get("login") or ""
    event.session.commit()
    repo = event.repository_gateway()
    if not may_steer(permission_to_steer(repo, login)):
        said = f"@{login} labelled this issue `{IDEA_LABEL}`; planning it needs write access."
    else:
        with exclusive(event.settings, idea_lock(repository.full_name, number)):
            try:
                said = start_idea(
                    event.session,
                    event.settings,
                    repo,
                    repository,
                    number,
                    login,
                    issue.get("title") or "",
                )
            except SettingsError as error:
                said = f"Planning cannot start: {error}."
    repo.comment_on_issue(number, said)


def _not_a_persons_body_edit(payload: dict[str, Any]) -> bool:
    body_changed = "body" in (payload.get("changes") or {})
    return not body_changed or (payload.get("sender") or {}).get("type") == "Bot"


@router.register("issues", "edited", unless=_not_a_persons_body_edit)
def on_tracking_issue_edited(event: Event) -> None:
    """A person ticked boxes on a spec's tracking issue: approve, retry, pause, resume
    (bot/steer/dashboard.py). Specbridge's own rewrites (a bot's edits) are not a person's."""
    payload = event.payload
    if _not_a_persons_body_edit(payload):
        return
    repository = find_repository(event.session, event.repository_full_name or "")
    if repository is None:
        return
    spec = spec_tracked_by(event.session, repository.id, payload["issue"]["number"])
    if spec is None:
        return
    act_on_edit(
        event.session,
        event.settings,
        event.repository_gateway(),
        event.board_gateway(),
        spec,
        event.sender,
        payload["changes"]["body"].get("from") or "",
        payload["issue"].get("body") or "",
    )
