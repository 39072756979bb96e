"""A sync's cost grows with its spec, not faster: it reads each task a bounded number
of times, however many tasks and dependencies the spec has (a count, not a time)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm.attributes import InstrumentedAttribute

from bot.repo_config import RepoConfig
from bot.repositories import record_repository
from bot.settings import Settings, load_settings
from bot.sync import sync_spec
from fakehub import FakeHub
from specs.load import load_spec
from storage.db import session_scope
from storage.models import SpecTask, Ticket, TicketDependency
from tests.integration.conftest import github_side, new_repository

# Each task waits for up to this many of the tasks before it.
DEPENDENCIES = 4


def _spec(tasks: int) -> str:
    lines = ["id: wide", "title: Wide", "phase: tasks", "tasks:"]
    for n in range(tasks):
        depends = ", ".join(f"T{m}" for m in range(max(0, n - DEPENDENCIES), n))
        lines += [f"  - id: T{n}", f"    title: Task {n}", f"    depends_on: [{depends}]"]
    return "\n".join(lines) + "\n"


@contextmanager
def _task_reads() -> Iterator[list[int]]:
    """How many times the code reads an attribute of a task row (each pass over the
    spec's tasks reads at least one of each)."""
    count = [0]
    original = InstrumentedAttribute.__get__

    def counted(self: Any, instance: Any, owner: Any) -> Any:
        if instance is not None and self.class_ is SpecTask:
            count[0] += 1
        return original(self, instance, owner)

    InstrumentedAttribute.__get__ = counted  # type: ignore[method-assign]
    try:
        yield count
    finally:
        InstrumentedAttribute.__get__ = original  # type: ignore[method-assign]


def _reads_per_task(db: str, hub: FakeHub, tasks: int) -> float:
    settings: Settings = load_settings(
        {
            "DATABASE_URL": db,
            "GITHUB_API_URL": hub.url,
            "GITHUB_TOKEN": f"scale-{tasks}-{time.time()}",
            "GITHUB_WRITE_INTERVAL": "0",
            "GITHUB_CONTENT_LIMITS": "none",
        }
    )
    full_name = new_repository(hub, f"wide{tasks}")
    text = _spec(tasks)
    spec_file, _ = load_spec(text, "specs/wide.yaml")
    assert spec_file is not None
    with session_scope(settings.database_url) as session:
        repository = record_repository(session, {"full_name": full_name, "default_branch": "main"})
        github = github_side(
            settings, full_name, RepoConfig(project_owner="acme", project_number=1)
        )
        with _task_reads() as reads:
            paused = sync_spec(
                session,
                settings,
                github,
                repository,
                spec_file,
                "c1",
                hashlib.sha256(text.encode()).hexdigest(),
            )
        assert paused is None
        links = session.scalar(
            select(func.count())
            .select_from(TicketDependency)
            .join(Ticket, TicketDependency.ticket_id == Ticket.id)
            .where(Ticket.repository_id == repository.id)
        )
        assert links == sum(min(n, DEPENDENCIES) for n in range(tasks))  # every one recorded
    return reads[0] / tasks


def test_a_sync_reads_each_task_a_bounded_number_of_times(
    db: str, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub.limits, "content_per_minute", 10**6)
    monkeypatch.setattr(hub.limits, "content_per_hour", 10**6)

    small = _reads_per_task(db, hub, 30)
    large = _reads_per_task(db, hub, 150)  # six creation requests, 590 dependencies

    # Five times the tasks and links: the same reads per task (a pass over every task per
    # creation request, or a dict of every task per dependency, would be 5 to 25 times).
    assert large <= small * 1.2, (small, large)
