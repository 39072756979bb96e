"""A workspace for one agent run: a fresh clone on its own branch, and the
task's context beside it (not inside the clone, so it is never committed).

The workspace holds no credential: the remote URL has no token in it, and
the token a clone or a push needs is given to that one git command through
the environment (`http.extraHeader`), never written to disk. An agent that
reads `.git/config`, its HOME or its environment finds nothing to push with.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GIT_TIMEOUT_SECONDS = 300
GIT_ENVIRONMENT = {
    "PATH": "/usr/bin:/bin:/usr/local/bin",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "specbridge[bot]",
    "GIT_AUTHOR_EMAIL": "specbridge@users.noreply.github.com",
    "GIT_COMMITTER_NAME": "specbridge[bot]",
    "GIT_COMMITTER_EMAIL": "specbridge@users.noreply.github.com",
}


class WorkspaceError(RuntimeError):
    """git refused: the message says what, without any credential."""


@dataclass
class Workspace:
    root: Path
    account: tuple[int, int] | None = None  # who the agent runs as, when not us

    @property
    def checkout(self) -> Path:
        return self.root / "repo"

    @property
    def task_file(self) -> Path:
        return self.root / "context" / "task.md"

    @property
    def task_json(self) -> Path:
        return self.root / "context" / "task.json"

    @classmethod
    def create(
        cls,
        clone_url: str,
        default_branch: str,
        branch: str,
        token: str | None = None,
        account: tuple[int, int] | None = None,
    ) -> Workspace:
        workspace = cls(Path(tempfile.mkdtemp(prefix="specbridge-task-")), account)
        try:
            workspace._git(
                "clone",
                "--quiet",
                "--branch",
                default_branch,
                clone_url,
                str(workspace.checkout),
                cwd=workspace.root,
                token=token,
            )
            workspace._git("checkout", "--quiet", "-B", branch)
        except BaseException:
            workspace.remove()
            raise
        return workspace

    def write_context(self, markdown: str, data: dict[str, Any]) -> None:
        self.task_file.parent.mkdir(parents=True, exist_ok=True)
        self.task_file.write_text(markdown)
        self.task_json.write_text(json.dumps(data, indent=2))

    def hand_over(self) -> None:
        """Give the workspace to the account the agent runs as."""
        if self.account is None:
            return
        uid, gid = self.account
        for folder in self.root.parents:
            if not folder.stat().st_mode & stat.S_IXOTH:
                raise WorkspaceError(
                    f"the agents' account (uid {uid}) cannot reach {self.root}: {folder} is "
                    "closed to it; point TMPDIR at a folder it can enter"
                )
        for path in [self.root, *self.root.rglob("*")]:
            os.lchown(path, uid, gid)

    def has_changes(self) -> bool:
        return bool(self._git("status", "--porcelain"))

    def commit_and_push(
        self, branch: str, message: str, token: str | None, force: bool = True
    ) -> None:
        """`force`: the branch is specbridge's own, and a retry replaces what an earlier
        attempt pushed. A revision adds to a pull request people review: never forced."""
        self._git("add", "--all")
        self._git("commit", "--quiet", "--no-verify", "-m", message)
        forced = ["--force"] if force else []
        self._git("push", "--quiet", *forced, "origin", f"HEAD:refs/heads/{branch}", token=token)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _git(self, *args: str, cwd: Path | None = None, token: str | None = None) -> str:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd or self.checkout,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            env={**GIT_ENVIRONMENT, "HOME": str(self.root), **credential_environment(token)},
        )
        if result.returncode != 0:
            stderr = _redact(result.stderr.strip(), token)
            raise WorkspaceError(f"git {args[0]} failed: {stderr}")
        return result.stdout


def credential_environment(token: str | None) -> dict[str, str]:
    """git configuration for one command, through the environment (GIT_CONFIG_*):
    the token as an HTTP header, and no credential helper that could store it.

    The checkout may belong to the agent's account: we trust it (safe.directory).
    """
    settings = [("credential.helper", ""), ("safe.directory", "*")]
    if token:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        settings.append(("http.extraHeader", f"Authorization: Basic {basic}"))
    env = {"GIT_CONFIG_COUNT": str(len(settings))}
    for index, (key, value) in enumerate(settings):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def _redact(text: str, token: str | None) -> str:
    text = re.sub(r"://[^/@\s]+@", "://***@", text)
    return text.replace(token, "***") if token else text
