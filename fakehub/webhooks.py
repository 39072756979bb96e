"""Signed webhooks, sent one at a time in the order the changes happened, and
every attempt recorded as GitHub's App webhook deliveries list them.

As on GitHub, a delivery is tried once: a 5xx, a timeout or a refused
connection leaves it failed until someone redelivers it (the App, through
`POST /app/hook/deliveries/{id}/attempts`, or a test through the admin
interface). A redelivery goes out with the same `X-GitHub-Delivery` (the
`guid`) and is recorded as a new attempt with its own `id`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import queue
import threading
import time
import uuid
from typing import Any

import requests

from fakehub.state import Issue, Project, Repo, State, node_id, now, user

# GitHub gives up on a webhook after 10 seconds
# (https://docs.github.com/webhooks/using-webhooks/best-practices-for-using-webhooks).
GITHUB_TIMEOUT = 10.0
HOOK_ID = 1


class WebhookSender:
    """`deliveries`: one entry per event (its `id` is the guid, `status` the last
    attempt's), as the admin interface lists them. `attempts`: every attempt, oldest
    first, with GitHub's fields (`hook_deliveries` answers them newest first)."""

    def __init__(self, url: str | None, secret: str, timeout: float = GITHUB_TIMEOUT) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.deliveries: list[dict[str, Any]] = []
        self.attempts: list[dict[str, Any]] = []
        self._ids = itertools.count(int(time.time()) * 1000)
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[dict[str, Any], bool]] = queue.Queue()
        threading.Thread(target=self._run, name="webhooks", daemon=True).start()

    def send(self, event: str, payload: dict[str, Any]) -> str:
        delivery = {
            "id": str(uuid.uuid4()),
            "event": event,
            "action": payload.get("action"),
            "payload": payload,
            "status": None,
            "attempts": [],
        }
        with self._lock:
            self.deliveries.append(delivery)
        self._queue.put((delivery, False))
        return delivery["id"]

    def redeliver(self, guid: str) -> None:
        """Send an event again with the same `X-GitHub-Delivery` (KeyError if unknown)."""
        with self._lock:
            original = next((d for d in self.deliveries if d["id"] == guid), None)
        if original is None:
            raise KeyError(f"no delivery {guid}")
        self._queue.put((original, True))

    def redeliver_attempt(self, attempt_id: int) -> bool:
        """What `POST /app/hook/deliveries/{id}/attempts` does; False if no such attempt."""
        attempt = self.attempt(attempt_id)
        if attempt is None:
            return False
        self.redeliver(attempt["guid"])
        return True

    def attempt(self, attempt_id: int) -> dict[str, Any] | None:
        with self._lock:
            return next((a for a in self.attempts if a["id"] == attempt_id), None)

    def hook_deliveries(self) -> list[dict[str, Any]]:
        """Every attempt, newest first."""
        with self._lock:
            return list(reversed(self.attempts))

    def wait(self) -> None:
        self._queue.join()

    def _run(self) -> None:
        while True:
            delivery, redelivery = self._queue.get()
            try:
                self._deliver(delivery, redelivery)
            finally:
                self._queue.task_done()

    def _deliver(self, delivery: dict[str, Any], redelivery: bool) -> None:
        url = self.url
        if not url:  # no webhook URL: GitHub sends nothing and records nothing
            return
        body = json.dumps(delivery["payload"]).encode()
        headers = self._headers(delivery, body)
        payload = delivery["payload"]
        attempt: dict[str, Any] = {
            "id": next(self._ids),
            "guid": delivery["id"],
            "delivered_at": now(),
            "redelivery": redelivery,
            "duration": 0.0,
            "status": "",
            "status_code": 0,
            "event": delivery["event"],
            "action": delivery["action"],
            "installation_id": (payload.get("installation") or {}).get("id"),
            "repository_id": (payload.get("repository") or {}).get("id"),
            "throttled_at": None,
            "url": url,
            "request": {"headers": headers, "payload": payload},
            "response": {"headers": None, "payload": None},
        }
        started = time.monotonic()
        try:
            answer = requests.post(url, data=body, headers=headers, timeout=self.timeout)
        except requests.Timeout:
            attempt["status"] = "timed out"
        except requests.RequestException:
            attempt["status"] = "failed to connect to host"
        else:
            attempt["status_code"] = answer.status_code
            attempt["status"] = (
                "OK"
                if 200 <= answer.status_code < 300
                else f"Invalid HTTP Response: {answer.status_code}"
            )
            attempt["response"] = {"headers": dict(answer.headers), "payload": answer.text}
        attempt["duration"] = round(time.monotonic() - started, 2)
        with self._lock:
            self.attempts.append(attempt)
            delivery["attempts"].append(attempt["id"])
            code = attempt["status_code"]
            delivery["status"] = code if code else f"failed: {attempt['status']}"

    def _headers(self, delivery: dict[str, Any], body: bytes) -> dict[str, str]:
        signature = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        return {
            "Accept": "*/*",
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/fakehub",
            "X-GitHub-Event": delivery["event"],
            "X-GitHub-Delivery": delivery["id"],
            "X-GitHub-Hook-ID": str(HOOK_ID),
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "X-GitHub-Hook-Installation-Target-ID": "4242",
            "X-Hub-Signature-256": f"sha256={signature}",
        }


