"""A sync that continues in later jobs does not read again what its first job read:
the commit, the settings and the spec's files are those of the commit it syncs, and
the board and the labels are those its first job found."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from bot.queue import EVENTS, INTERACTIVE, embedded_queue, running_job
from bot.repo_config import RepoConfig
from bot.repositories import record_repository
from bot.settings import Settings
from bot.sync import record_settings, sync_files
from bot.sync.commit_files import forget
from bot.sync.progress import refresh_tracking
from fakehub import FakeHub
from storage.db import session_scope
from storage.models import Spec
from tests.integration.conftest import github_side
from tests.integration.test_sync_yields import (
    _finished,
    _repository_with,
    _wait,
    paced,  # noqa: F401 - the fixture
    spec_text,
)
from tests.support import jobs_end_with_the_test


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FakeHub]:
    """A double of this test's own: the requests counted here are this sync's. On the
    embedded queue, jobs another test left in this process (a paced sync's timers) still
    talk to the double the other tests share, and their reads were counted here."""
    own = FakeHub(None, "", tmp_path / "hub")
    own.start()
    yield own
    own.stop()


def _requests(hub: FakeHub) -> list[dict[str, Any]]:
    return requests.get(f"{hub.url}/_admin/state", timeout=30).json()["requests"]


def _reads(done: list[dict[str, Any]]) -> Counter[str]:
    """The reads among requests GitHub answered, by what they read."""
    reads: Counter[str] = Counter()
    for request in done:
        if request["graphql"] == "query":
            reads["graphql"] += 1
        elif request["graphql"] is None and request["method"] == "GET":
            reads[request["path"].split("?")[0]] += 1
    return reads


def _continued_sync(hub: FakeHub, settings: Settings, caplog: pytest.LogCaptureFixture) -> str:
    """A sync of 31 issues at 10 every 4 s (three continuations), finished; its repository."""
    caplog.set_level(logging.INFO)
    forget()  # nothing kept from another test
    text = spec_text("again", 30)
    full_name = _repository_with(hub, "continued", "again", text)
    with running_job(EVENTS), session_scope(settings.database_url) as session:  # as a push does
        repository = record_repository(session, {"full_name": full_name, "default_branch": "main"})
        session.commit()
        github = github_side(settings, full_name, RepoConfig())
        commit, github.config = record_settings(session, settings, github.repo, repository, "main")
        sync_files(session, settings, github, repository, commit, ["specs/again.yaml"])
    _wait(lambda: _finished(settings, "again"), 60)
    pauses = [r for r in caplog.records if r.getMessage().startswith("sync of again paused")]
    assert len(pauses) >= 3
    return full_name


def _assert_read_once(hub: FakeHub, full_name: str) -> None:
    reads = _reads(_requests(hub))
    repo = f"/repos/{full_name}"
    assert reads[f"{repo}/commits/main"] == 1
    assert reads[f"{repo}/contents/.github/specbridge.yml"] == 1
    assert reads[f"{repo}/contents/specs/again.yaml"] == 1
    # The board and the labels' ids too: read by the first job, carried to the others
    # (before: once per job).
    assert reads["graphql"] == 2, reads
    assert sum(reads.values()) == 5, reads


def test_continuations_read_nothing_their_first_job_read(
    hub: FakeHub,
    paced: Settings,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    _assert_read_once(hub, _continued_sync(hub, paced, caplog))


def test_a_job_an_ended_test_left_does_not_touch_this_tests_sync(
    hub: FakeHub,
    paced: Settings,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What made the suite's embedded run read the labels once more (1 run in 3): a
    tracking refresh an earlier test left (3 s ahead) ran beside this sync, with this
    test's settings (the environment's), on this test's spec (SQLite gave its emptied
    table's ids out again): its writer read the labels. Now it never runs."""
    if not paced.database_url.startswith("sqlite") or paced.redis_url:
        pytest.skip("SQLite's reused ids and the embedded queue's leftover jobs only")
    with session_scope(paced.database_url) as session:
        next_spec = (session.scalar(select(func.max(Spec.id))) or 0) + 1
    with jobs_end_with_the_test():  # the earlier test
        # Queued as a card move queues it; it came due while this sync paused.
        embedded_queue(INTERACTIVE).put(refresh_tracking, (next_spec,), delay=2)
    full_name = _continued_sync(hub, paced, caplog)
    with session_scope(paced.database_url) as session:
        assert session.scalars(select(Spec.id)).one() == next_spec  # the id it named
    _assert_read_once(hub, full_name)


def test_the_end_of_a_sync_is_logged_once_for_all_its_jobs(
    hub: FakeHub,
    paced: Settings,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    text = spec_text("whole", 30)
    full_name = _repository_with(hub, "whole-sync", "whole", text)

    with running_job(EVENTS), session_scope(paced.database_url) as session:
        repository = record_repository(session, {"full_name": full_name, "default_branch": "main"})
        session.commit()
        github = github_side(paced, full_name, RepoConfig())
        commit, github.config = record_settings(session, paced, github.repo, repository, "main")
        report = sync_files(session, paced, github, repository, commit, ["specs/whole.yaml"])
    assert list(report.paused) == ["specs/whole.yaml"]  # the push's job ended, not the sync

    def ends() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage().startswith("synced whole")]

    _wait(lambda: _finished(paced, "whole") and ends(), 60)
    pauses = [r for r in caplog.records if r.getMessage().startswith("sync of whole paused")]
    assert len(ends()) == 1  # one line, at the end of the last job
    end = ends()[0]
    assert end.jobs == len(pauses) + 1 >= 3  # type: ignore[attr-defined]
    assert end.opened == 31  # type: ignore[attr-defined]  # every issue of the whole sync
