"""Writing files for one repository: the contents API (one commit per file, on a branch,
replacing exactly the version read), branches through git references, and the branch
a pull request comes from. The requests are spelled out here; auth, pacing and
retries are the connection's (bot/github/connection.py).

GitHub's descriptions: `repos/create-or-update-file-contents` (PUT .../contents/{path}
with `message`, base64 `content`, `branch` and the blob `sha` of the file it replaces:
409 when that is not the branch's version any more, or the branch is protected),
`git/create-ref`, `git/update-ref`, `repos/get-branch`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from github import GithubException, UnknownObjectException

from bot.github.connection import GitHubConnection


class FileChanged(RuntimeError):
    """The file is not the version it was read as (or the branch refuses the write):
    read it again, or leave it to a person."""


@dataclass(frozen=True)
class FileVersion:
    content: bytes
    sha: str  # the git blob sha, which a write names as the version it replaces


@dataclass(frozen=True)
class Branch:
    name: str
    sha: str
    protected: bool
    author: str  # of its head commit (name as git records it)
    message: str  # of its head commit
    parents: tuple[str, ...]


class ContentsGateway:
    def __init__(self, connection: GitHubConnection, full_name: str) -> None:
        self.connection = connection
        self.full_name = full_name
        self._base = f"/repos/{full_name}"

    def _request(self, verb: str, path: str, body: dict[str, Any] | None = None, **params: Any):  # type: ignore[no-untyped-def]
        return self.connection.rest(verb, self._base + path, body, params)

    def file(self, path: str, ref: str) -> FileVersion | None:
        """The file at ref (a branch or a commit) and its blob sha; None when absent."""
        try:
            data = self._request("GET", f"/contents/{quote(path)}", ref=ref)
        except UnknownObjectException:
            return None
        if isinstance(data, list) or data.get("type") != "file":
            return None
        return FileVersion(base64.b64decode(data.get("content") or ""), data["sha"])

    def put_file(self, path: str, content: bytes, message: str, branch: str, sha: str) -> str:
        """Replace the file's version `sha` on branch with content, in one commit; its sha.
        Raises FileChanged when the branch holds another version or refuses the write."""
        body = {
            "message": message,
            "content": base64.b64encode(content).decode(),
            "branch": branch,
            "sha": sha,
        }
        try:
            data = self._request("PUT", f"/contents/{quote(path)}", body)
        except GithubException as error:
            if error.status == 409:
                raise FileChanged(_message(error)) from None
            raise
        return data["commit"]["sha"]

    def branch(self, name: str) -> Branch | None:
        try:
            data = self._request("GET", f"/branches/{quote(name, safe='/')}")
        except UnknownObjectException:
            return None
        commit = data["commit"]
        return Branch(
            name=data["name"],
            sha=commit["sha"],
            protected=bool(data.get("protected")),
            author=((commit.get("commit") or {}).get("author") or {}).get("name") or "",
            message=(commit.get("commit") or {}).get("message") or "",
            parents=tuple(p["sha"] for p in commit.get("parents") or []),
        )

    def create_branch(self, name: str, sha: str) -> None:
        self._request("POST", "/git/refs", {"ref": f"refs/heads/{name}", "sha": sha})

    def move_branch(self, name: str, sha: str) -> None:
        """Point the branch at sha, even when that drops commits of it (`force`)."""
        ref = f"/git/refs/heads/{quote(name, safe='/')}"
        self._request("PATCH", ref, {"sha": sha, "force": True})

    def open_pull_request_for(self, head: str, base: str, title: str, body: str) -> int:
        """The open pull request from head into base, opened when there is none."""
        owner = self.full_name.split("/", 1)[0]
        existing = self._request("GET", "/pulls", head=f"{owner}:{head}", base=base, state="open")
        if existing:
            return existing[0]["number"]
        request = {"title": title, "head": head, "base": base, "body": body}
        return self.connection.rest("POST", self._base + "/pulls", request, None, content=1)[
            "number"
        ]


def _message(error: GithubException) -> str:
    data = error.data if isinstance(error.data, dict) else {}
    return str(data.get("message") or error)
