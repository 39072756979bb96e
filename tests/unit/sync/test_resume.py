"""A paused sync's continuation that finds its installation's bulk slot taken comes
back later, as one job: the chore that queues lost continuations sees it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from bot.github.auth import pace_key
from bot.locks import bulk_slot
from bot.settings import Settings, get_settings
from bot.sync import repository_sync, resume_due_specs
from bot.sync.repository_sync import resume_spec
from storage.models import Repository, Spec
from tests.unit.conftest import HeldJob


@pytest.fixture
def settings(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The process's settings, as the continuation reads them."""
    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    monkeypatch.delenv("REDIS_URL", raising=False)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _paused_spec(session: Session) -> Spec:
    spec = Spec(
        repository=Repository(full_name="acme/busy"),
        key="busy",
        path="specs/busy.yaml",
        title="Busy",
        source_commit="a" * 40,
        resume_at=datetime.now(UTC) - timedelta(seconds=1),  # due
    )
    session.add(spec)
    session.commit()
    return spec


@pytest.fixture
def slot_taken(settings: Settings) -> Iterator[None]:
    """Another sync of the installation holds its bulk slot, on another worker."""
    held, release = threading.Event(), threading.Event()

    def another_sync() -> None:
        with bulk_slot(settings, pace_key(settings, None)):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=another_sync)
    holder.start()
    assert held.wait(10)
    yield
    release.set()
    holder.join()


def test_a_continuation_behind_a_busy_slot_comes_back_once(
    session: Session, settings: Settings, held_jobs: list[HeldJob], slot_taken: None
) -> None:
    spec = _paused_spec(session)

    resume_spec(spec.id)  # finds the slot taken

    [again] = held_jobs
    assert again.name == "resume_spec" and again.args == (spec.id,)
    session.refresh(spec)
    assert spec.resume_at is not None
    assert again.job_id == repository_sync._resume_job(spec)  # the job of its new pause
    assert spec.resume_at > datetime.now(UTC).replace(tzinfo=spec.resume_at.tzinfo)
    # The chore queues no second continuation meanwhile (it did: the job had no id).
    assert resume_due_specs(settings) == 0
    assert len(held_jobs) == 1
