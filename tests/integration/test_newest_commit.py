"""The newest commit wins: a sync at a commit older than the one a spec was recorded
at (two pushes close together, or a late redelivery) records and writes nothing."""

from __future__ import annotations

import requests
from sqlalchemy import select

from bot.repo_config import RepoConfig
from bot.repositories import record_repository
from bot.settings import Settings
from bot.sync import sync_files
from fakehub import FakeHub
from storage.db import session_scope
from storage.models import Spec, SpecStatus
from tests.integration.conftest import github_side, new_repository

PATH = "specs/rocket.yaml"


def _spec(title: str) -> str:
    return f"id: rocket\ntitle: Rocket\nphase: tasks\ntasks:\n  - {{id: T-1, title: {title}}}\n"


def _commit(hub: FakeHub, full_name: str, files: dict[str, str | None]) -> str:
    response = requests.post(
        f"{hub.url}/_admin/repos/{full_name}/commits", json={"files": files}, timeout=30
    )
    response.raise_for_status()
    return response.json()["sha"]


def _sync(settings: Settings, full_name: str, commit: str, removed: bool = False) -> None:
    with session_scope(settings.database_url) as session:
        repository = record_repository(session, {"full_name": full_name})
        github = github_side(settings, full_name, RepoConfig())
        changed, gone = ([], [PATH]) if removed else ([PATH], [])
        sync_files(session, settings, github, repository, commit, changed, gone)


def _recorded(settings: Settings) -> Spec:
    with session_scope(settings.database_url) as session:
        spec = session.scalars(select(Spec)).one()
        session.expunge(spec)
        return spec


def _issue_titles(hub: FakeHub, full_name: str) -> list[str]:
    state = requests.get(f"{hub.url}/_admin/state", timeout=30).json()
    repo = next(r for r in state["repositories"] if r["full_name"] == full_name)
    return sorted(i["title"] for i in repo["issues"] if i["title"].startswith("T-1"))


def test_an_older_push_synced_after_a_newer_one_changes_nothing(
    hub: FakeHub, settings: Settings
) -> None:
    full_name = new_repository(hub, "newest-wins")
    older = _commit(hub, full_name, {PATH: _spec("Old title")})
    newer = _commit(hub, full_name, {PATH: _spec("New title")})

    _sync(settings, full_name, newer)
    _sync(settings, full_name, older)  # its worker read the files first, took the lock last

    assert _recorded(settings).source_commit == newer
    assert _issue_titles(hub, full_name) == ["T-1: New title"]


def test_an_older_push_does_not_bring_back_a_deleted_spec(hub: FakeHub, settings: Settings) -> None:
    full_name = new_repository(hub, "deleted-stays-deleted")
    first = _commit(hub, full_name, {PATH: _spec("Title")})
    _sync(settings, full_name, first)
    edited = _commit(hub, full_name, {PATH: _spec("Edited")})
    deleted = _commit(hub, full_name, {PATH: None})

    _sync(settings, full_name, deleted, removed=True)
    _sync(settings, full_name, edited)

    spec = _recorded(settings)
    assert (spec.status, spec.source_commit) == (SpecStatus.CANCELLED, deleted)
    assert _issue_titles(hub, full_name) == ["T-1: Title"]
