"""While people may be waiting for the worker, a sync's creation requests are sized by
the time GitHub takes, not only by GitHub's count: a reply never waits long behind one."""

from __future__ import annotations

import dataclasses
import time

import pytest
import requests

from bot.queue import EVENTS, PEOPLE_LATELY_KEY, note_people, redis_connection, running_job
from bot.repo_config import RepoConfig
from bot.repositories import record_repository
from bot.settings import Settings, load_settings
from bot.sync import sync_spec, writer
from fakehub import FakeHub
from specs.load import load_spec
from storage.db import session_scope
from tests.integration.conftest import github_side, new_repository

TASKS = 12


def _sync(settings: Settings, hub: FakeHub, name: str) -> list[int]:
    full_name = new_repository(hub, name)
    text = "id: short\ntitle: Short\nphase: tasks\ntasks:\n" + "".join(
        f"  - {{id: T{n}, title: Task {n}}}\n" for n in range(TASKS)
    )
    spec_file, _ = load_spec(text, "specs/short.yaml")
    assert spec_file is not None
    before = len(requests.get(f"{hub.url}/_admin/state", timeout=30).json()["requests"])
    with running_job(EVENTS), session_scope(settings.database_url) as session:
        repository = record_repository(session, {"full_name": full_name, "default_branch": "main"})
        github = github_side(settings, full_name, RepoConfig())
        assert sync_spec(session, settings, github, repository, spec_file, "c1", name) is None
    done = requests.get(f"{hub.url}/_admin/state", timeout=30).json()["requests"][before:]
    return [
        (r.get("mutations") or []).count("createIssue")
        for r in done
        if "createIssue" in (r.get("mutations") or [])
    ]


@pytest.fixture
def with_redis(db: str, hub: FakeHub) -> Settings:
    """Interactive work runs beside bulk work only with a queue in Redis."""
    return load_settings(
        {
            "DATABASE_URL": db,
            "REDIS_URL": "redis://127.0.0.1:6379/9",
            "GITHUB_API_URL": hub.url,
            "GITHUB_TOKEN": f"short-{time.time()}",
            "GITHUB_WRITE_INTERVAL": "0",
            "GITHUB_CONTENT_LIMITS": "none",
        }
    )


def test_after_people_asked_something_creation_requests_stay_short(
    hub: FakeHub, with_redis: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis = redis_connection(with_redis.redis_url or "")
    redis.delete(PEOPLE_LATELY_KEY)
    # Nobody asked anything lately: whole batches.
    assert _sync(with_redis, hub, "short-quiet") == [1, TASKS]

    note_people(with_redis)  # someone's /status was handled
    # GitHub seems slow: a request of more than the fewest would take too long.
    monkeypatch.setattr(writer, "SHORT_REQUEST_SECONDS", 0.0)
    try:
        assert _sync(with_redis, hub, "short-asked") == [1, 5, 5, 2]
    finally:
        redis.delete(PEOPLE_LATELY_KEY)


def test_without_redis_interactive_work_has_a_thread_of_its_own(
    hub: FakeHub, with_redis: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedded = dataclasses.replace(with_redis, redis_url=None)
    monkeypatch.setattr(writer, "SHORT_REQUEST_SECONDS", 0.0)
    assert _sync(embedded, hub, "short-embedded") == [1, TASKS]
