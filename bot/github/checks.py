"""Check runs (GitHub's Checks API) for one repository: the requests are spelled
out here; auth, pacing and retries are the connection's.

GitHub takes at most 50 annotations per request and appends those of each
update to the run's, so a run with more is completed in pages: the first 50
with the completion, the rest in further updates of the same output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from bot.github.connection import GitHubConnection

# specbridge's own check on a pull request (bot/review/checks.py).
CHECK_NAME = "specbridge"
ANNOTATIONS_PER_REQUEST = 50
# GitHub's limit on a check run's summary and text.
MAX_OUTPUT = 65_535


@dataclass(frozen=True)
class CheckRun:
    id: int
    head_sha: str
    status: str  # queued, in_progress, completed
    conclusion: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckRun:
        return cls(data["id"], data["head_sha"], data["status"], data.get("conclusion"))


@dataclass(frozen=True)
class Annotation:
    path: str
    line: int
    column: int
    level: str  # notice, warning, failure
    message: str
    title: str = ""

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.path,
            "start_line": self.line,
            "end_line": self.line,
            "start_column": self.column,
            "end_column": self.column,
            "annotation_level": self.level,
            "message": self.message,
        }
        if self.title:
            data["title"] = self.title
        return data


class ChecksGateway:
    def __init__(self, connection: GitHubConnection, full_name: str) -> None:
        self.connection = connection
        self._base = f"/repos/{full_name}"

    def runs_for(self, head_sha: str, name: str) -> list[CheckRun]:
        """Check runs of that name on a commit, newest first."""
        data = self.connection.rest(
            "GET",
            f"{self._base}/commits/{quote(head_sha, safe='')}/check-runs",
            params={"check_name": name, "filter": "all", "per_page": 100},
        )
        runs = [CheckRun.from_json(run) for run in data.get("check_runs") or []]
        return sorted(runs, key=lambda run: -run.id)

    def start(self, name: str, head_sha: str, title: str, summary: str) -> CheckRun:
        body = {
            "name": name,
            "head_sha": head_sha,
            "status": "in_progress",
            "started_at": _now(),
            "output": {"title": title, "summary": summary[:MAX_OUTPUT]},
        }
        return CheckRun.from_json(self.connection.rest("POST", f"{self._base}/check-runs", body))

    def complete(
        self,
        run_id: int,
        conclusion: str,
        title: str,
        summary: str,
        annotations: Sequence[Annotation] = (),
    ) -> None:
        """Complete the run with its output; annotations past the first 50 follow in pages."""
        pages = [
            [a.json() for a in annotations[start : start + ANNOTATIONS_PER_REQUEST]]
            for start in range(0, len(annotations), ANNOTATIONS_PER_REQUEST)
        ] or [[]]
        output: dict[str, Any] = {"title": title, "summary": summary[:MAX_OUTPUT]}
        first = {**output, "annotations": pages[0]} if pages[0] else output
        completion = {"status": "completed", "conclusion": conclusion, "completed_at": _now()}
        self._update(run_id, {**completion, "output": first})
        for page in pages[1:]:
            self._update(run_id, {"output": {**output, "annotations": page}})

    def _update(self, run_id: int, body: dict[str, Any]) -> None:
        self.connection.rest("PATCH", f"{self._base}/check-runs/{run_id}", body)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
