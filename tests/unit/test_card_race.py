"""A /cancel while the agent's run moves its card: the card ends in the backlog.

The run (a worker) and the command (another worker) write the card from two
processes; GitHub applies the writes in the order they land. Seen in the e2e
test: the run's "Building" landed after the cancel's "Backlog".
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.agents import run
from bot.agents.run import AgentFailed, _Run
from bot.github import Board
from bot.settings import Settings, load_settings
from bot.steering import Steering
from storage.db import session_scope
from storage.models import Repository, Spec, SpecStatus, Task, TaskStatus, Ticket, TicketPhase
from tests.support import MOCK_API

COLUMNS = ("Backlog", "Analyzing", "Building", "Testing", "Done")
# How long the run's card write stays in flight, waiting for the cancel's to land first.
IN_FLIGHT_SECONDS = 2


class SlowBoard:
    """A board whose "Building" writes are slow: each one lands after the cancel's
    "Backlog" write, if that one is not held back."""

    def __init__(self) -> None:
        self.landed: list[str] = []
        self.cancel_started = threading.Event()
        self.backlog_landed = threading.Event()

    def find_board(self, owner: str, number: int) -> Board:
        return Board("PVT_1", "PVTSSF_1", {name: f"option-{name}" for name in COLUMNS})

    def set_status(self, board: Board, item_ids: list[str], column: str) -> None:
        if column == "Building":
            self.cancel_started.wait(10)
            self.backlog_landed.wait(IN_FLIGHT_SECONDS)
        self.landed.append(column)
        if column == "Backlog":
            self.backlog_landed.set()


@pytest.fixture
def settings(db: str) -> Settings:
    environ = {"DATABASE_URL": db, "GITHUB_TOKEN": "t", "GITHUB_API_URL": MOCK_API}
    if os.environ.get("REDIS_URL"):
        environ["REDIS_URL"] = os.environ["REDIS_URL"]  # the lock is Redis's, as in production
    return load_settings(environ)


@pytest.fixture
def running_task(session: Session) -> Task:
    repository = Repository(
        full_name="acme/rocket", settings={"project": {"owner": "acme", "number": 1}}
    )
    spec = Spec(
        repository=repository,
        key="rocket",
        path="specs/rocket.yaml",
        title="Rocket",
        phase="tasks",
        status=SpecStatus.PLANNED,
    )
    ticket = Ticket(
        repository=repository,
        spec=spec,
        issue_number=2,
        phase=TicketPhase.ANALYZING,
        project_item_id="PVTI_2",
    )
    task = Task(ticket=ticket, agent="slow", status=TaskStatus.RUNNING, attempts=1)
    session.add_all([repository, spec, ticket, task])
    session.commit()
    return task


@pytest.fixture
def agent_run(
    settings: Settings, running_task: Task, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[_Run, SlowBoard]]:
    board = SlowBoard()
    monkeypatch.setattr(run, "BoardGateway", lambda connection: board)
    with session_scope(settings.database_url) as session:
        yield _Run(session, settings, session.get_one(Task, running_task.id)), board


def _cancel(settings: Settings, board: SlowBoard) -> str:
    with session_scope(settings.database_url) as session:
        ticket = session.scalars(select(Ticket)).one()
        steering = Steering(session, settings, None, board)  # type: ignore[arg-type]
        board.cancel_started.set()
        return steering.cancel(ticket, "maintainer")


def _ticket(settings: Settings) -> tuple[TicketPhase, TaskStatus]:
    with session_scope(settings.database_url) as session:
        task = session.scalars(select(Task)).one()
        return task.ticket.phase, task.status


def test_a_cancel_during_the_runs_card_move_leaves_the_card_in_the_backlog(
    settings: Settings, agent_run: tuple[_Run, SlowBoard]
) -> None:
    agent, board = agent_run
    replies: list[str] = []
    person = threading.Thread(target=lambda: replies.append(_cancel(settings, board)))

    person.start()
    agent._move(TicketPhase.BUILDING)
    person.join(30)

    assert replies and replies[0].startswith("Cancelled task")
    assert board.landed[-1] == "Backlog"
    assert _ticket(settings) == (TicketPhase.BACKLOG, TaskStatus.CANCELLED)
    with pytest.raises(AgentFailed, match="cancelled"):
        agent._move(TicketPhase.TESTING)
    assert board.landed[-1] == "Backlog"


def test_a_cancelled_run_does_not_move_its_card(
    settings: Settings, agent_run: tuple[_Run, SlowBoard]
) -> None:
    agent, board = agent_run
    _cancel(settings, board)

    with pytest.raises(AgentFailed, match="cancelled"):
        agent._move(TicketPhase.BUILDING)

    assert board.landed == ["Backlog"]
    assert _ticket(settings) == (TicketPhase.BACKLOG, TaskStatus.CANCELLED)
