"""A title GitHub cannot hold is refused when the spec is read, not at the INSERT: on
PostgreSQL a 600-character task title used to pass validation, fail the insert into
spec_tasks.title VARCHAR(512) and have its push retried without end (issue 29)."""

from __future__ import annotations

from sqlalchemy import select

from bot.repo_config import RepoConfig
from bot.repositories import record_repository
from bot.settings import Settings
from bot.sync import sync_files
from fakehub import FakeHub
from storage.db import session_scope
from storage.models import Spec, SpecStatus, SpecTask
from tests.integration.conftest import github_side, new_repository

LONGEST = "y" * 252  # "T1: " and 252 characters: the 256 GitHub holds


def spec(name: str, title: str) -> str:
    return f"id: {name}\ntitle: {name}\nphase: tasks\ntasks:\n  - id: T1\n    title: {title}\n"


def test_a_title_too_long_for_github_is_refused_and_its_push_ends(
    hub: FakeHub, settings: Settings
) -> None:
    files = {"specs/long.yaml": spec("long", "x" * 600), "specs/fits.yaml": spec("fits", LONGEST)}
    full_name = new_repository(hub, "long-titles", files)
    config = RepoConfig(project_owner="acme", project_number=1)
    with session_scope(settings.database_url) as session:
        repository = record_repository(session, {"full_name": full_name, "default_branch": "main"})
        report = sync_files(  # raised SyncFailed (so the push was retried) on PostgreSQL
            session,
            settings,
            github_side(settings, full_name, config),
            repository,
            "main",
            list(files),
            report_invalid_on_commit=False,
        )
    assert report.synced == ["specs/fits.yaml"] and not report.failed
    [finding] = report.invalid["specs/long.yaml"]
    assert (finding.line, finding.code) == (6, "too-long")
    with session_scope(settings.database_url) as session:
        refused = session.scalars(select(Spec).where(Spec.path == "specs/long.yaml")).one()
        assert refused.status is SpecStatus.INVALID
        assert [f["code"] for f in refused.findings] == ["too-long"]
        assert session.scalars(select(SpecTask.title)).all() == [LONGEST]
    titles = [issue.title for issue in hub.state.repos[full_name].issues.values()]
    assert f"T1: {LONGEST}" in titles  # exactly GitHub's 256


def test_a_refused_spec_at_a_long_path_is_recorded(hub: FakeHub, settings: Settings) -> None:
    path = "specs/" + "deep/" * 250 + "a.yaml"  # 1,262 characters: git allows it
    full_name = new_repository(hub, "long-path", {path: "title: [\n"})
    config = RepoConfig(project_owner="acme", project_number=1)
    with session_scope(settings.database_url) as session:
        repository = record_repository(session, {"full_name": full_name, "default_branch": "main"})
        report = sync_files(
            session,
            settings,
            github_side(settings, full_name, config),
            repository,
            "main",
            [path],
            report_invalid_on_commit=False,
        )
    assert list(report.invalid) == [path]
    with session_scope(settings.database_url) as session:
        assert session.scalars(select(Spec.path)).all() == [path]
