"""The gateway: the only code in specbridge that speaks HTTP to GitHub, and the board's columns.

May import the foundations (bot/*.py) only."""

from bot.github.auth import github_client, installation_id_for, repository_installation
from bot.github.connection import GitHubConnection
from bot.github.projects import Board, BoardGateway
from bot.github.repository import Issue, RepositoryGateway

__all__ = [
    "Board",
    "BoardGateway",
    "GitHubConnection",
    "Issue",
    "RepositoryGateway",
    "github_client",
    "installation_id_for",
    "repository_installation",
]
