"""An agent's run beside what else happens to its task meanwhile.

A /cancel while the run moves its card: the card ends in the backlog. The run
(a worker) and the command (another worker) write the card from two processes;
GitHub applies the writes in the order they land. Seen in the e2e test: the
run's "Building" landed after the cancel's "Backlog".

A run slow before its agent's command (a long clone, a card write waiting for
GitHub's pace) is alive: the reaper leaves it alone.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from bot.agents import run
from bot.agents.reaper import reap_stale_tasks
from bot.agents.run import STALE_AFTER_BEATS, AgentFailed, _Run, run_task
from bot.github import Board
from bot.settings import Settings, get_settings, load_settings
from bot.steer.steering import Steering
from storage.db import session_scope
from storage.models import Repository, Spec, SpecStatus, Task, TaskStatus, Ticket, TicketPhase
from tests.e2e.harness import wait_until
from tests.support import MOCK_API

COLUMNS = ("Backlog", "Analyzing", "Building", "Testing", "Done")
# How long the run's card write stays in flight, waiting for the cancel's to land first.
IN_FLIGHT_SECONDS = 2


class SlowBoard:
    """A board whose "Building" writes are slow: each one lands after the cancel's
    "Backlog" write, if that one is not held back."""

    def __init__(self) -> None:
        self.landed: list[str] = []
        self.building_in_flight = threading.Event()
        self.cancel_started = threading.Event()
        self.backlog_landed = threading.Event()

    def find_board(self, owner: str, number: int) -> Board:
        return Board("PVT_1", "PVTSSF_1", {name: f"option-{name}" for name in COLUMNS})

    def set_status(self, board: Board, item_ids: list[str], column: str) -> None:
        if column == "Building":
            self.building_in_flight.set()
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

    def cancel_once_the_run_writes() -> None:
        board.building_in_flight.wait(10)
        replies.append(_cancel(settings, board))

    person = threading.Thread(target=cancel_once_the_run_writes)
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


def test_a_run_slow_before_its_command_keeps_its_heartbeat(
    db: str, running_task: Task, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.setenv("GITHUB_TOKEN", "t")  # a job without credentials fails at its start
    monkeypatch.setenv("SPECBRIDGE_HEARTBEAT_SECONDS", "0.1")
    monkeypatch.delenv("REDIS_URL", raising=False)  # the reaper's requeue goes nowhere
    get_settings.cache_clear()
    settings = get_settings()
    with session_scope(db) as session:
        session.get_one(Task, running_task.id).status = TaskStatus.QUEUED
    cloned = threading.Event()
    monkeypatch.setattr(_Run, "__init__", lambda self, *args: None)
    monkeypatch.setattr(_Run, "execute", lambda self: cloned.wait(30))  # a clone that takes long
    monkeypatch.setattr(run, "session_scope", _failing_once_in_heartbeats(run.session_scope))
    worker = threading.Thread(target=run_task, args=(running_task.id,))
    worker.start()
    try:
        claimed_at = wait_until(lambda: _heartbeat(db), 10, "the task to be claimed")
        silent_for = settings.task_heartbeat_seconds * (STALE_AFTER_BEATS + 2)
        wait_until(
            lambda: (_heartbeat(db) - claimed_at).total_seconds() > silent_for,
            30,
            "heartbeats past the reaper's cutoff",
        )
        assert reap_stale_tasks(settings) == 0
        assert _ticket(settings)[1] is TaskStatus.RUNNING
    finally:
        cloned.set()
        worker.join(30)
        get_settings.cache_clear()


def _failing_once_in_heartbeats(scope):  # type: ignore[no-untyped-def]
    """The database away for the first heartbeat: the next ones must still come."""
    failed = threading.Event()

    def flaky(url: str):  # type: ignore[no-untyped-def]
        if threading.current_thread().name.startswith("heartbeat-") and not failed.is_set():
            failed.set()
            raise OperationalError("SELECT 1", {}, ConnectionError("the database went away"))
        return scope(url)

    return flaky


def _heartbeat(db: str):  # type: ignore[no-untyped-def]
    with session_scope(db) as session:
        task = session.scalars(select(Task)).one()
        return task.heartbeat_at if task.status is TaskStatus.RUNNING else None
