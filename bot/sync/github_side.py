"""The GitHub side of one repository's sync: its gateways and its settings."""

from __future__ import annotations

from dataclasses import dataclass

from bot.github import BoardGateway, RepositoryGateway
from bot.repo_config import RepoConfig


@dataclass
class GitHubSide:
    repo: RepositoryGateway
    boards: BoardGateway
    config: RepoConfig
