"""A workspace for one agent run: a fresh clone on its own branch, and the
task's context beside it (not inside the clone, so it is never committed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GIT_TIMEOUT_SECONDS = 300
BOT_IDENTITY = [
    "-c",
    "user.name=specbridge[bot]",
    "-c",
    "user.email=specbridge@users.noreply.github.com",
]


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
        self._git(*BOT_IDENTITY, "commit", "--quiet", "-m", message)
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
            env={
                "PATH": "/usr/bin:/bin:/usr/local/bin",
                "GIT_TERMINAL_PROMPT": "0",
                "HOME": str(self.root),
            },
        )
        if result.returncode != 0:
            command = (
                args[0]
                if args[0] != "-c"
                else next(a for a in args if not a.startswith(("-c", "user.")))
            )
            raise WorkspaceError(f"git {command} failed: {_redact_urls(result.stderr.strip())}")
        return result.stdout


def _redact_urls(text: str) -> str:
    import re

    return re.sub(r"://[^/@\s]+@", "://***@", text)
