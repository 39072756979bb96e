"""Installation and Repository rows, kept current from webhook payloads, and the spec
a repository's issue number tracks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Installation, IssueGroup, Repository, Spec


def record_installation(session: Session, data: dict[str, Any]) -> Installation:
    installation = session.scalars(
        select(Installation).where(Installation.github_id == data["id"])
    ).first()
    if installation is None:
        installation = Installation(github_id=data["id"], account_login="")
        session.add(installation)
    account = data.get("account") or {}
    if account:
        installation.account_login = account.get("login", installation.account_login)
        installation.account_type = account.get("type", installation.account_type)
    session.flush()
    return installation


def record_repository(
    session: Session, data: dict[str, Any], installation: Installation | None = None
) -> Repository:
    """The repository of a payload (full or short form), created on first sight."""
    repository = session.scalars(
        select(Repository).where(Repository.full_name == data["full_name"])
    ).first()
    if repository is None and data.get("id") is not None:
        # Renamed since we last saw it: same GitHub id, new name.
        repository = session.scalars(
            select(Repository).where(Repository.github_id == data["id"])
        ).first()
    if repository is None:
        repository = Repository(full_name=data["full_name"])
        session.add(repository)
    repository.full_name = data["full_name"]
    repository.github_id = data.get("id", repository.github_id)
    repository.default_branch = data.get("default_branch") or repository.default_branch or "main"
    repository.removed_at = None
    if installation is not None:
        repository.installation = installation
    session.flush()
    return repository


def repository_from_payload(session: Session, payload: dict[str, Any]) -> Repository:
    installation = None
    if payload.get("installation"):
        installation = record_installation(session, payload["installation"])
    return record_repository(session, payload["repository"], installation)


def find_repository(session: Session, full_name: str) -> Repository | None:
    return session.scalars(select(Repository).where(Repository.full_name == full_name)).first()


def mark_removed(repository: Repository) -> None:
    repository.removed_at = repository.removed_at or datetime.now(UTC)


def spec_tracked_by(session: Session, repository_id: int, number: int) -> Spec | None:
    """The spec whose tracking issue (or group issue) is #number."""
    spec = session.scalars(
        select(Spec).where(
            Spec.repository_id == repository_id, Spec.tracking_issue_number == number
        )
    ).first()
    if spec is None:
        group = session.scalars(
            select(IssueGroup)
            .join(Spec)
            .where(Spec.repository_id == repository_id, IssueGroup.issue_number == number)
        ).first()
        spec = group.spec if group else None
    return spec
