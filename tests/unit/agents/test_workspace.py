"""What the bot takes of an agent's tree: checked path by path, never a link leaving it,
never a file that would hang or flood it, never a workflow; and a workspace the agent
tried to keep (`chmod 000`) is removed all the same."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from bot.agents import workspace as workspace_module
from bot.agents.presets import PRESETS
from bot.agents.prompt import read_instructions
from bot.agents.tree import read_text
from bot.agents.workspace import Workspace, WorkspaceError, remove_tree
from fakehub import FakeHub
from tests.unit.agents.conftest import BRANCH, commit, name_of, pushed


def write(workspace: Workspace, files: dict[str, str]) -> None:
    for path, text in files.items():
        (workspace.checkout / path).parent.mkdir(parents=True, exist_ok=True)
        (workspace.checkout / path).write_text(text)


def agent_git(workspace: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    """git as the agent runs it in its tree: discovering the tree's own `.git`."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workspace.agent_home), "GIT_CONFIG_NOSYSTEM": "1"}
    env |= {"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "a"}
    env |= {"GIT_COMMITTER_EMAIL": "a@x"}
    return subprocess.run(
        ["git", *args], cwd=workspace.checkout, env=env, capture_output=True, text=True
    )


def test_the_agent_has_a_repository_of_its_own_with_the_branchs_history(
    workspace: Workspace,
) -> None:
    workspace.hand_over()
    assert agent_git(workspace, "status", "--porcelain").stdout == ""
    assert agent_git(workspace, "log", "--oneline").stdout.strip() != ""
    assert agent_git(workspace, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip() == BRANCH

    write(workspace, {"work.txt": "done\n"})
    assert agent_git(workspace, "add", "work.txt").returncode == 0
    assert agent_git(workspace, "commit", "-qm", "mine").returncode == 0  # agents do commit
    assert agent_git(workspace, "push", "origin", "HEAD").returncode != 0  # it has no remote

    # The bot's repository is untouched by it: the change is still the agent's to push.
    assert workspace.changes().kept == ("work.txt",)


def test_a_mixed_change_leaves_the_workflows_out_and_says_so(
    hub: FakeHub, repo: str, token: str
) -> None:
    commit(hub, repo, {".github/workflows/ci.yml": "on: push\n"})
    workspace = Workspace.create(repo, "main", BRANCH, token)
    try:
        write(workspace, {".github/workflows/ci.yml": "on: [push, pull_request]\n"})
        write(workspace, {".github/workflows/new.yml": "on: push\n", "src/app.py": "x = 1\n"})

        changes = workspace.changes()
        made = workspace.commit(changes, "T-1: the work")
        assert made is not None
        workspace.push(made, BRANCH, token)
    finally:
        workspace.remove()

    assert changes.kept == ("src/app.py",)
    assert changes.left_out == (".github/workflows/ci.yml", ".github/workflows/new.yml")
    assert pushed(hub, repo, "src/app.py") == b"x = 1\n"
    assert pushed(hub, repo, ".github/workflows/ci.yml") == b"on: push\n"  # as it was
    assert pushed(hub, repo, ".github/workflows/new.yml") is None
    git = hub.state.repo("acme", name_of(repo)).git
    message = git.message(git.sha(BRANCH))
    assert "left out the agent's changes to `.github/workflows/ci.yml`" in message
    assert "`workflows` permission" in message


def test_a_change_to_workflows_alone_leaves_nothing_to_commit(workspace: Workspace) -> None:
    write(workspace, {".github/workflows/ci.yml": "on: push\n"})

    changes = workspace.changes()

    assert changes.kept == ()
    assert changes.left_out == (".github/workflows/ci.yml",)
    assert workspace.commit(changes, "T-1") is None


def test_files_the_repository_ignores_are_named_when_nothing_else_changed(
    hub: FakeHub, repo: str, token: str
) -> None:
    commit(hub, repo, {".gitignore": "build/\n*.log\n"})
    workspace = Workspace.create(repo, "main", BRANCH, token)
    try:
        write(workspace, {"build/out.bin": "x", "run.log": "y"})
        changes = workspace.changes()
    finally:
        workspace.remove()
    assert changes.kept == ()
    assert changes.ignored == ("build/", "run.log")


def test_aider_keeps_its_own_files_out_of_what_specbridge_commits(workspace: Workspace) -> None:
    workspace.ignore(PRESETS["aider"].ignore)
    # What aider 0.86 leaves in the clone, --no-gitignore or not.
    write(workspace, {".aider.chat.history.md": "# aider chat\n", "hello.txt": "hi\n"})
    write(workspace, {".aider.tags.cache.v4/cache.db": ""})

    assert workspace.changes().kept == ("hello.txt",)


@pytest.mark.parametrize(
    ("target", "refused"),
    [
        ("/etc/passwd", True),
        ("../../outside", True),
        ("src/../../x", True),
        (".git/config", True),
        ("README.md", False),
        ("src/app.py", False),
    ],
)
def test_a_link_leaving_the_tree_is_refused(
    workspace: Workspace, target: str, refused: bool
) -> None:
    write(workspace, {"src/app.py": "x = 1\n"})
    (workspace.checkout / "link").symlink_to(target)

    if refused:
        with pytest.raises(WorkspaceError, match=re.escape(f"`link` is a link to `{target}`")):
            workspace.changes()
    else:
        assert workspace.changes().kept == ("link", "src/app.py")


def test_a_fifo_among_gits_own_files_is_refused_before_git_meets_it(
    workspace: Workspace,
) -> None:
    (workspace.checkout / "deep").mkdir()
    os.mkfifo(workspace.checkout / "deep" / ".gitignore")
    started = time.monotonic()

    with pytest.raises(WorkspaceError, match=r"deep/\.gitignore"):
        workspace.changes()

    assert time.monotonic() - started < 30  # git would wait for a writer for ever


def test_a_fifo_elsewhere_is_not_committed(workspace: Workspace) -> None:
    os.mkfifo(workspace.checkout / "pipe")
    write(workspace, {"work.txt": "done\n"})
    assert workspace.changes().kept == ("work.txt",)


def test_a_file_over_githubs_limit_is_refused_without_being_read(workspace: Workspace) -> None:
    with (workspace.checkout / "huge.bin").open("wb") as huge:
        huge.truncate(300 << 30)  # sparse: 300 GiB that git would read and hash
    with pytest.raises(WorkspaceError, match=r"`huge.bin` is 307200 MiB, over GitHub's 100 MiB"):
        workspace.changes()


def test_a_repository_nested_in_an_ignored_folder_is_left_alone(
    hub: FakeHub, repo: str, token: str
) -> None:
    commit(hub, repo, {".gitignore": "node_modules/\n"})
    workspace = Workspace.create(repo, "main", BRANCH, token)
    try:
        nested = workspace.checkout / "node_modules" / "pkg"
        subprocess.run(["git", "init", "-q", str(nested)], check=True)
        os.mkfifo(nested / ".git" / "HEAD.fifo")
        write(workspace, {"work.txt": "done\n"})
        assert workspace.changes().kept == ("work.txt",)
    finally:
        workspace.remove()


def test_a_push_github_fails_for_a_moment_is_tried_again(
    hub: FakeHub, repo: str, workspace: Workspace, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workspace_module, "PUSH_RETRY_SECONDS", (0, 0))
    requests.post(
        f"{hub.url}/_admin/faults",
        json={"path": f"{name_of(repo)}.git/git-receive-pack", "method": "POST", "status": 502},
        timeout=30,
    ).raise_for_status()
    write(workspace, {"work.txt": "done\n"})

    made = workspace.commit_and_push(BRANCH, "T-1", token)

    assert made is not None
    assert pushed(hub, repo, "work.txt") == b"done\n"


def test_a_push_github_refuses_is_not_tried_again(
    hub: FakeHub, repo: str, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    tried: list[float] = []
    monkeypatch.setattr(workspace_module, "time", SimpleNamespace(sleep=tried.append))
    write(workspace, {"work.txt": "done\n"})

    with pytest.raises(WorkspaceError, match="pushing the agent's work failed"):
        workspace.commit_and_push(BRANCH, "T-1", "ghs_not_a_token_of_this_repository")

    assert tried == []


@pytest.mark.parametrize("url", ["file:///srv/repo.git", "ssh://git@github.com/a/b.git", "ext::sh"])
def test_only_https_or_http_urls_are_fetched(url: str) -> None:
    with pytest.raises(WorkspaceError, match="https only"):
        Workspace.create(url, "main", BRANCH)


def test_a_workspace_the_agent_closed_with_chmod_000_is_removed() -> None:
    """As the agents' account (the bot runs agents as itself when it is not root)."""
    base = Path(tempfile.mkdtemp())
    base.chmod(0o755)
    root = base / "specbridge-task-x"
    locked = root / "tree" / "a" / "b"
    locked.mkdir(parents=True)
    (locked / "file").write_text("x")
    account = (65534, 65534)
    if os.geteuid() == 0:
        for path in [base, *base.rglob("*")]:
            os.lchown(path, *account)
    for folder in (locked, locked.parent, root / "tree"):
        folder.chmod(0o000)

    pid = os.fork()
    if pid == 0:  # the bot, as a user that is not root
        try:
            if os.geteuid() == 0:
                os.setgid(account[1])
                os.setuid(account[0])
            remove_tree(root)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)

    assert not root.exists()
    base.rmdir()


def test_instructions_are_read_from_regular_files_only(tmp_path: Path) -> None:
    (tmp_path / ".github").mkdir()
    (tmp_path / "AGENTS.md").symlink_to("/etc/passwd")
    os.mkfifo(tmp_path / "CLAUDE.md")
    (tmp_path / ".github" / "copilot-instructions.md").write_text("x" * 100_000)

    found = read_instructions(tmp_path)

    assert list(found) == [".github/copilot-instructions.md"]
    assert len(found[".github/copilot-instructions.md"]) == 20_000


def test_a_file_behind_a_linked_folder_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.md").write_text("root's\n")
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "docs").symlink_to(tmp_path / "outside")

    assert read_text(tmp_path / "tree", "docs/secret.md", 100) is None
    assert read_text(tmp_path, "outside/secret.md", 3) == "roo"
