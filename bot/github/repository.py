"""REST calls for one repository. The requests are spelled out here so a reader
sees exactly what specbridge asks of GitHub; auth, pacing and retries are the
connection's (bot/github/connection.py)."""

from __future__ import annotations

import base64
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from github import GithubException, UnknownObjectException

from bot.github.connection import GitHubConnection


@dataclass(frozen=True)
class ReviewComment:
    """One line comment of a pull request review: the file, its line (None for a
    comment on the whole file), and what it says."""

    path: str
    line: int | None
    body: str


@dataclass(frozen=True)
class Issue:
    number: int
    id: int
    node_id: str
    title: str
    body: str
    state: str
    state_reason: str | None
    labels: tuple[str, ...]
    author: str = ""  # the login of who opened it

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Issue:
        return cls(
            number=data["number"],
            id=data["id"],
            node_id=data["node_id"],
            title=data.get("title") or "",
            body=data.get("body") or "",
            state=data["state"],
            state_reason=data.get("state_reason"),
            labels=tuple(label["name"] for label in data.get("labels", [])),
            author=(data.get("user") or {}).get("login") or "",
        )


@dataclass(frozen=True)
class IssueComment:
    id: int
    body: str
    author: str
    by_bot: bool  # written by an App (a `Bot` account)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IssueComment:
        author = data.get("user") or {}
        return cls(
            id=data["id"],
            body=data.get("body") or "",
            author=author.get("login") or "",
            by_bot=author.get("type") == "Bot",
        )


@dataclass(frozen=True)
class DiffSize:
    """What a head changes against its merge base with a base: files, lines added and
    lines removed."""

    files: int
    additions: int
    deletions: int


