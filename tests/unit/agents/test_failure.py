"""A failed task shown where people look, and taken back when a run starts again
(bot/agents/failure.py, bot/github/failures.py): the card in the column before
Building, or in the column the settings name for failed tickets; the label."""

from __future__ import annotations

import json

import pytest
import responses
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.agents.failure import clear_failed, show_failed
from bot.github import Board, RepositoryGateway, github_client
from bot.github.failures import FAILED_LABEL
from bot.settings import Settings, load_settings
from storage.db import session_scope
from storage.models import Repository, Ticket, TicketPhase
from tests.support import MOCK_API

ISSUE = f"{MOCK_API}/repos/acme/rocket/issues/2"
SPECBRIDGE = ("Backlog", "Analyzing", "Building", "Testing", "Done")
GITHUB_DEFAULT = ("Todo", "In Progress", "Done")


class Cards:
    def __init__(self, columns: tuple[str, ...]) -> None:
        self.columns = columns
        self.moves: list[str] = []

    def find_board(self, owner: str, number: int) -> Board:
        return Board("PVT_1", "PVTSSF_1", {name: f"option-{name}" for name in self.columns})

    def set_status(self, board: Board, item_ids: list[str], column: str) -> None:
        self.moves.append(column)


@pytest.fixture
def settings(db: str) -> Settings:
    return load_settings({"DATABASE_URL": db, "GITHUB_TOKEN": "t", "GITHUB_API_URL": MOCK_API})


def _ticket(session: Session, status: dict[str, str] | None = None) -> None:
    config = {"project": {"owner": "acme", "number": 1}, "status": status or {}}
    repository = Repository(full_name="acme/rocket", settings=config)
    ticket = Ticket(
        repository=repository, issue_number=2, phase=TicketPhase.BUILDING, project_item_id="I"
    )
    session.add_all([repository, ticket])
    session.commit()


def _fail(settings: Settings, cards: Cards) -> Ticket:
    repo = RepositoryGateway(github_client(settings, None), "acme/rocket")
    with session_scope(settings.database_url) as session:
        ticket = session.scalars(select(Ticket)).one()
        show_failed(session, settings, cards, repo, ticket, "claude: not found\n(exit 127)")  # type: ignore[arg-type]
        session.expunge(ticket)
        return ticket


def _start_again(settings: Settings, cards: Cards) -> Ticket:
    repo = RepositoryGateway(github_client(settings, None), "acme/rocket")
    with session_scope(settings.database_url) as session:
        ticket = session.scalars(select(Ticket)).one()
        clear_failed(session, settings, cards, repo, ticket)  # type: ignore[arg-type]
        session.expunge(ticket)
        return ticket


@responses.activate
@pytest.mark.parametrize(
    ("columns", "phase", "column"),
    [
        (SPECBRIDGE, TicketPhase.ANALYZING, "Analyzing"),
        (GITHUB_DEFAULT, TicketPhase.BACKLOG, "Todo"),  # In Progress is Building's too
    ],
)
def test_a_failed_ticket_goes_to_the_column_before_building_with_the_label(
    settings: Settings,
    session: Session,
    columns: tuple[str, ...],
    phase: TicketPhase,
    column: str,
) -> None:
    _ticket(session)
    labelled = responses.post(f"{ISSUE}/labels", json=[{"name": FAILED_LABEL}])
    cards = Cards(columns)
    ticket = _fail(settings, cards)
    assert (ticket.phase, ticket.failure) == (phase, "claude: not found (exit 127)")
    assert cards.moves == [column]
    assert json.loads(labelled.calls[0].request.body) == {"labels": [FAILED_LABEL]}

    # A new run: the label comes off; the card moves on with the run itself.
    unlabelled = responses.delete(f"{ISSUE}/labels/specbridge%3A%20failed", json=[])
    ticket = _start_again(settings, cards)
    assert ticket.failure is None and unlabelled.call_count == 1
    assert cards.moves == [column]
    # Nothing more to take back: no request.
    _start_again(settings, cards)
    assert unlabelled.call_count == 1


@responses.activate
def test_a_column_named_for_failed_tickets_holds_them_until_a_run_starts(
    settings: Settings, session: Session
) -> None:
    _ticket(session, {"failed": "Blocked"})
    responses.post(f"{ISSUE}/labels", json=[{"name": FAILED_LABEL}])
    responses.delete(f"{ISSUE}/labels/specbridge%3A%20failed", json=[])
    cards = Cards(("Backlog", "Analyzing", "Building", "Blocked", "Done"))
    ticket = _fail(settings, cards)
    assert ticket.phase is TicketPhase.ANALYZING and cards.moves == ["Blocked"]
    _start_again(settings, cards)
    assert cards.moves == ["Blocked", "Analyzing"]


@responses.activate
def test_github_failing_leaves_the_failure_recorded(settings: Settings, session: Session) -> None:
    _ticket(session)
    responses.post(f"{ISSUE}/labels", status=500)
    ticket = _fail(settings, Cards(SPECBRIDGE))
    # Said on the tracking issue and the status page, whatever GitHub did with the label.
    assert ticket.failure == "claude: not found (exit 127)"
