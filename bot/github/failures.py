"""A ticket whose agent run failed, on GitHub: its card goes back to the column before
Building (Analyzing on a board with one, Todo on GitHub's default board), or to the column
`.github/specbridge.yml` names for failed tickets (`status: {failed: Blocked}`), and its
issue gets the label `specbridge: failed` until a new run starts. The reason itself is
on the ticket (`Ticket.failure`): the tracking issue and the status page show it.
"""

from __future__ import annotations

import logging

from github import GithubException
from requests import RequestException

from bot.github import BoardGateway, RepositoryGateway
from bot.github.columns import FAILED, ColumnMissing, column_for, show_on_board
from bot.github.projects import BoardNotFound
from storage.models import Ticket, TicketPhase

log = logging.getLogger(__name__)

FAILED_LABEL = "specbridge: failed"
# The phases before Building, nearest first: a failed ticket goes back to the first
# whose column is not Building's (In Progress stands for both on a default board).
BEFORE_BUILDING = (TicketPhase.ANALYZING, TicketPhase.BACKLOG)


def phase_after_failure(boards: BoardGateway, ticket: Ticket) -> TicketPhase:
    """The phase of the column before Building on the ticket's board (Backlog without one)."""
    settings = ticket.repository.settings or {}
    project = settings.get("project")
    if not project:
        return TicketPhase.BACKLOG
    names = settings.get("status") or {}
    try:
        board = boards.find_board(project["owner"], project["number"])
        building = column_for(board, names, TicketPhase.BUILDING)
        for phase in BEFORE_BUILDING:
            if column_for(board, names, phase) != building:
                return phase
    except (BoardNotFound, ColumnMissing) as error:
        log.warning("no column before Building for #%s: %s", ticket.issue_number, error)
    return TicketPhase.BACKLOG


def show_failure(
    boards: BoardGateway, repo: RepositoryGateway, ticket: Ticket, shown_as: TicketPhase | None
) -> None:
    """The card in the failed ticket's column, the label on its issue. The caller recorded
    the failure and the phase, and holds the card's lock."""
    show_on_board(boards, ticket, None if _failed_column(ticket) else shown_as)
    repo.add_label(ticket.issue_number, FAILED_LABEL)


def unshow_failure(boards: BoardGateway, repo: RepositoryGateway, ticket: Ticket) -> None:
    """A new run started (or the issue closed): the label off, and a card that sat in the
    column for failed tickets back in its phase's. Best effort: logged when GitHub fails."""
    try:
        if _failed_column(ticket):
            show_on_board(boards, ticket)
        repo.remove_label(ticket.issue_number, FAILED_LABEL)
    except (GithubException, RequestException) as error:
        log.warning("could not clear the failure shown on #%s: %s", ticket.issue_number, error)


def _failed_column(ticket: Ticket) -> bool:
    names = (ticket.repository.settings or {}).get("status") or {}
    return FAILED in names