class RepositoryGateway:
    def __init__(self, connection: GitHubConnection, full_name: str) -> None:
        self.connection = connection
        self.full_name = full_name
        self._base = f"/repos/{full_name}"

    def _request(  # type: ignore[no-untyped-def]
        self,
        verb: str,
        path: str,
        body: dict[str, Any] | None = None,
        content: int = 0,
        once: bool = False,
        **params: Any,
    ):
        return self.connection.rest(verb, self._base + path, body, params, content, once)

    # -- repository and files ------------------------------------------------

    def default_branch(self) -> str:
        return self._request("GET", "")["default_branch"]

    def clone_url(self) -> str:
        """The repository's URL for git, with no credential in it."""
        return self._request("GET", "")["clone_url"]

    def commit_sha(self, ref: str) -> str:
        return self._request("GET", f"/commits/{quote(ref, safe='')}")["sha"]

    def read_file(self, path: str, ref: str) -> bytes | None:
        """The file's bytes at ref, or None when it does not exist there."""
        try:
            data = self._request("GET", f"/contents/{quote(path)}", ref=ref)
        except UnknownObjectException:
            return None
        if isinstance(data, list) or data.get("type") != "file":
            return None
        return base64.b64decode(data.get("content") or "")

    def changed_files(self, base: str, head: str) -> tuple[list[str], list[str]]:
        """Paths present at head that differ from the merge base of base and head, and
        paths removed, as a pull request shows them (GitHub lists up to 300 files)."""
        present: list[str] = []
        removed: list[str] = []
        for entry in self._compare(base, head).get("files") or []:
            (removed if entry["status"] == "removed" else present).append(entry["filename"])
            if entry.get("previous_filename"):  # renamed: the old path is gone
                removed.append(entry["previous_filename"])
        return sorted(present), sorted(removed)

    def diff_size(self, base: str, head: str) -> DiffSize:
        """How much head changes against its merge base with base (of the 300 files
        GitHub lists at most)."""
        files = self._compare(base, head).get("files") or []
        return DiffSize(
            files=len(files),
            additions=sum(f["additions"] for f in files),
            deletions=sum(f["deletions"] for f in files),
        )

    def compare_commits(self, base: str, head: str) -> str:
        """How head stands to base: ahead, behind, identical or diverged."""
        return self._compare(base, head)["status"]

    def _compare(self, base: str, head: str) -> dict[str, Any]:
        return self._request("GET", f"/compare/{quote(base, safe='')}...{quote(head, safe='')}")

    def list_files(self, directory: str, ref: str) -> list[str]:
        """Paths of the files inside directory and its subfolders at ref (specs may nest)."""
        try:
            entries = self._request("GET", f"/contents/{quote(directory.rstrip('/'))}", ref=ref)
        except UnknownObjectException:
            return []
        if not isinstance(entries, list):
            return []
        paths = [entry["path"] for entry in entries if entry["type"] == "file"]
        for entry in entries:
            if entry["type"] == "dir":
                paths += self.list_files(entry["path"], ref)
        return sorted(paths)

    # -- issues ----------------------------------------------------------------

    def get_issue(self, number: int) -> Issue:
        return Issue.from_json(self._request("GET", f"/issues/{number}"))

    def create_issue(
        self, title: str, body: str, labels: list[str], assignees: list[str] | None = None
    ) -> Issue:
        request: dict[str, Any] = {"title": title, "body": body, "labels": labels}
        if assignees:
            request["assignees"] = assignees
        return Issue.from_json(self._request("POST", "/issues", request, content=1, once=True))

    def update_issue(self, number: int, **fields: Any) -> Issue:
        """PATCH any of title, body, labels, state, state_reason."""
        return Issue.from_json(self._request("PATCH", f"/issues/{number}", fields))

    def close_issue(self, number: int, reason: str) -> Issue:
        return self.update_issue(number, state="closed", state_reason=reason)

    def reopen_issue(self, number: int) -> Issue:
        return self.update_issue(number, state="open")

    def issues_with_label(self, label: str, since: datetime | None = None) -> list[Issue]:
        """Every issue, open or closed, carrying label (pull requests left out).

        `since`: only those changed since then (an issue is changed when it is created).
        """
        issues: list[Issue] = []
        page = 1
        extra = {"since": since.strftime("%Y-%m-%dT%H:%M:%SZ")} if since else {}
        while True:
            batch = self._request(
                "GET", "/issues", state="all", labels=label, per_page=100, page=page, **extra
            )
            issues += [Issue.from_json(i) for i in batch if "pull_request" not in i]
            if len(batch) < 100:
                return issues
            page += 1

    # -- pull requests -----------------------------------------------------------

    def open_pull_request(
        self, title: str, head: str, base: str, body: str, draft: bool = False
    ) -> int:
        """Open a pull request, or return the open one already there for head."""
        owner = self.full_name.split("/", 1)[0]
        existing = self._request("GET", "/pulls", head=f"{owner}:{head}", state="open")
        if existing:
            return existing[0]["number"]
        request = {"title": title, "head": head, "base": base, "body": body, "draft": draft}
        return self._request("POST", "/pulls", request, content=1)["number"]

    def pull_request_state(self, number: int) -> str:
        """open, closed or merged."""
        data = self._request("GET", f"/pulls/{number}")
        return "merged" if data.get("merged") else data["state"]

    def review_comments(self, number: int, review_id: int) -> list[ReviewComment]:
        """The line comments of one review of pull request `number`, as they were made."""
        found: list[ReviewComment] = []
        page = 1
        while True:
            batch = self._request(
                "GET", f"/pulls/{number}/reviews/{review_id}/comments", per_page=100, page=page
            )
            found += [
                ReviewComment(
                    path=c["path"],
                    line=c.get("line") or c.get("original_line"),
                    body=c.get("body") or "",
                )
                for c in batch
            ]
            if len(batch) < 100:
                return found
            page += 1

    def add_blocked_by(self, number: int, blocking_issue_id: int) -> None:
        """Record on GitHub that issue `number` is blocked by another (by its id)."""
        try:
            self._request(
                "POST", f"/issues/{number}/dependencies/blocked_by", {"issue_id": blocking_issue_id}
            )
        except GithubException as error:
            if error.status != 422:  # 422: the relationship exists already
                raise

    def remove_blocked_by(self, number: int, blocking_issue_id: int) -> None:
        with contextlib.suppress(UnknownObjectException):  # gone already
            self._request("DELETE", f"/issues/{number}/dependencies/blocked_by/{blocking_issue_id}")

    def add_label(self, number: int, label: str) -> None:
        """Add one label to an issue (GitHub creates a label the repository lacks)."""
        self._request("POST", f"/issues/{number}/labels", {"labels": [label]})

    def remove_label(self, number: int, label: str) -> None:
        try:
            self._request("DELETE", f"/issues/{number}/labels/{quote(label, safe='')}")
        except GithubException as error:
            if error.status != 404:  # 404 "Label does not exist": not on the issue (any more)
                raise

    def comment_on_issue(self, number: int, body: str, once: bool = False) -> None:
        """`once`: not sent again after an answer (a 502) that leaves unknown whether
        GitHub kept it; the caller looks for it (`issue_comments`) before trying again."""
        self._request("POST", f"/issues/{number}/comments", {"body": body}, content=1, once=once)

    def issue_comments(self, number: int, since: str | None = None) -> list[IssueComment]:
        """The issue's comments, oldest first; `since` (ISO 8601): those updated since."""
        found: list[IssueComment] = []
        page = 1
        extra = {"since": since} if since else {}
        while True:
            batch = self._request(
                "GET", f"/issues/{number}/comments", per_page=100, page=page, **extra
            )
            found += [IssueComment.from_json(c) for c in batch]
            if len(batch) < 100:
                return found
            page += 1

    def react_to_comment(self, comment_id: int, content: str) -> None:
        self._request("POST", f"/issues/comments/{comment_id}/reactions", {"content": content})

    def permission_of(self, login: str) -> str:
        """admin, maintain, write, triage, read or none."""
        try:
            data = self._request("GET", f"/collaborators/{quote(login)}/permission")
        except UnknownObjectException:
            return "none"
        return data.get("role_name") or data.get("permission") or "none"

    def comment_on_commit(self, sha: str, body: str) -> None:
        self._request("POST", f"/commits/{sha}/comments", {"body": body}, content=1)