def envelope(state: State, repo: Repo, sender: str, /, **payload: Any) -> dict[str, Any]:
    """What every webhook of a repository carries besides its own fields."""
    data = {
        **payload,
        "repository": repo.json(),
        "sender": user(sender),
        "installation": {
            "id": repo.installation_id,
            "node_id": node_id("MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u", repo.installation_id),
        },
    }
    if repo.owner_type == "Organization":
        data["organization"] = _organization(repo.owner)
    return data


def _organization(login: str) -> dict[str, Any]:
    api = f"https://api.github.com/orgs/{login}"
    return {
        "login": login,
        "id": abs(hash(login)) % 10_000_000,
        "node_id": node_id("O", len(login)),
        "url": api,
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events",
        "hooks_url": f"{api}/hooks",
        "issues_url": f"{api}/issues",
        "members_url": f"{api}/members{{/member}}",
        "public_members_url": f"{api}/public_members{{/member}}",
        "avatar_url": "https://avatars.githubusercontent.com/u/1?v=4",
        "description": "",
    }


def push_payload(
    repo: Repo, branch: str, before: str, after: str, message: str, author: str
) -> dict[str, Any]:
    added, removed, modified = repo.git.changes(before, after)
    person = {"name": author, "email": f"{author}@users.noreply.github.com", "username": author}
    commit = {
        "id": after,
        "tree_id": after,
        "distinct": True,
        "message": message,
        "timestamp": now(),
        "url": f"{repo.html_url}/commit/{after}",
        "author": person,
        "committer": person,
        "added": added,
        "removed": removed,
        "modified": modified,
    }
    return {
        "ref": f"refs/heads/{branch}",
        "before": before,
        "after": after,
        "created": set(before) == {"0"},
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": f"{repo.html_url}/compare/{before[:12]}...{after[:12]}",
        "commits": [commit],
        "head_commit": commit,
        "pusher": {"name": author, "email": person["email"]},
    }


def issue_payload(action: str, issue: Issue, **extra: Any) -> dict[str, Any]:
    return {"action": action, "issue": issue.json(), **extra}


def project_item_payload(
    action: str, project: Project, item: dict[str, Any], issue: Issue, **extra: Any
) -> dict[str, Any]:
    return {
        "action": action,
        "projects_v2_item": {
            "id": item["database_id"],
            "node_id": item["id"],
            "project_node_id": project.node_id,
            "content_node_id": issue.node_id,
            "content_type": "Issue",
            "creator": user(item["creator"]),
            "created_at": item["created_at"],
            "updated_at": now(),
            "archived_at": None,
        },
        **extra,
    }


