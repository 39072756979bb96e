"""Chores shared by every process: each round is claimed in the database, so N
workers (and `serve`) read GitHub once per interval between them, not N times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.settings import Settings
from storage.db import session_scope
from storage.models import ChoreRun

# A process's first round of a shared chore (at start) runs unless another
# process ran it this recently.
START_GAP_SECONDS = 30.0

_started: set[str] = set()


def claim_round(settings: Settings, name: str, every: float) -> bool:
    """True for the one process whose turn it is: none ran `name` in the last `every`
    seconds (in the last START_GAP_SECONDS when this process has just started)."""
    if name not in _started:
        _started.add(name)
        every = min(every, START_GAP_SECONDS)
    now = datetime.now(UTC)
    with session_scope(settings.database_url) as session:
        _ensure_row(session, name)
        claimed = session.execute(
            update(ChoreRun)
            .where(
                ChoreRun.name == name,
                or_(ChoreRun.ran_at.is_(None), ChoreRun.ran_at <= now - timedelta(seconds=every)),
            )
            .values(ran_at=now)
        ).rowcount
    return claimed == 1


def read_mark(settings: Settings, name: str) -> int | None:
    with session_scope(settings.database_url) as session:
        run = session.get(ChoreRun, name)
        return run.mark if run is not None else None


def write_mark(settings: Settings, name: str, mark: int) -> None:
    with session_scope(settings.database_url) as session:
        _ensure_row(session, name)
        session.execute(update(ChoreRun).where(ChoreRun.name == name).values(mark=mark))


def _ensure_row(session: Session, name: str) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(ChoreRun).values(name=name).on_conflict_do_nothing())


def forget_start() -> None:
    """For tests: behave as a process that has just started."""
    _started.clear()
