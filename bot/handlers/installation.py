"""`installation` and `installation_repositories`: where the App is installed.

A repository the App is newly installed on (or added to) that already has
spec files gets them synced once, as a push of them would: in this delivery,
after its rows are committed, so a failure retries with the outbox's guarantees
and a sync run twice writes nothing the second time.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.repositories import find_repository, mark_removed, record_installation, record_repository
from bot.router import Event, router
from bot.sync import SyncFailed, sync_repository

log = logging.getLogger(__name__)


@router.register("installation")
def on_installation(event: Event) -> None:
    installation = record_installation(event.session, event.payload["installation"])
    now = datetime.now(UTC)
    if event.action == "deleted":
        installation.removed_at = now
        for repository in installation.repositories:
            mark_removed(repository)
        return
    if event.action == "suspend":
        installation.suspended_at = now
    elif event.action == "unsuspend":
        installation.suspended_at = None
    elif event.action == "created":
        installation.removed_at = None
    added = event.payload.get("repositories") or []
    for repository in added:
        record_repository(event.session, repository, installation)
    if event.action == "created":
        _first_sync(event, [r["full_name"] for r in added])


@router.register("installation_repositories", "added", "removed")
def on_installation_repositories(event: Event) -> None:
    installation = record_installation(event.session, event.payload["installation"])
    added = event.payload.get("repositories_added") or []
    for repository in added:
        record_repository(event.session, repository, installation)
    for data in event.payload.get("repositories_removed") or []:
        repository = find_repository(event.session, data["full_name"])
        if repository is not None:
            mark_removed(repository)
    if installation.suspended_at is None:
        _first_sync(event, [r["full_name"] for r in added])


def _first_sync(event: Event, full_names: list[str]) -> None:
    """Sync each repository's spec files; one failing never stops the others."""
    event.session.commit()
    failed = []
    for full_name in full_names:
        try:
            log.info("first sync of %s: %s", full_name, sync_repository(event.settings, full_name))
        except Exception as error:  # reported below; the next repository still syncs
            log.exception("first sync of %s failed", full_name)
            failed.append(f"{full_name}: {error}")
    if failed:
        raise SyncFailed("; ".join(failed))
