"""The GitHub side of one repository's sync: its gateways and its settings."""

from __future__ import annotations

from dataclasses import dataclass

from bot.github import BoardGateway, RepositoryGateway, github_client
from bot.repo_config import RepoConfig
from bot.settings import Settings
from storage.models import Repository


@dataclass
class GitHubSide:
    repo: RepositoryGateway
    boards: BoardGateway
    config: RepoConfig


def github_side_for(settings: Settings, repository: Repository, config: RepoConfig) -> GitHubSide:
    """The gateways of a recorded repository, through its installation's token."""
    installation = repository.installation_github_id
    connection = github_client(settings, installation)
    return GitHubSide(
        RepositoryGateway(connection, repository.full_name), BoardGateway(connection), config
    )
