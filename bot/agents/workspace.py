"""A workspace for one agent run: a fresh clone on its own branch, and the
task's context beside it (not inside the clone, so it is never committed)."""

from __future__ import annotations

import json
import re
import shutil
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
    """git refused: the message says what, without the clone URL's token."""


@dataclass
class Workspace:
    root: Path

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
    def create(cls, clone_url: str, default_branch: str, branch: str) -> Workspace:
        workspace = cls(Path(tempfile.mkdtemp(prefix="specbridge-task-")))
        try:
            workspace._git(
                "clone",
                "--quiet",
                "--branch",
                default_branch,
                clone_url,
                str(workspace.checkout),
                cwd=workspace.root,
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

    def has_changes(self) -> bool:
        return bool(self._git("status", "--porcelain"))

    def commit_and_push(self, branch: str, message: str) -> None:
        self._git("add", "--all")
        self._git("commit", "--quiet", "-m", message)
        # The branch is specbridge's own: a retry replaces what an earlier attempt pushed.
        self._git("push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{branch}")

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _git(self, *args: str, cwd: Path | None = None) -> str:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd or self.checkout,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            env={**GIT_ENVIRONMENT, "HOME": str(self.root)},
        )
        if result.returncode != 0:
            raise WorkspaceError(f"git {args[0]} failed: {_redact_urls(result.stderr.strip())}")
        return result.stdout


def _redact_urls(text: str) -> str:
    return re.sub(r"://[^/@\s]+@", "://***@", text)
