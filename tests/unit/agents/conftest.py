"""A workspace on a repository of the GitHub double (in this process), fetched and
pushed over HTTP as a run does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from bot.agents.workspace import Workspace
from fakehub import FakeHub

BRANCH = "specbridge/rocket/T-1"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    hub = FakeHub(None, "", tmp_path_factory.mktemp("hub"))
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture
def repo(hub: FakeHub) -> str:
    """A new repository on the double (its README only); its URL for git."""
    name = f"r{uuid.uuid4().hex[:10]}"
    answer = requests.post(
        f"{hub.url}/_admin/repos",
        json={"owner": "acme", "name": name, "files": {"README.md": "rocket\n"}},
        timeout=30,
    )
    answer.raise_for_status()
    return f"{hub.url}/acme/{name}.git"


@pytest.fixture
def token(hub: FakeHub, repo: str) -> str:
    """An installation token that may push to `repo`, and only there."""
    answer = requests.post(
        f"{hub.url}/app/installations/1/access_tokens",
        json={"repositories": [name_of(repo)], "permissions": {"contents": "write"}},
        timeout=30,
    )
    answer.raise_for_status()
    return str(answer.json()["token"])


@pytest.fixture
def workspace(repo: str, token: str) -> Iterator[Workspace]:
    workspace = Workspace.create(repo, "main", BRANCH, token)
    yield workspace
    workspace.remove()


def name_of(repo: str) -> str:
    return repo.rsplit("/", 1)[1].removesuffix(".git")


def commit(hub: FakeHub, repo: str, files: dict[str, str], branch: str = "main") -> None:
    """Files committed to the repository on the double, as a person pushing them."""
    answer = requests.post(
        f"{hub.url}/_admin/repos/acme/{name_of(repo)}/commits",
        json={"files": files, "branch": branch},
        timeout=30,
    )
    answer.raise_for_status()


def pushed(hub: FakeHub, repo: str, path: str, branch: str = BRANCH) -> bytes | None:
    """The file at `path` on `branch` of the repository on the double; None if absent."""
    git = hub.state.repo("acme", name_of(repo)).git
    return git.read(branch, path) if git.sha(branch) is not None else None
