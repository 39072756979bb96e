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
    settings = ticket.repository.settings or {}
    project = settings.get("project")
    if not project or ticket.project_item_id is None:
        return
    column = (settings.get("status") or DEFAULT_STATUS).get(
        phase.value, DEFAULT_STATUS[phase.value]
    )
    try:
        board = boards.find_board(project["owner"], project["number"])
        boards.set_status(board, [ticket.project_item_id], column)
    except BoardNotFound as error:
        log.warning("cannot move #%s to %s: %s", ticket.issue_number, column, error)