def pull_links(repo: Repo, pull: dict[str, Any]) -> dict[str, Any]:
    """What the issue a pull request also is says of it (`issue.pull_request`)."""
    html = pull["html_url"]
    return {
        "url": f"{repo.api_url}/pulls/{pull['number']}",
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "merged_at": pull.get("merged_at"),
    }


def team_json(repo: Repo, slug: str) -> dict[str, Any]:
    """A team of the repository's organization, as GitHub shows it."""
    team_id = abs(hash((repo.owner, slug))) % 10_000_000
    url = f"https://api.github.com/organizations/{repo.owner}/team/{team_id}"
    return {
        "name": slug,
        "id": team_id,
        "node_id": node_id("T", team_id),
        "slug": slug,
        "description": None,
        "privacy": "closed",
        "notification_setting": "notifications_enabled",
        "url": url,
        "html_url": f"https://github.com/orgs/{repo.owner}/teams/{slug}",
        "members_url": f"{url}/members{{/member}}",
        "repositories_url": f"{url}/repos",
        "permission": "push",
        "parent": None,
    }


def pull_request_json(repo: Repo, pull: dict[str, Any]) -> dict[str, Any]:
    """A pull request as webhooks carry it (GitHub's full shape)."""
    number = pull["number"]
    api = f"{repo.api_url}/pulls/{number}"
    html = pull["html_url"]
    head_repo = repo.json()
    if pull.get("head_repo_fork"):
        login = pull["user"]["login"]
        head_repo = {
            **head_repo,
            "id": repo.id + 1_000_000,
            "node_id": node_id("R", repo.id + 1_000_000),
            "full_name": f"{login}/{repo.name}",
            "owner": user(login),
            "fork": True,
            "html_url": f"https://github.com/{login}/{repo.name}",
            "url": f"https://api.github.com/repos/{login}/{repo.name}",
        }
    owner = head_repo["owner"]["login"]
    asked = repo.requested_reviewers.get(number, {})

    def side(which: dict[str, Any], data: dict[str, Any], who: str) -> dict[str, Any]:
        return {
            "label": f"{who}:{which['ref']}",
            "ref": which["ref"],
            "sha": which["sha"],
            "user": user(who),
            "repo": data,
        }

    links = {
        name: {"href": href}
        for name, href in {
            "self": api,
            "html": html,
            "issue": f"{repo.api_url}/issues/{number}",
            "comments": f"{repo.api_url}/issues/{number}/comments",
            "review_comments": f"{api}/comments",
            "review_comment": f"{repo.api_url}/pulls/comments{{/number}}",
            "commits": f"{api}/commits",
            "statuses": f"{repo.api_url}/statuses/{pull['head']['sha']}",
        }.items()
    }
    return {
        "url": api,
        "id": pull["id"],
        "node_id": node_id("PR", pull["id"]),
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": f"{repo.api_url}/issues/{number}",
        "number": number,
        "state": pull["state"],
        "locked": False,
        "title": pull["title"],
        "user": pull["user"],
        "body": pull.get("body"),
        "created_at": pull["created_at"],
        "updated_at": now(),
        "closed_at": pull.get("closed_at"),
        "merged_at": pull.get("merged_at"),
        "merge_commit_sha": pull.get("merge_commit_sha"),
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [user(u) for u in asked.get("users", [])],
        "requested_teams": [team_json(repo, t) for t in asked.get("teams", [])],
        # A pull request is an issue too: its labels are that issue's.
        "labels": [repo.label(n) for n in repo.issues[number].labels],
        "milestone": None,
        "draft": pull["draft"],
        "commits_url": f"{api}/commits",
        "review_comments_url": f"{api}/comments",
        "review_comment_url": f"{repo.api_url}/pulls/comments{{/number}}",
        "comments_url": f"{repo.api_url}/issues/{number}/comments",
        "statuses_url": f"{repo.api_url}/statuses/{pull['head']['sha']}",
        "head": side(pull["head"], head_repo, owner),
        "base": side(pull["base"], repo.json(), repo.owner),
        "_links": links,
        "author_association": "CONTRIBUTOR" if pull.get("head_repo_fork") else "MEMBER",
        "auto_merge": None,
        "active_lock_reason": None,
        "merged": bool(pull.get("merged")),
        "mergeable": None,
        "rebaseable": None,
        "mergeable_state": "unknown",
        "merged_by": user(pull["merged_by"]) if pull.get("merged_by") else None,
        "comments": 0,
        "review_comments": len(repo.review_comments.get(number, [])),
        "maintainer_can_modify": False,
        "commits": 1,
        "additions": 0,
        "deletions": 0,
        "changed_files": 0,
    }


