"""The bot's git after the agent: nothing the agent wrote runs, or sends the token anywhere.

The agent is done; specbridge commits what it left and pushes, outside the
sandbox, as the worker's account, with the push token. Each test writes one of
the ways an agent has steered that git (finding 1 of issue 29) into the clone as
the agent sees it, then lets the workspace commit and push to the GitHub double
over HTTP. Each proves that no program of the agent's ran (the marker file it
would write stays absent) and that nothing reached an address it chose (the
listener sees no connection), and that the branch holds the agent's work.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.agents.workspace import Workspace, WorkspaceError
from fakehub import FakeHub
from tests.unit.agents.conftest import BRANCH, pushed

WORK = "the agent's work\n"


@dataclass
class Listener:
    """A TCP port that records who connects, and what they send first; answers 401."""

    port: int
    connections: list[bytes] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = socket.create_server(("127.0.0.1", 0))
    found = Listener(server.getsockname()[1])

    def serve() -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            client.settimeout(2)
            try:
                found.connections.append(client.recv(65536))
                client.sendall(
                    b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=x\r\n"
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
            except OSError:
                pass
            client.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield found
    server.close()


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """Where a program of the agent's writes, outside its clone, if it ever runs."""
    (tmp_path / "outside").mkdir()
    return tmp_path / "outside" / "marker"


def program(path: Path, marker: Path) -> str:
    """An executable of the agent's: it notes that it ran, and fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\necho "ran $0 $*" >> {marker}\nexit 1\n')
    path.chmod(0o755)
    return str(path)


def agent_git_dir(workspace: Workspace) -> Path:
    """The `.git` of the clone as the agent sees it (and writes it)."""
    return workspace.checkout / ".git"


def add_config(workspace: Workspace, text: str) -> None:
    with (agent_git_dir(workspace) / "config").open("a") as config:
        config.write(text)


def commit_and_push(workspace: Workspace, token: str) -> str | None:
    """What the bot does once the agent is gone; git's refusal, if it refused."""
    (workspace.checkout / "work.txt").write_text(WORK)
    try:
        workspace.commit_and_push(BRANCH, "T-1: the work", token)
    except WorkspaceError as refused:
        return str(refused)
    return None


def pushed_files(hub: FakeHub, repo: str) -> dict[str, bytes | None]:
    if pushed(hub, repo, "README.md") is None:
        return {}
    return {path: pushed(hub, repo, path) for path in ("work.txt", "README.md", "secret.txt")}


def assert_contained(
    hub: FakeHub, repo: str, marker: Path, listener: Listener, refused: str | None
) -> None:
    assert not marker.exists(), marker.read_text()
    assert listener.connections == []
    # Whatever the agent did to its `.git`, its work is pushed, and nothing else.
    assert refused is None, refused
    assert pushed_files(hub, repo) == {
        "work.txt": WORK.encode(),
        "README.md": b"rocket\n",
        "secret.txt": None,
    }


HOOKS = [
    "post-commit",
    "pre-push",
    "reference-transaction",
    "prepare-commit-msg",
    "post-index-change",
    "pre-commit",
    "commit-msg",
    "post-checkout",
    "pre-auto-gc",
]


@pytest.mark.parametrize("hook", HOOKS)
def test_a_hook_in_the_agents_git_dir_does_not_run(
    hub: FakeHub,
    repo: str,
    workspace: Workspace,
    token: str,
    marker: Path,
    listener: Listener,
    hook: str,
) -> None:
    program(agent_git_dir(workspace) / "hooks" / hook, marker)

    refused = commit_and_push(workspace, token)

    assert_contained(hub, repo, marker, listener, refused)


def test_core_hooks_path_does_not_run_the_agents_hooks(
    hub: FakeHub, repo: str, workspace: Workspace, token: str, marker: Path, listener: Listener
) -> None:
    hooks = workspace.checkout / "my-hooks"
    for hook in HOOKS:
        program(hooks / hook, marker)
    add_config(workspace, f"[core]\n\thooksPath = {hooks}\n")
    (workspace.checkout / ".gitignore").write_text("my-hooks/\n")

    refused = commit_and_push(workspace, token)

    assert_contained(hub, repo, marker, listener, refused)


