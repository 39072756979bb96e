"""`installation` and `installation_repositories`: where the App is installed.

A repository the App is newly installed on (or added to) that already has
spec files gets them synced once, as a push of them would. Each repository's
first sync is a delivery of its own (`specbridge_first_sync`, handed on from
this one): an organization that installs the App on fifty repositories gets
fifty jobs, each within the job timeout and retried alone, so one failing never
makes the others run again, and none is lost if the queue is.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from bot.events.deliveries import hand_on
from bot.events.handlers.heads import sync_to_head
from bot.events.router import Event, router
from bot.repositories import find_repository, mark_removed, record_installation, record_repository

log = logging.getLogger(__name__)

# The event of the deliveries handed on for first syncs (not one of GitHub's).
FIRST_SYNC = "specbridge_first_sync"


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
        _hand_on_first_syncs(event, added)


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
        _hand_on_first_syncs(event, added)


@router.register(FIRST_SYNC)
def on_first_sync(event: Event) -> None:
    """Sync one repository's spec files, unless the App left it meanwhile."""
    full_name = event.payload["repository"]["full_name"]
    repository = find_repository(event.session, full_name)
    if repository is None or repository.removed_at is not None:
        return
    event.session.commit()
    log.info("first sync of %s: %s", full_name, sync_to_head(event, full_name))


def _hand_on_first_syncs(event: Event, repositories: list[dict[str, Any]]) -> None:
    event.session.commit()  # the repositories' rows first: their syncs may start at once
    for repository in repositories:
        payload = {
            "repository": {"id": repository["id"], "full_name": repository["full_name"]},
            "installation": {"id": event.installation_id},
        }
        hand_on(event.settings, event.delivery_id, f"sync-{repository['id']}", FIRST_SYNC, payload)
