"""A ticket's phase, mirrored in its card's Status column on the board.

Any board works without configuration: specbridge's five phases go to the
columns a board has. One made with GitHub's defaults (Todo, In Progress, Done)
shows backlog as Todo, analyzing, building and testing as In Progress, done as
Done; a board with Backlog, Analyzing, Building, Testing and Done shows each
phase in its own column. `.github/specbridge.yml` `status:` names other columns,
and may name one for tickets whose last run failed (`failed: Blocked`; see
bot/github/failures.py).
"""

from __future__ import annotations

import logging

from bot.github import Board, BoardGateway
from bot.github.projects import BoardNotFound
from storage.models import IssueState, Ticket, TicketPhase

log = logging.getLogger(__name__)

# The `status:` key of the column for tickets whose last run failed (no phase of its own).
FAILED = "failed"
# For each phase, the columns that stand for it, best first.
CANDIDATES = {
    TicketPhase.BACKLOG: ("Backlog", "Todo", "To do", "New"),
    TicketPhase.ANALYZING: ("Analyzing", "In Progress", "In progress", "Doing"),
    TicketPhase.BUILDING: ("Building", "In Progress", "In progress", "Doing"),
    TicketPhase.TESTING: ("Testing", "In Review", "In review", "In Progress", "In progress"),
    TicketPhase.DONE: ("Done", "Closed", "Complete"),
}


class ColumnMissing(LookupError):
    """The board has no column for a phase."""


def column_for(board: Board, names: dict[str, str], phase: TicketPhase) -> str:
    """The board's column for a phase; `names` are the repository's own (status: in its config)."""
    wanted = names.get(phase.value)
    options = {name.casefold(): name for name in board.status_options}
    if wanted is not None:
        if wanted.casefold() in options:
            return options[wanted.casefold()]
        raise ColumnMissing(
            f"the board has no Status option {wanted!r} for {phase.value} "
            f"(it has: {', '.join(board.status_options)})"
        )
    for candidate in CANDIDATES[phase]:
        if candidate.casefold() in options:
            return options[candidate.casefold()]
    raise ColumnMissing(
        f"the board has no Status option for {phase.value}: name one in "
        f".github/specbridge.yml under status: (it has: {', '.join(board.status_options)})"
    )


def ticket_column(board: Board, names: dict[str, str], ticket: Ticket) -> str:
    """The column a ticket's card belongs in: its phase's, or, while the failure of its
    last run stands, the column `status:` names for failed tickets if it names one."""
    failed = names.get(FAILED)
    if failed is None or not ticket.failure or ticket.state is not IssueState.OPEN:
        return column_for(board, names, ticket.phase)
    options = {name.casefold(): name for name in board.status_options}
    if failed.casefold() not in options:
        raise ColumnMissing(
            f"the board has no Status option {failed!r} for failed tickets "
            f"(it has: {', '.join(board.status_options)})"
        )
    return options[failed.casefold()]


def phase_of(names: dict[str, str], column: str | None) -> TicketPhase | None:
    """The phase a column stands for, the first that names it (None: a column we don't know)."""
    if column is None:
        return None
    for phase in TicketPhase:
        if names.get(phase.value, "").casefold() == column.casefold():
            return phase
    for phase in TicketPhase:
        if phase.value not in names and column.casefold() in map(str.casefold, CANDIDATES[phase]):
            return phase
    return None


def same_column(names: dict[str, str], column: str | None, phase: TicketPhase) -> bool:
    """Whether a card in `column` already shows `phase` (In Progress shows three)."""
    if column is None:
        return False
    wanted = names.get(phase.value)
    if wanted is not None:
        return wanted.casefold() == column.casefold()
    return column.casefold() in map(str.casefold, CANDIDATES[phase])


def move_ticket(boards: BoardGateway, ticket: Ticket, phase: TicketPhase) -> None:
    """Set the ticket's phase, and its card's Status when it is on a board."""
    if ticket.phase is phase:
        return
    shown_as, ticket.phase = ticket.phase, phase
    show_on_board(boards, ticket, shown_as)


def show_on_board(
    boards: BoardGateway, ticket: Ticket, shown_as: TicketPhase | None = None
) -> str | None:
    """Put the ticket's card in the column of its phase; why it could not, or None.

    `shown_as`: the phase its card shows now. On a board where both phases share
    a column (In Progress stands for three), the card stays and nothing is written.
    """
    settings = ticket.repository.settings or {}
    project = settings.get("project")
    if not project or ticket.project_item_id is None:
        return None
    names = settings.get("status") or {}
    try:
        board = boards.find_board(project["owner"], project["number"])
        column = ticket_column(board, names, ticket)
        if shown_as is not None and column_for(board, names, shown_as) == column:
            return None
        boards.set_status(board, [ticket.project_item_id], column)
    except (BoardNotFound, ColumnMissing) as error:
        log.warning("cannot move #%s to %s: %s", ticket.issue_number, ticket.phase.value, error)
        return str(error)
    return None


def board_problems(
    boards: BoardGateway, owner: str, number: int, names: dict[str, str]
) -> list[str]:
    """What keeps the board from showing every phase: it cannot be found, or a phase has
    no column (one named in `status:` that the board lacks, or none of its usual ones)."""
    try:
        board = boards.find_board(owner, number)
    except BoardNotFound as error:
        return [str(error)]
    problems = []
    for phase in TicketPhase:
        try:
            column_for(board, names, phase)
        except ColumnMissing as error:
            problems.append(str(error))
    return problems


def settle_card(boards: BoardGateway, ticket: Ticket) -> None:
    """Put the card in its ticket's column unless it is there already: read first, since
    GitHub's own workflows (Item closed → Done) may have moved it. Idempotent."""
    settings = ticket.repository.settings or {}
    project = settings.get("project")
    if not project or ticket.project_item_id is None:
        return
    names = settings.get("status") or {}
    try:
        board = boards.find_board(project["owner"], project["number"])
        column = ticket_column(board, names, ticket)
        if boards.item_status(ticket.project_item_id) == column:
            return
        boards.set_status(board, [ticket.project_item_id], column)
    except (BoardNotFound, ColumnMissing) as error:
        log.warning("cannot move #%s to %s: %s", ticket.issue_number, ticket.phase.value, error)
