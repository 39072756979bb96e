"""The double serves git as github.com does: smart HTTP, anonymous reads of a
public repository, and pushes only with a token allowed to write there."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from fakehub import FakeHub

GIT_ENV = {"PATH": os.environ["PATH"], "GIT_TERMINAL_PROMPT": "0", "HOME": "/nonexistent"}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    hub = FakeHub(None, "", tmp_path_factory.mktemp("hub"))
    hub.start()
    for name, private in (("open", False), ("secret", True), ("other", False)):
        requests.post(
            f"{hub.url}/_admin/repos",
            json={"owner": "acme", "name": name, "private": private},
            timeout=30,
        ).raise_for_status()
    yield hub
    hub.stop()


def _token(hub: FakeHub, **body: object) -> str:
    answer = requests.post(f"{hub.url}/app/installations/1/access_tokens", json=body, timeout=30)
    answer.raise_for_status()
    return answer.json()["token"]


def _git(*args: str, cwd: Path, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(GIT_ENV)
    if token:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env |= {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        }
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)


def _clone_and_commit(hub: FakeHub, tmp_path: Path, name: str) -> Path:
    checkout = tmp_path / name
    assert (
        _git("clone", "-q", f"{hub.url}/acme/{name}.git", str(checkout), cwd=tmp_path).returncode
        == 0
    )
    (checkout / "change.txt").write_text("agent was here\n")
    _git("add", ".", cwd=checkout)
    identity = ["-c", "user.name=a", "-c", "user.email=a@example.com"]
    assert _git(*identity, "commit", "-qm", "change", cwd=checkout).returncode == 0
    return checkout


def test_a_public_repository_is_cloned_without_a_credential_and_not_pushed_to(
    hub: FakeHub, tmp_path: Path
) -> None:
    checkout = _clone_and_commit(hub, tmp_path, "open")
    pushed = _git("push", "-q", "origin", "HEAD:refs/heads/anonymous", cwd=checkout)
    assert pushed.returncode != 0
    assert "Authentication failed" in pushed.stderr or "could not read Username" in pushed.stderr


def test_a_push_needs_a_token_allowed_to_write_that_repository(
    hub: FakeHub, tmp_path: Path
) -> None:
    checkout = _clone_and_commit(hub, tmp_path, "open")
    elsewhere = _token(hub, repositories=["other"], permissions={"contents": "write"})
    read_only = _token(hub, repositories=["open"], permissions={"contents": "read"})
    allowed = _token(hub, repositories=["open"], permissions={"contents": "write"})

    for refused in (elsewhere, read_only, "ghs_not_issued_by_anyone"):
        result = _git("push", "-q", "origin", "HEAD:refs/heads/x", cwd=checkout, token=refused)
        assert result.returncode != 0, refused
    result = _git("push", "-q", "origin", "HEAD:refs/heads/agent", cwd=checkout, token=allowed)
    assert result.returncode == 0, result.stderr

    repo = hub.state.repo("acme", "open")
    assert repo is not None and repo.git.sha("agent") == repo.git.refs()["agent"]
    [push] = [d for d in hub.webhooks.deliveries if d["event"] == "push"][-1:]
    assert push["payload"]["ref"] == "refs/heads/agent"


def test_a_private_repository_needs_a_token_to_be_read(hub: FakeHub, tmp_path: Path) -> None:
    url = f"{hub.url}/acme/secret.git"
    assert _git("ls-remote", url, cwd=tmp_path).returncode != 0
    token = _token(hub, repositories=["secret"], permissions={"contents": "read"})
    assert _git("ls-remote", url, cwd=tmp_path, token=token).returncode == 0


def test_a_push_to_a_pull_requests_branch_moves_its_head(hub: FakeHub, tmp_path: Path) -> None:
    """As on GitHub: the pull request follows its branch, with `pull_request` synchronize."""
    checkout = _clone_and_commit(hub, tmp_path, "open")
    token = _token(hub, repositories=["open"], permissions={"contents": "write"})
    assert (
        _git("push", "-q", "origin", "HEAD:refs/heads/fix", cwd=checkout, token=token).returncode
        == 0
    )
    opened = requests.post(
        f"{hub.url}/repos/acme/open/pulls",
        json={"title": "Fix", "head": "fix", "base": "main"},
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    opened.raise_for_status()
    (checkout / "change.txt").write_text("and again\n")
    identity = ["-c", "user.name=a", "-c", "user.email=a@example.com"]
    _git(*identity, "commit", "-qam", "again", cwd=checkout)
    assert (
        _git("push", "-q", "origin", "HEAD:refs/heads/fix", cwd=checkout, token=token).returncode
        == 0
    )

    repo = hub.state.repo("acme", "open")
    assert repo is not None
    head = repo.git.refs()["fix"]
    pulled = requests.get(f"{hub.url}/repos/acme/open/pulls/{opened.json()['number']}", timeout=30)
    assert pulled.json()["head"]["sha"] == head
    [synchronize] = [d for d in hub.webhooks.deliveries if d["event"] == "pull_request"][-1:]
    assert synchronize["action"] == "synchronize"
    assert synchronize["payload"]["pull_request"]["head"]["sha"] == head
