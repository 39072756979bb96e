"""The newest commit wins: a sync at a commit older than the one a spec was recorded
at (two pushes close together, or a late redelivery) records and writes nothing, and
the repository's settings recorded last are the newer head's."""

from __future__ import annotations

import threading

import requests
from sqlalchemy import select

from bot.github import RepositoryGateway
from bot.repo_config import RepoConfig
from bot.repositories import record_repository
from bot.settings import Settings
from bot.sync import record_settings, sync_files
from fakehub import FakeHub
from storage.db import session_scope
from storage.models import Repository, Spec, SpecStatus
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


class _SlowReader(RepositoryGateway):
    """Reads the head at once, then its files only once `go` is set (or 3 s passed)."""

    def __init__(self, gateway: RepositoryGateway) -> None:
        super().__init__(gateway.connection, gateway.full_name)
        self.read_head = threading.Event()
        self.go = threading.Event()

    def commit_sha(self, ref: str) -> str:
        sha = super().commit_sha(ref)
        self.read_head.set()
        return sha

    def read_file(self, path: str, ref: str) -> bytes | None:
        self.go.wait(timeout=3)
        return super().read_file(path, ref)


def _record_settings(settings: Settings, full_name: str, repo: RepositoryGateway) -> None:
    with session_scope(settings.database_url) as session:
        repository = record_repository(session, {"full_name": full_name})
        session.commit()
        record_settings(session, settings, repo, repository, "main")


def test_settings_read_at_an_older_head_never_replace_a_newer_heads(
    hub: FakeHub, settings: Settings
) -> None:
    config = ".github/specbridge.yml"
    full_name = new_repository(hub, "settings-newest-wins", {config: "specs_path: old/\n"})
    slow = _SlowReader(github_side(settings, full_name, RepoConfig()).repo)
    first = threading.Thread(target=_record_settings, args=(settings, full_name, slow))
    first.start()
    assert slow.read_head.wait(timeout=30)  # the first push's worker has read the old head

    _commit(hub, full_name, {config: "specs_path: new/\n"})
    second = threading.Thread(
        target=_record_settings,
        args=(settings, full_name, github_side(settings, full_name, RepoConfig()).repo),
    )
    second.start()
    second.join(timeout=1)  # done at once without the lock; waiting for the first with it
    slow.go.set()
    first.join(timeout=60)
    second.join(timeout=60)

    with session_scope(settings.database_url) as session:
        repository = session.scalars(select(Repository)).one()
        assert repository.settings["specs_path"] == "new/"
