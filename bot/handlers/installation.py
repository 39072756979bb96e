"""`installation` and `installation_repositories`: where the App is installed."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.repositories import find_repository, mark_removed, record_installation, record_repository
from bot.router import Event, router


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
    for repository in event.payload.get("repositories") or []:
        record_repository(event.session, repository, installation)


@router.register("installation_repositories", "added", "removed")
def on_installation_repositories(event: Event) -> None:
    installation = record_installation(event.session, event.payload["installation"])
    for repository in event.payload.get("repositories_added") or []:
        record_repository(event.session, repository, installation)
    for data in event.payload.get("repositories_removed") or []:
        repository = find_repository(event.session, data["full_name"])
        if repository is not None:
            mark_removed(repository)
