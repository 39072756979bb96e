"""A ticket's phase, mirrored in its card's Status column on the board."""

from __future__ import annotations

import logging

from bot.github import BoardGateway
from bot.github.projects import BoardNotFound
from bot.repo_config import DEFAULT_STATUS
from storage.models import Ticket, TicketPhase

log = logging.getLogger(__name__)


def move_ticket(boards: BoardGateway, ticket: Ticket, phase: TicketPhase) -> None:
    """Set the ticket's phase, and its card's Status when it is on a board."""
    if ticket.phase is phase:
        return
    ticket.phase = phase
    show_on_board(boards, ticket)


def show_on_board(boards: BoardGateway, ticket: Ticket) -> None:
    """Put the ticket's card in the column of its phase."""
    settings = ticket.repository.settings or {}
    project = settings.get("project")
    if not project or ticket.project_item_id is None:
        return
    column = column_of(settings, ticket.phase)
    try:
        board = boards.find_board(project["owner"], project["number"])
        boards.set_status(board, [ticket.project_item_id], column)
    except BoardNotFound as error:
        log.warning("cannot move #%s to %s: %s", ticket.issue_number, column, error)


def column_of(repository_settings: dict, phase: TicketPhase) -> str:  # type: ignore[type-arg]
    return (repository_settings.get("status") or DEFAULT_STATUS).get(
        phase.value, DEFAULT_STATUS[phase.value]
    )


def phase_of(repository_settings: dict, column: str | None) -> TicketPhase | None:  # type: ignore[type-arg]
    """The phase a board column stands for (None for a column specbridge does not know)."""
    status = repository_settings.get("status") or DEFAULT_STATUS
    return next((TicketPhase(p) for p, name in status.items() if name == column), None)
