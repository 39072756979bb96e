"""The gateway: the only code in specbridge that speaks HTTP to GitHub."""

from bot.github.auth import github_client, installation_id_for
from bot.github.client import Issue, RepositoryGateway
from bot.github.projects import Board, BoardGateway

__all__ = [
    "Board",
    "BoardGateway",
    "Issue",
    "RepositoryGateway",
    "github_client",
    "installation_id_for",
]
