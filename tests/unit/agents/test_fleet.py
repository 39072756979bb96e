"""Runs wait for a slot in the database: a cap holds however many workers there are,
a run that ends gives its slot to a waiting one, and `/retry` says what a run waits for."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import responses
from rq import Worker
from sqlalchemy.orm import Session

from bot.agents.fleet import waits_for
from bot.agents.scheduler import schedule_tickets, start_waiting_runs
from bot.github import RepositoryGateway, github_client
from bot.queue import AGENTS, redis_connection, rq_queue
from bot.settings import Settings, load_settings
from storage.models import Repository, Spec, SpecPhase, SpecTask, Task, TaskStatus, Ticket
from tests.support import MOCK_API
from tests.unit.conftest import HeldJob

REPO = "acme/rocket"


@pytest.fixture
def settings(handler_settings: Settings, tmp_path: Path) -> Settings:
    agents = tmp_path / "agents.yaml"
    agents.write_text("default:\n  command: 'true'\n  max_parallel: 2\n")
    return load_settings(
        {
            "DATABASE_URL": handler_settings.database_url,
            "GITHUB_TOKEN": "t",
            "GITHUB_API_URL": MOCK_API,
            "GITHUB_WRITE_INTERVAL": "0",
            "SPECBRIDGE_AGENTS": str(agents),
        }
    )


def _spec(session: Session, key: str, files: list[list[str] | None]) -> list[Ticket]:
    first_number = session.query(Ticket).count() + 1
    repository = session.query(Repository).filter_by(full_name=REPO).one_or_none()
    repository = repository or Repository(full_name=REPO)
    spec = Spec(repository=repository, key=key, path=f"specs/{key}.yaml", title=key)
    spec.phase = SpecPhase.TASKS
    tickets = []
    for position, globs in enumerate(files):
        task = SpecTask(spec=spec, key=f"T{position}", title="t", position=position, files=globs)
        tickets.append(
            Ticket(
                repository=repository,
                spec=spec,
                spec_task=task,
                issue_number=first_number + position,
            )
        )
    session.add_all(tickets)
    session.commit()
    return tickets


def _statuses(session: Session, tickets: list[Ticket]) -> list[TaskStatus]:
    session.expire_all()
    return [ticket.tasks[-1].status for ticket in tickets]


def _repo(settings: Settings) -> RepositoryGateway:
    return RepositoryGateway(github_client(settings, None), REPO)


@responses.activate
def test_a_profile_cap_of_two_queues_two_runs_and_the_rest_wait(
    session: Session, settings: Settings, held_jobs: list[HeldJob]
) -> None:
    tickets = _spec(session, "big", [[f"src/f{i}.py"] for i in range(5)])

    schedule_tickets(session, settings, tickets, _repo(settings))

    statuses = _statuses(session, tickets)
    assert statuses.count(TaskStatus.QUEUED) == 2 and statuses.count(TaskStatus.WAITING) == 3
    assert len(held_jobs) == 2
    waiting = tickets[2].tasks[-1]
    assert "`max_parallel: 2`" in waits_for(session, settings, waiting)

    first = tickets[0].tasks[-1]
    first.status = TaskStatus.SUCCEEDED
    session.commit()
    assert start_waiting_runs(settings) == 1  # its slot, to the next
    assert _statuses(session, tickets).count(TaskStatus.QUEUED) == 2
    assert start_waiting_runs(settings) == 0


@responses.activate
def test_a_dead_workers_failed_run_gives_its_slot_back(
    session: Session, settings: Settings, held_jobs: list[HeldJob]
) -> None:
    tickets = _spec(session, "big", [[f"src/f{i}.py"] for i in range(3)])
    schedule_tickets(session, settings, tickets, _repo(settings))
    running = tickets[0].tasks[-1]
    running.status = TaskStatus.FAILED  # as the reaper leaves a run whose worker died
    session.commit()

    assert start_waiting_runs(settings) == 1


@responses.activate
def test_tasks_naming_the_same_file_run_one_after_the_other(
    session: Session, settings: Settings, held_jobs: list[HeldJob]
) -> None:
    tickets = _spec(session, "same", [["src/app.py"], ["src/app.py"]])

    schedule_tickets(session, settings, tickets, _repo(settings))

    assert _statuses(session, tickets) == [TaskStatus.QUEUED, TaskStatus.WAITING]
    reason = waits_for(session, settings, tickets[1].tasks[-1])
    assert reason == f"#{tickets[0].issue_number} to finish: its agent works on the same files"


@responses.activate
def test_a_small_spec_gets_a_slot_before_a_large_one_takes_them_all(
    session: Session, settings: Settings, held_jobs: list[HeldJob]
) -> None:
    big = _spec(session, "big", [[f"src/big{i}.py"] for i in range(30)])
    schedule_tickets(session, settings, big, _repo(settings))
    small = _spec(session, "small", [["docs/a.md"], ["docs/b.md"]])
    schedule_tickets(session, settings, small, _repo(settings))
    big[0].tasks[-1].status = TaskStatus.SUCCEEDED
    session.commit()

    start_waiting_runs(settings)

    assert _statuses(session, small)[0] is TaskStatus.QUEUED
    assert session.query(Task).filter_by(status=TaskStatus.QUEUED).count() == 2


@responses.activate
def test_runs_queued_never_outnumber_the_workers_agent_slots_so_a_later_small_spec_goes_next(
    session: Session, db: str, tmp_path: Path
) -> None:
    """With no cap set, two workers: two runs queued, not thirty; the queue's first-come
    order would have put a spec pushed later behind them all."""
    if not os.environ.get("REDIS_URL"):
        pytest.skip("agent slots are counted from the workers on Redis (REDIS_URL is not set)")
    agents = tmp_path / "agents.yaml"
    agents.write_text("default:\n  command: 'true'\n")
    settings = load_settings(
        {
            "DATABASE_URL": db,
            "GITHUB_TOKEN": "t",
            "GITHUB_API_URL": MOCK_API,
            "GITHUB_WRITE_INTERVAL": "0",
            "REDIS_URL": os.environ["REDIS_URL"],
            "SPECBRIDGE_AGENTS": str(agents),
        }
    )
    connection = redis_connection(os.environ["REDIS_URL"])
    connection.flushdb()
    for _ in range(2):  # two `specbridge worker`s, each with its agents lane
        Worker([rq_queue(os.environ["REDIS_URL"], AGENTS)], connection=connection).register_birth()
    big = _spec(session, "big", [[f"src/big{i}.py"] for i in range(30)])
    schedule_tickets(session, settings, big, _repo(settings))
    small = _spec(session, "small", [["docs/a.md"], ["docs/b.md"], ["docs/c.md"]])
    schedule_tickets(session, settings, small, _repo(settings))

    assert _statuses(session, big).count(TaskStatus.QUEUED) == 2
    assert set(_statuses(session, small)) == {TaskStatus.WAITING}
    assert "a free agent slot" in waits_for(session, settings, small[0].tasks[-1])
    assert len(rq_queue(os.environ["REDIS_URL"], AGENTS).jobs) == 2

    big[0].tasks[-1].status = TaskStatus.SUCCEEDED
    session.commit()
    start_waiting_runs(settings)

    assert _statuses(session, small).count(TaskStatus.QUEUED) == 1
    assert _statuses(session, big).count(TaskStatus.QUEUED) == 1
