# ruff: noqa: F811 - the fixtures of test_fakehub.py, imported to be shared
"""Branches made and moved through the git database API, files written through the
contents API, and branches compared, on the double as on GitHub: through specbridge's
gateway."""

from __future__ import annotations

import pytest
import requests

from bot.github import GitHubConnection
from bot.github.contents import ContentsGateway, FileChanged
from bot.github.repository import DiffSize, RepositoryGateway
from fakehub import FakeHub
from fakehub.openapi import github_rest
from tests.unit.double.test_fakehub import (  # noqa: F401 - fixtures
    Receiver,
    client,
    hub,
    receiver,
    repo,
)


def test_a_branch_is_made_written_to_and_moved_back(
    hub: FakeHub, client: GitHubConnection, repo: str
) -> None:
    contents = ContentsGateway(client, repo)
    main = contents.branch("main")
    assert main is not None and not main.protected
    contents.create_branch("specbridge/progress", main.sha)
    version = contents.file("specs/a.yaml", "specbridge/progress")
    assert version is not None and version.content == b"title: A\n"
    written = contents.put_file(
        "specs/a.yaml", b"title: A2\n", "Progress", "specbridge/progress", version.sha
    )
    branch = contents.branch("specbridge/progress")
    assert branch is not None and branch.sha == written and branch.parents == (main.sha,)
    with pytest.raises(FileChanged):  # the version it replaces is not the branch's now
        contents.put_file("specs/a.yaml", b"x\n", "Again", "specbridge/progress", version.sha)
    contents.move_branch("specbridge/progress", main.sha)  # back, dropping the commit
    moved = contents.branch("specbridge/progress")
    assert moved is not None and moved.sha == main.sha
    number = contents.open_pull_request_for("specbridge/progress", "main", "P", "body")
    assert contents.open_pull_request_for("specbridge/progress", "main", "P", "body") == number
    state = requests.get(f"{hub.url}/_admin/state", timeout=30).json()
    assert state["mismatches"] == []


def test_a_protected_branch_refuses_a_file_write(
    hub: FakeHub, client: GitHubConnection, repo: str
) -> None:
    requests.post(f"{hub.url}/_admin/repos/{repo}/protect", json={}, timeout=30)
    contents = ContentsGateway(client, repo)
    main = contents.branch("main")
    assert main is not None and main.protected
    version = contents.file("specs/a.yaml", "main")
    assert version is not None
    with pytest.raises(FileChanged, match="must be made through a pull request"):
        contents.put_file("specs/a.yaml", b"x\n", "Progress", "main", version.sha)


def test_a_comparison_counts_each_files_lines_as_github_does(
    hub: FakeHub, client: GitHubConnection, repo: str
) -> None:
    requests.post(
        f"{hub.url}/_admin/repos/{repo}/commits",
        json={
            "branch": "attempt",
            "files": {"specs/a.yaml": "title: A2\nphase: tasks\n", "specs/b.yaml": None},
            "message": "Change a, remove b",
        },
        timeout=30,
    ).raise_for_status()
    answer = requests.get(f"{hub.url}/repos/{repo}/compare/main...attempt", timeout=30).json()
    required = github_rest().spec["components"]["schemas"]["diff-entry"]["required"]
    assert all(set(required) <= set(entry) for entry in answer["files"])
    assert RepositoryGateway(client, repo).diff_size("main", "attempt") == DiffSize(
        files=2, additions=2, deletions=2
    )
