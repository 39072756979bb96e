"""Who may steer: changing a ticket, by a command or by moving its card, needs
write access to the repository (as Prow's plugins check before they run)."""

from __future__ import annotations

from bot.github import RepositoryGateway

# Associations that prove write access without asking GitHub.
WRITERS_BY_ASSOCIATION = {"OWNER"}
WRITE_PERMISSIONS = {"admin", "maintain", "write"}


def permission_to_steer(repo: RepositoryGateway, login: str, association: str = "NONE") -> str:
    """The person's permission on the repository: admin, maintain, write, triage, read or none."""
    if association in WRITERS_BY_ASSOCIATION:
        return "admin"
    return repo.permission_of(login)


def may_steer(permission: str) -> bool:
    return permission in WRITE_PERMISSIONS
