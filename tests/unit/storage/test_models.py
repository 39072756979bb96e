"""The data model on a real database: natural keys are enforced by the
database itself, and a ticket outlives its spec row."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import (
    CommandRun,
    Delivery,
    Repository,
    Spec,
    SpecTask,
    Ticket,
    TicketPhase,
)


def _repository(session: Session, name: str = "octo/app") -> Repository:
    repository = Repository(full_name=name)
    session.add(repository)
    session.flush()
    return repository


def _spec(session: Session, repository: Repository, key: str = "login") -> Spec:
    spec = Spec(repository=repository, key=key, path=f"specs/{key}.yaml", title=key, phase="tasks")
    session.add(spec)
    session.flush()
    return spec


def test_spec_key_is_unique_within_a_repository(session: Session) -> None:
    repository = _repository(session)
    _spec(session, repository, "login")
    _spec(session, _repository(session, "octo/other"), "login")  # other repository: fine
    with pytest.raises(IntegrityError):
        _spec(session, repository, "login")


def test_task_key_is_unique_within_a_spec(session: Session) -> None:
    spec = _spec(session, _repository(session))
    session.add(SpecTask(spec=spec, key="TSK-1", title="a"))
    session.flush()
    session.add(SpecTask(spec=spec, key="TSK-1", title="b"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_issue_number_is_unique_within_a_repository(session: Session) -> None:
    repository = _repository(session)
    session.add(Ticket(repository=repository, issue_number=7))
    session.flush()
    session.add(Ticket(repository=repository, issue_number=7))
    with pytest.raises(IntegrityError):
        session.flush()


def test_delivery_id_is_unique(session: Session) -> None:
    session.add(Delivery(delivery_id="abc", event="ping", payload={}))
    session.flush()
    session.add(Delivery(delivery_id="abc", event="ping", payload={}))
    with pytest.raises(IntegrityError):
        session.flush()


def test_a_comment_line_runs_one_command(session: Session) -> None:
    repository = _repository(session)
    run = {"repository_id": repository.id, "issue_number": 1, "comment_id": 99, "line": 1}
    session.add(CommandRun(**run, user_login="a", command="approve", allowed=True))
    session.flush()
    session.add(CommandRun(**run, user_login="a", command="approve", allowed=True))
    with pytest.raises(IntegrityError):
        session.flush()


def test_deleting_a_spec_keeps_its_tickets(session: Session) -> None:
    spec = _spec(session, _repository(session))
    task = SpecTask(spec=spec, key="TSK-1", title="Store tokens")
    session.add(task)
    session.flush()
    ticket = Ticket(repository=spec.repository, spec=spec, spec_task=task, issue_number=3)
    session.add(ticket)
    session.flush()
    ticket_id = ticket.id

    session.execute(delete(SpecTask).where(SpecTask.id == task.id))
    session.execute(delete(Spec).where(Spec.id == spec.id))
    session.expire_all()

    kept = session.scalars(select(Ticket).where(Ticket.id == ticket_id)).one()
    assert kept.spec_id is None
    assert kept.spec_task_id is None
    assert kept.issue_number == 3


def test_enumerations_are_checked_by_the_database(session: Session) -> None:
    repository = _repository(session)
    session.add(Ticket(repository=repository, issue_number=1, phase=TicketPhase.BUILDING))
    session.flush()
    assert session.scalars(select(Ticket.phase)).one() is TicketPhase.BUILDING
    with pytest.raises(IntegrityError):
        session.execute(text("UPDATE tickets SET phase = 'coding'"))