# The App the double's checks belong to: specbridge, as GitHub shows it in check payloads.
CHECKS_APP = {
    "id": 4242,
    "slug": "specbridge",
    "node_id": node_id("A", 4242),
    "owner": user("acme", "Organization"),
    "name": "specbridge",
    "description": "Specs in, tracked work out",
    "external_url": "https://specbridge.example.com",
    "html_url": "https://github.com/apps/specbridge",
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
    "permissions": {"checks": "write", "contents": "write", "metadata": "read"},
    "events": ["check_run", "check_suite", "pull_request", "push"],
}
# Other Apps that report checks (another CI), as GitHub shows them in check payloads:
# GitHub Actions as it is on github.com; any other slug as an App of that name.
GITHUB_ACTIONS = {
    "id": 15368,
    "slug": "github-actions",
    "node_id": "MDM6QXBwMTUzNjg=",
    "owner": user("github", "Organization"),
    "name": "GitHub Actions",
    "description": "Automate your workflow from idea to production",
    "external_url": "https://help.github.com/en/actions",
    "html_url": "https://github.com/apps/github-actions",
    "created_at": "2018-07-30T09:30:17Z",
    "updated_at": "2019-12-10T19:04:12Z",
    "permissions": {"checks": "write", "contents": "write", "metadata": "read"},
    "events": ["check_run", "check_suite", "push"],
}


def app_json(slug: str) -> dict[str, Any]:
    """The App a check suite belongs to, as check payloads show it."""
    if slug == CHECKS_APP["slug"]:
        return CHECKS_APP
    if slug == GITHUB_ACTIONS["slug"]:
        return GITHUB_ACTIONS
    app_id = abs(hash(slug)) % 1_000_000 + 10_000
    return {
        **GITHUB_ACTIONS,
        "id": app_id,
        "slug": slug,
        "node_id": node_id("A", app_id),
        "owner": user(slug, "Organization"),
        "name": slug,
        "description": f"{slug}'s checks",
        "external_url": f"https://{slug}.example.com",
        "html_url": f"https://github.com/apps/{slug}",
    }


# Worst first: a suite concludes with the first of these its runs concluded with.
SUITE_CONCLUSIONS = (
    "action_required",
    "startup_failure",
    "failure",
    "timed_out",
    "cancelled",
    "stale",
    "neutral",
    "skipped",
    "success",
)


def pull_request_refs(repo: Repo, sha: str) -> list[dict[str, Any]]:
    """The open pull requests whose head is `sha`, as checks list them: GitHub
    leaves out those from forks."""

    def side(which: dict[str, Any]) -> dict[str, Any]:
        repository = {"id": repo.id, "url": repo.api_url, "name": repo.name}
        return {"ref": which["ref"], "sha": which["sha"], "repo": repository}

    return [
        {
            "url": f"{repo.api_url}/pulls/{pull['number']}",
            "id": pull["id"],
            "number": pull["number"],
            "head": side(pull["head"]),
            "base": side(pull["base"]),
        }
        for pull in repo.pulls.values()
        if pull["state"] == "open" and pull["head"]["sha"] == sha and not pull.get("head_repo_fork")
    ]


