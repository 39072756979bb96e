"""An agent's pull request on GitHub, as the repository's checks see it: its head, the
check runs and commit statuses on that head (every App's and every CI's), the checks its
base branch requires, ready for review, reviewers asked. The requests are spelled out
here; auth, pacing and retries are the connection's (bot/github/connection.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from github import GithubException, UnknownObjectException

from bot.github.connection import GitHubConnection, GraphQLError

PAGE = 100
# GitHub answers at most 50 annotations a page.
ANNOTATIONS_PAGE = 50
# A failing check's annotations told to the agent: past this, the first ones are enough.
MAX_ANNOTATIONS = 50

MARK_READY = """
mutation($id: ID!) {
  markPullRequestReadyForReview(input: {pullRequestId: $id}) { pullRequest { isDraft } }
}
"""


@dataclass(frozen=True)
class PullHead:
    """A pull request's state and head, as `GET /repos/{o}/{r}/pulls/{n}` answers."""

    number: int
    node_id: str
    state: str  # open | closed
    draft: bool
    head_sha: str
    head_ref: str
    base_ref: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PullHead:
        return cls(
            number=data["number"],
            node_id=data["node_id"],
            state=data["state"],
            draft=bool(data.get("draft")),
            head_sha=data["head"]["sha"],
            head_ref=data["head"]["ref"],
            base_ref=data["base"]["ref"],
        )


@dataclass(frozen=True)
class CheckResult:
    """One check on a commit: a check run (the newest of its name) or a commit status
    (the newest of its context). `conclusion` is a run's conclusion or a status's state;
    None while it runs."""

    name: str
    kind: str  # check run | commit status
    conclusion: str | None
    app: str | None = None  # a run's App (slug)
    title: str = ""  # a run's output title, a status's description
    summary: str = ""
    text: str = ""
    run_id: int | None = None
    url: str | None = None


@dataclass(frozen=True)
class Annotation:
    path: str
    line: int
    level: str
    message: str
    title: str = ""


class PullRequestGateway:
    def __init__(self, connection: GitHubConnection, full_name: str) -> None:
        self.connection = connection
        self._base = f"/repos/{full_name}"

    def _get(self, path: str, **params: Any) -> Any:
        return self.connection.rest("GET", self._base + path, params=params)

    def pull(self, number: int) -> PullHead:
        return PullHead.from_json(self._get(f"/pulls/{number}"))

    def check_runs(self, sha: str) -> list[CheckResult]:
        """The newest run of each name on the commit, whatever App made it."""
        found: list[CheckResult] = []
        page = 1
        while True:
            data = self._get(
                f"/commits/{quote(sha, safe='')}/check-runs",
                filter="latest",
                per_page=PAGE,
                page=page,
            )
            runs = data.get("check_runs") or []
            found += [_run(run) for run in runs]
            if len(runs) < PAGE:
                break
            page += 1
        newest: dict[str, CheckResult] = {}
        for run in sorted(found, key=lambda r: r.run_id or 0):
            newest[run.name] = run
        return list(newest.values())

    def statuses(self, sha: str) -> list[CheckResult]:
        """The newest status of each context on the commit (GitHub's combined status)."""
        data = self._get(f"/commits/{quote(sha, safe='')}/status", per_page=PAGE)
        return [
            CheckResult(
                name=status["context"],
                kind="commit status",
                conclusion=None if status["state"] == "pending" else status["state"],
                title=status.get("description") or "",
                url=status.get("target_url"),
            )
            for status in data.get("statuses") or []
        ]

    def annotations(self, run_id: int) -> list[Annotation]:
        found: list[Annotation] = []
        page = 1
        while len(found) < MAX_ANNOTATIONS:
            batch = self._get(
                f"/check-runs/{run_id}/annotations", per_page=ANNOTATIONS_PAGE, page=page
            )
            found += [
                Annotation(
                    path=a["path"],
                    line=a.get("start_line") or 0,
                    level=a.get("annotation_level") or "",
                    message=a.get("message") or "",
                    title=a.get("title") or "",
                )
                for a in batch
            ]
            if len(batch) < ANNOTATIONS_PAGE:
                break
            page += 1
        return found[:MAX_ANNOTATIONS]

    def required_checks(self, branch: str) -> list[str]:
        """The checks the branch's protection requires, by name (check runs and statuses
        alike), as `GET /repos/{o}/{r}/branches/{branch}` shows them to any reader; none
        when it is not protected or requires none."""
        try:
            data = self._get(f"/branches/{quote(branch, safe='')}")
        except UnknownObjectException:
            return []
        required = ((data.get("protection") or {}).get("required_status_checks")) or {}
        names = list(required.get("contexts") or [])
        names += [c["context"] for c in required.get("checks") or [] if c.get("context")]
        return list(dict.fromkeys(names))

    def mark_ready(self, node_id: str) -> None:
        """A draft marked ready for review (GraphQL: REST has no way to)."""
        answer = self.connection.mutate(MARK_READY, {"id": node_id})
        if answer.errors:
            raise GraphQLError(list(answer.errors.values()))

    def request_reviewers(self, number: int, users: list[str], teams: list[str]) -> str | None:
        """Ask people and teams to review; GitHub's reason when it refuses (say, someone
        who is not a collaborator), else None."""
        if not users and not teams:
            return None
        body = {"reviewers": users, "team_reviewers": teams}
        try:
            self.connection.rest("POST", f"{self._base}/pulls/{number}/requested_reviewers", body)
        except GithubException as error:
            if error.status != 422:
                raise
            data = error.data if isinstance(error.data, dict) else {}
            return str(data.get("message") or "GitHub refused the request")
        return None

    def requested_reviewers(self, number: int) -> list[str]:
        """Who is asked to review now: logins, and teams as @org/slug."""
        data = self._get(f"/pulls/{number}/requested_reviewers")
        users = [u["login"] for u in data.get("users") or []]
        org = self._base.split("/")[2]
        return users + [f"{org}/{t['slug']}" for t in data.get("teams") or []]


def _run(run: dict[str, Any]) -> CheckResult:
    output = run.get("output") or {}
    return CheckResult(
        name=run["name"],
        kind="check run",
        conclusion=run.get("conclusion") if run.get("status") == "completed" else None,
        app=(run.get("app") or {}).get("slug"),
        title=output.get("title") or "",
        summary=output.get("summary") or "",
        text=output.get("text") or "",
        run_id=run["id"],
        url=run.get("html_url") or run.get("details_url"),
    )
