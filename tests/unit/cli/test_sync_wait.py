"""`specbridge sync` reports the end of the whole sync: a spec whose sync continues in
the queue's jobs is waited for, and how far it is said as it goes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.cli.repositories import wait_for_continuations
from bot.settings import load_settings
from storage.db import session_scope
from storage.models import Repository, Spec, SpecPhase, SpecStatus


def _paused_spec(db: str, path: str, resume_at: datetime) -> None:
    with session_scope(db) as session:
        repository = session.scalars(select(Repository)).first() or Repository(full_name="acme/big")
        session.add(
            Spec(
                repository=repository,
                key=path.split("/")[-1].removesuffix(".yaml"),
                path=path,
                title="Big",
                phase=SpecPhase.TASKS,
                status=SpecStatus.EXECUTING,
                resume_at=resume_at,
                sync_totals={"opened": 80, "writes": 6, "jobs": 1},
            )
        )
        session.commit()


def _continuation_ends(db: str, path: str) -> None:
    with session_scope(db) as session:
        spec = session.scalars(select(Spec).where(Spec.path == path)).one()
        spec.sync_totals = {"opened": 201, "writes": 30, "jobs": 4}
        spec.resume_at = None
        session.commit()


def test_the_command_waits_for_the_continuations_and_says_how_far_they_are(db: str) -> None:
    settings = load_settings({"DATABASE_URL": db})
    resume_at = datetime.now(UTC) + timedelta(seconds=5)
    _paused_spec(db, "specs/big.yaml", resume_at)
    lines: list[str] = []
    timer = threading.Timer(0.5, _continuation_ends, (db, "specs/big.yaml"))
    timer.start()

    ended = wait_for_continuations(settings, "acme/big", ["specs/big.yaml"], lines.append, 0.05)

    timer.join()
    assert ended == ["specs/big.yaml"]
    assert lines == [
        f"specs/big.yaml: 80 issues opened so far, continues from {resume_at:%H:%M:%S} UTC"
    ]


def test_a_continuation_no_worker_runs_is_said_and_not_waited_for(db: str) -> None:
    settings = load_settings({"DATABASE_URL": db})
    _paused_spec(db, "specs/stuck.yaml", datetime.now(UTC) - timedelta(minutes=10))
    lines: list[str] = []

    ended = wait_for_continuations(settings, "acme/big", ["specs/stuck.yaml"], lines.append, 0.05)

    assert ended == []
    assert len(lines) == 1 and "is a `specbridge worker` running?" in lines[0]