def check_suite_json(repo: Repo, suite: dict[str, Any]) -> dict[str, Any]:
    url = f"{repo.api_url}/check-suites/{suite['id']}"
    runs = repo.runs_in(suite)
    message = repo.git.message(suite["head_sha"])
    author = {"name": "octocat", "email": "octocat@users.noreply.github.com"}
    return {
        "id": suite["id"],
        "node_id": node_id("CS", suite["id"]),
        "head_branch": suite["head_branch"],
        "head_sha": suite["head_sha"],
        "status": suite["status"],
        "conclusion": suite["conclusion"],
        "url": url,
        "before": suite["before"],
        "after": suite["head_sha"],
        "pull_requests": pull_request_refs(repo, suite["head_sha"]),
        "app": app_json(suite["app"]),
        "created_at": suite["created_at"],
        "updated_at": suite["updated_at"],
        "latest_check_runs_count": len(runs),
        "check_runs_url": f"{url}/check-runs",
        "head_commit": {
            "id": suite["head_sha"],
            "tree_id": suite["head_sha"],
            "message": message,
            "timestamp": suite["created_at"],
            "author": author,
            "committer": author,
        },
    }


def check_run_json(repo: Repo, run: dict[str, Any]) -> dict[str, Any]:
    """A check run as the REST API answers it."""
    url = f"{repo.api_url}/check-runs/{run['id']}"
    return {
        "id": run["id"],
        "node_id": node_id("CR", run["id"]),
        "head_sha": run["head_sha"],
        "external_id": run.get("external_id") or "",
        "url": url,
        "html_url": f"{repo.html_url}/runs/{run['id']}",
        "details_url": run.get("details_url") or "https://specbridge.example.com",
        "status": run["status"],
        "conclusion": run.get("conclusion"),
        "started_at": run.get("started_at"),
        "completed_at": run.get("completed_at"),
        "output": {
            "title": run["output"].get("title"),
            "summary": run["output"].get("summary"),
            "text": run["output"].get("text"),
            "annotations_count": len(run["annotations"]),
            "annotations_url": f"{url}/annotations",
        },
        "name": run["name"],
        "check_suite": {"id": run["check_suite_id"]},
        "app": app_json(repo.suite_of(run)["app"]),
        "pull_requests": pull_request_refs(repo, run["head_sha"]),
    }


def check_run_payload(
    action: str, repo: Repo, run: dict[str, Any], suite: dict[str, Any]
) -> dict[str, Any]:
    """A `check_run` webhook: the run with its suite (without the suite's counts and commit)."""
    brief = ("check_runs_url", "head_commit", "latest_check_runs_count")
    shown = {k: v for k, v in check_suite_json(repo, suite).items() if k not in brief}
    return {"action": action, "check_run": {**check_run_json(repo, run), "check_suite": shown}}


def installation_json(repo: Repo) -> dict[str, Any]:
    """The App's installation on the repository's owner, as installation webhooks carry it."""
    number = repo.installation_id
    return {
        "id": number,
        "account": repo.owner_json(),
        "repository_selection": "selected",
        "access_tokens_url": f"https://api.github.com/app/installations/{number}/access_tokens",
        "repositories_url": "https://api.github.com/installation/repositories",
        "html_url": f"https://github.com/settings/installations/{number}",
        "app_id": CHECKS_APP["id"],
        "app_slug": CHECKS_APP["slug"],
        "target_id": repo.owner_json()["id"],
        "target_type": repo.owner_type,
        "permissions": CHECKS_APP["permissions"],
        "events": CHECKS_APP["events"],
        "created_at": now(),
        "updated_at": now(),
        "single_file_name": None,
        "suspended_at": None,
        "suspended_by": None,
    }


def repository_brief(repo: Repo) -> dict[str, Any]:
    """A repository as installation webhooks list it."""
    return {
        "id": repo.id,
        "node_id": repo.node_id,
        "name": repo.name,
        "full_name": repo.full_name,
        "private": repo.private,
    }
