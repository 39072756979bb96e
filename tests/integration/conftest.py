from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from bot.github import BoardGateway, RepositoryGateway, github_client
from bot.repo_config import RepoConfig
from bot.settings import Settings, load_settings
from bot.sync import GitHubSide
from fakehub import FakeHub
from tests.support import SPECBRIDGE_COLUMNS


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    """The GitHub double in this process, webhooks going nowhere."""
    hub = FakeHub(None, "", tmp_path_factory.mktemp("hub"))
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture
def settings(db: str, hub: FakeHub) -> Settings:
    return load_settings(
        {
            "DATABASE_URL": db,
            "GITHUB_API_URL": hub.url,
            "GITHUB_TOKEN": "t",
            "GITHUB_WRITE_INTERVAL": "0",
        }
    )


def new_repository(hub: FakeHub, name: str, files: dict[str, str] | None = None) -> str:
    response = requests.post(
        f"{hub.url}/_admin/repos",
        json={
            "owner": "acme",
            "name": name,
            "files": files or {"README.md": "x\n"},
            "project": {"number": 1},
            "status_options": SPECBRIDGE_COLUMNS,
        },
        timeout=30,
    )
    response.raise_for_status()
    return f"acme/{name}"


def github_side(settings: Settings, full_name: str, config: RepoConfig) -> GitHubSide:
    client = github_client(settings, None)
    return GitHubSide(RepositoryGateway(client, full_name), BoardGateway(client), config)