# Each: the agent's configuration, given the marker's program and the listener's URL.
CONFIGS: dict[str, Callable[[str, str, Path], str]] = {
    "core.fsmonitor": lambda run, url, outside: f"[core]\n\tfsmonitor = {run}\n",
    "filter clean with .gitattributes": lambda run, url, outside: (
        f'[filter "x"]\n\tclean = {run}\n\tsmudge = {run}\n\trequired = false\n'
    ),
    "filter process": lambda run, url, outside: f'[filter "x"]\n\tprocess = {run}\n',
    "gpg.program": lambda run, url, outside: (
        f"[commit]\n\tgpgSign = true\n[gpg]\n\tprogram = {run}\n[push]\n\tgpgSign = true\n"
    ),
    "core.askPass": lambda run, url, outside: (
        f'[core]\n\taskPass = {run}\n[remote "origin"]\n\turl = {url}/acme/rocket.git\n'
    ),
    "credential.helper": lambda run, url, outside: (
        f'[credential]\n\thelper = !{run}\n[remote "origin"]\n\turl = {url}/acme/rocket.git\n'
    ),
    "core.sshCommand": lambda run, url, outside: (
        f'[core]\n\tsshCommand = {run}\n[remote "origin"]\n\turl = ssh://git@127.0.0.1:1/x.git\n'
    ),
    "remote.origin.receivepack": lambda run, url, outside: (
        f'[remote "origin"]\n\turl = {outside}\n\treceivepack = {run}\n'
    ),
    "an ext:: URL": lambda run, url, outside: (
        f'[protocol]\n\tallow = always\n[remote "origin"]\n\turl = "ext::{run} %S"\n'
    ),
    "remote.origin.url": lambda run, url, outside: (
        f'[remote "origin"]\n\turl = {url}/acme/rocket.git\n'
    ),
    "remote.origin.pushurl": lambda run, url, outside: (
        f'[remote "origin"]\n\tpushurl = {url}/acme/rocket.git\n'
    ),
    "url.insteadOf": lambda run, url, outside: f'[url "{url}/"]\n\tpushInsteadOf = http\n',
    "http.proxy": lambda run, url, outside: f"[http]\n\tproxy = {url}\n",
    "http.extraHeader and cookies": lambda run, url, outside: (
        f"[http]\n\tsaveCookies = true\n\tcookieFile = {outside}/cookies\n"
    ),
    "include.path": lambda run, url, outside: f"[include]\n\tpath = {outside}/included\n",
    "core.pager and editor": lambda run, url, outside: (
        f"[core]\n\tpager = {run}\n\teditor = {run}\n[sequence]\n\teditor = {run}\n"
    ),
    "gc.auto": lambda run, url, outside: (
        f"[gc]\n\tauto = 1\n\tautoDetach = false\n[core]\n\thooksPath = {outside}/hooks\n"
    ),
}


@pytest.mark.parametrize("vector", sorted(CONFIGS))
def test_the_agents_git_configuration_is_not_the_bots(
    hub: FakeHub,
    repo: str,
    workspace: Workspace,
    token: str,
    marker: Path,
    listener: Listener,
    tmp_path: Path,
    vector: str,
) -> None:
    outside = tmp_path / "outside"
    run = program(tmp_path / "agent-program", marker)
    program(outside / "hooks" / "pre-auto-gc", marker)
    (outside / "included").write_text(
        f"[core]\n\tfsmonitor = {run}\n\thooksPath = {outside}/hooks\n"
    )
    for hook in HOOKS:
        program(outside / "hooks" / hook, marker)
    add_config(workspace, CONFIGS[vector](run, listener.url, outside))
    (workspace.checkout / ".gitattributes").write_text("* filter=x\n")

    refused = commit_and_push(workspace, token)

    assert not marker.exists(), marker.read_text()
    assert listener.connections == []
    assert not (outside / "cookies").exists()
    assert refused is None, refused
    assert pushed_files(hub, repo)["work.txt"] == WORK.encode()


def test_core_worktree_outside_the_clone_commits_nothing_of_it(
    hub: FakeHub,
    repo: str,
    workspace: Workspace,
    token: str,
    marker: Path,
    listener: Listener,
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    (outside / "secret.txt").write_text("root's secret\n")
    (outside / "work.txt").write_text(WORK)
    add_config(workspace, f"[core]\n\tworktree = {outside}\n")

    refused = commit_and_push(workspace, token)

    assert_contained(hub, repo, marker, listener, refused)


def test_a_git_file_at_the_root_of_the_clone_is_not_followed(
    hub: FakeHub,
    repo: str,
    workspace: Workspace,
    token: str,
    marker: Path,
    listener: Listener,
    tmp_path: Path,
) -> None:
    """The agent replaces its `.git` with a file naming a git dir of its own making."""
    evil = tmp_path / "evil.git"
    subprocess.run(["git", "init", "-q", "--bare", str(evil)], check=True)
    for hook in HOOKS:
        program(evil / "hooks" / hook, marker)
    with (evil / "config").open("a") as config:
        config.write(f"[core]\n\tfsmonitor = {program(tmp_path / 'p', marker)}\n\tbare = false\n")
        config.write(f'[remote "origin"]\n\turl = {listener.url}/x.git\n')
    git_dir = agent_git_dir(workspace)
    if git_dir.is_dir() and not git_dir.is_symlink():
        subprocess.run(["rm", "-rf", str(git_dir)], check=True)
    git_dir.write_text(f"gitdir: {evil}\n")

    refused = commit_and_push(workspace, token)

    assert_contained(hub, repo, marker, listener, refused)


def test_a_repository_nested_in_the_clone_runs_nothing_and_is_not_committed(
    hub: FakeHub,
    repo: str,
    workspace: Workspace,
    token: str,
    marker: Path,
    listener: Listener,
    tmp_path: Path,
) -> None:
    nested = workspace.checkout / "vendor" / "lib"
    subprocess.run(["git", "init", "-q", str(nested)], check=True)
    (nested / "code.py").write_text("x = 1\n")
    identity = ["-c", "user.name=a", "-c", "user.email=a@example.com"]
    subprocess.run(["git", "-C", str(nested), "add", "."], check=True)
    subprocess.run(["git", "-C", str(nested), *identity, "commit", "-qm", "x"], check=True)
    with (nested / ".git" / "config").open("a") as config:
        config.write(f"[core]\n\tfsmonitor = {program(tmp_path / 'p', marker)}\n")
    for hook in HOOKS:
        program(nested / ".git" / "hooks" / hook, marker)

    refused = commit_and_push(workspace, token)

    assert not marker.exists(), marker.read_text()
    assert listener.connections == []
    assert refused is not None and "vendor/lib" in refused
    assert pushed_files(hub, repo) == {}
