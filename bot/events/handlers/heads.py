"""Syncing a repository at its head (the head check's deliveries, and first syncs),
and keeping `repositories.synced_head` current as push deliveries are handled."""

from __future__ import annotations

import logging

from sqlalchemy import update

from bot.events.heads import HEAD_SYNC
from bot.events.router import Event, router
from bot.repo_config import RepoConfig
from bot.repositories import find_repository
from bot.sync import GitHubSide, SyncReport, cancel_spec_at, sync_repository
from storage.models import Repository, SpecStatus

log = logging.getLogger(__name__)

# GitHub lists at most this many commits in a push payload: a longer push may
# have changed files the push handler never heard of.
PUSH_COMMITS_LISTED = 2048


@router.register(HEAD_SYNC)
def on_head_sync(event: Event) -> None:
    """Sync one repository whose head is not the synced one, unless the App left it."""
    full_name = event.payload["repository"]["full_name"]
    repository = find_repository(event.session, full_name)
    if repository is None or repository.removed_at is not None:
        return
    event.session.commit()
    log.info("sync of %s at its head: %s", full_name, sync_to_head(event, full_name))


def sync_to_head(event: Event, full_name: str) -> SyncReport:
    """Every spec file at the default branch's head, as `specbridge sync` does; specs
    whose file is gone cancelled; then the head recorded as synced."""
    report = sync_repository(event.settings, full_name)  # raises if any file failed
    head = report.commit
    assert head is not None
    repo = event.repository_gateway(full_name)
    session = event.session
    session.expire_all()  # sync_repository wrote through a session of its own
    repository = find_repository(session, full_name)
    assert repository is not None
    present = {*report.synced, *report.paused, *report.invalid}
    candidates = [
        spec.path
        for spec in repository.specs
        if spec.status is not SpecStatus.CANCELLED and spec.path not in present
    ]
    session.commit()
    gone = [path for path in candidates if repo.read_file(path, head) is None]
    if gone:
        config = RepoConfig.from_dict(repository.settings)
        github = GitHubSide(repo, event.board_gateway(), config)
        for path in gone:
            if cancel_spec_at(session, event.settings, github, repository, path, head):
                report.cancelled.append(path)
    repository.synced_head = head
    return report


@router.register("push")
def follow_push(event: Event) -> None:
    """After the push handler: a push from the synced head leaves the specs synced at its own.

    A push from any other commit means one was missed (or is still on its way):
    the head check syncs the repository then. So does a forced push, whose
    commits need not list every file that changed.
    """
    payload = event.payload
    default_branch = payload["repository"].get("default_branch")
    if payload["ref"] != f"refs/heads/{default_branch}" or payload.get("deleted"):
        return
    if payload.get("forced") or len(payload.get("commits") or []) >= PUSH_COMMITS_LISTED:
        return
    event.session.execute(
        update(Repository)
        .where(
            Repository.full_name == payload["repository"]["full_name"],
            Repository.synced_head == payload["before"],
        )
        .values(synced_head=payload["after"])
    )
