"""What the double keeps: repositories, issues, comments, projects, pull requests."""

from __future__ import annotations

import base64
import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fakehub.git import GitRepository

BOT = {"login": "specbridge[bot]", "id": 900001, "type": "Bot"}
# GitHub's Copilot coding agent: REST and webhooks show it as the Bot `Copilot`
# (https://github.com/apps/copilot-swe-agent); GraphQL's suggestedActors as `copilot-swe-agent`.
COPILOT = {"login": "Copilot", "id": 198982749, "type": "Bot", "app": "copilot-swe-agent"}
# Partner agents GitHub hosts besides Copilot (public preview, February 2026), assignable
# where a repository enabled them (`POST /_admin/repos` with `"agents": ["claude"]`).
PARTNER_AGENTS = {
    "claude": {"login": "claude", "id": 198982801, "type": "Bot", "app": "claude"},
    "codex": {"login": "codex", "id": 198982802, "type": "Bot", "app": "codex"},
}
# A board made on github.com gets these Status options.
GITHUB_DEFAULT_STATUS = ("Todo", "In Progress", "Done")
# Who moves a card when one of a board's built-in workflows does.
PROJECT_AUTOMATION = "github-project-automation[bot]"
# The built-in workflows the double knows, and the Status each sets: "Item closed"
# sets Done (GitHub's default, and the only value it knows on a default board).
BUILT_IN_WORKFLOWS = {"item_closed": "Done"}
_ids = itertools.count(1000)


def new_id() -> int:
    return next(_ids)


def node_id(prefix: str, number: int) -> str:
    return f"{prefix}_kw{base64.b64encode(str(number).encode()).decode().rstrip('=')}"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def user(login: str, kind: str | None = None) -> dict[str, Any]:
    if login == BOT["login"]:
        kind, user_id = "Bot", BOT["id"]
    elif login == COPILOT["login"]:
        kind, user_id = "Bot", COPILOT["id"]
    elif login in PARTNER_AGENTS:
        kind, user_id = "Bot", PARTNER_AGENTS[login]["id"]
    else:
        user_id = abs(hash(login)) % 10_000_000
        if login.endswith("[bot]"):  # an App's bot account (GitHub's project automation, ...)
            kind = "Bot"
    base = f"https://api.github.com/users/{login}"
    html = f"https://github.com/{login}"
    if login == COPILOT["login"]:
        html = f"https://github.com/apps/{COPILOT['app']}"
    return {
        "login": login,
        "id": user_id,
        "node_id": node_id(
            "BOT" if login == COPILOT["login"] or login in PARTNER_AGENTS else "U", user_id
        ),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
        "gravatar_id": "",
        "url": base,
        "html_url": html,
        "followers_url": f"{base}/followers",
        "following_url": f"{base}/following{{/other_user}}",
        "gists_url": f"{base}/gists{{/gist_id}}",
        "starred_url": f"{base}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{base}/subscriptions",
        "organizations_url": f"{base}/orgs",
        "repos_url": f"{base}/repos",
        "events_url": f"{base}/events{{/privacy}}",
        "received_events_url": f"{base}/received_events",
        "type": kind or "User",
        "site_admin": False,
    }


def reactions(url: str) -> dict[str, Any]:
    """GitHub's reaction rollup, all zero: the double keeps reactions in its own list."""
    kinds = ("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes")
    return {"url": url, "total_count": 0, **dict.fromkeys(kinds, 0)}


@dataclass
class Issue:
    repo: Repo
    number: int
    title: str
    body: str | None
    author: str
    labels: list[str] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)
    state: str = "open"
    state_reason: str | None = None
    id: int = field(default_factory=new_id)
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    closed_at: str | None = None
    sub_issues: list[int] = field(default_factory=list)
    parent: int | None = None
    blocked_by: list[int] = field(default_factory=list)  # issue numbers
    comments: list[dict[str, Any]] = field(default_factory=list)
    # Set on the issue every pull request also is (one numbering, the issue comments
    # API works on it): the `pull_request` links of its REST shape, and its node id.
    pull_request: dict[str, Any] | None = None
    pull_node_id: str | None = None

    @property
    def node_id(self) -> str:
        return self.pull_node_id or node_id("I", self.id)

    @property
    def is_pull_request(self) -> bool:
        return self.pull_request is not None

    def json(self) -> dict[str, Any]:
        url = f"{self.repo.api_url}/issues/{self.number}"
        data = {
            "id": self.id,
            "node_id": self.node_id,
            "url": url,
            "repository_url": self.repo.api_url,
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "html_url": f"{self.repo.html_url}/issues/{self.number}",
            "number": self.number,
            "state": self.state,
            "state_reason": self.state_reason,
            "title": self.title,
            "body": self.body,
            "user": user(self.author),
            "labels": [self.repo.label(name) for name in self.labels],
            "assignee": user(self.assignees[0]) if self.assignees else None,
            "assignees": [user(a) for a in self.assignees],
            "milestone": None,
            "locked": False,
            "active_lock_reason": None,
            "comments": len(self.comments),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "closed_at": self.closed_at,
            "author_association": "NONE" if self.author == BOT["login"] else "OWNER",
            "reactions": reactions(f"{url}/reactions"),
            "timeline_url": f"{url}/timeline",
            "performed_via_github_app": None,
        }
        if self.pull_request is not None:
            data["pull_request"] = self.pull_request
        return data


@dataclass
class Repo:
    owner: str
    name: str
    owner_type: str
    git: GitRepository
    installation_id: int
    base_url: str = ""  # where the double serves git over HTTP
    private: bool = False
    collaborators: dict[str, str] = field(default_factory=dict)
    installed: bool = True  # the App is installed on it: it hears of it and may write to it
    id: int = field(default_factory=new_id)
    issues: dict[int, Issue] = field(default_factory=dict)
    commit_comments: list[dict[str, Any]] = field(default_factory=list)
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    check_runs: list[dict[str, Any]] = field(default_factory=list)
    # By (App slug, head commit): each App has one suite per commit (fakehub/ci.py).
    check_suites: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # Commit statuses, oldest first (fakehub/ci.py).
    statuses: list[dict[str, Any]] = field(default_factory=list)
    label_ids: dict[str, int] = field(default_factory=dict)
    # Pull request reviews and their line comments, by pull request number (fakehub/pulls.py).
    reviews: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    review_comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    # Copilot coding agent enabled here, and the assignments it accepted (fakehub/copilot.py).
    copilot: bool = False
    copilot_assignments: list[dict[str, Any]] = field(default_factory=list)
    protected_branches: set[str] = field(default_factory=set)  # fakehub/protection.py
    # Reviewers requested on each pull request: {"users": [...], "teams": [...]}, and the
    # organization's teams that may be asked, slug → members (fakehub/reviewers.py).
    requested_reviewers: dict[int, dict[str, list[str]]] = field(default_factory=dict)
    teams: dict[str, list[str]] = field(default_factory=dict)
    # The status checks a protected branch requires, by branch (fakehub/protection.py).
    required_checks: dict[str, list[str]] = field(default_factory=dict)
    # Tasks of GitHub's agent tasks API, by id (fakehub/agent_tasks.py).
    agent_tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Partner agents enabled here besides Copilot: "claude", "codex" (fakehub/copilot.py).
    agents: list[str] = field(default_factory=list)
    # Workflow runs started by `workflow_dispatch`, by id (fakehub/actions.py).
    workflow_runs: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def api_url(self) -> str:
        return f"https://api.github.com/repos/{self.full_name}"

    @property
    def html_url(self) -> str:
        return f"https://github.com/{self.full_name}"

    @property
    def default_branch(self) -> str:
        return self.git.default_branch

    def next_number(self) -> int:
        return max([0, *self.issues, *self.pulls]) + 1

    def check_run(self, run_id: int) -> dict[str, Any] | None:
        return next((r for r in self.check_runs if r["id"] == run_id), None)

    def check_suite(self, suite_id: int) -> dict[str, Any] | None:
        return next((s for s in self.check_suites.values() if s["id"] == suite_id), None)

    def suite_of(self, run: dict[str, Any]) -> dict[str, Any]:
        """The suite a run joined when it was created."""
        suite = self.check_suite(run["check_suite_id"])
        assert suite is not None
        return suite

    def runs_in(self, suite: dict[str, Any]) -> list[dict[str, Any]]:
        return [r for r in self.check_runs if r["check_suite_id"] == suite["id"]]

    @property
    def node_id(self) -> str:
        return node_id("R", self.id)

    @property
    def clone_url(self) -> str:
        return f"{self.base_url}/{self.full_name}.git"

    def changed_paths(self, pull: dict[str, Any]) -> set[str]:
        """The paths a pull request changes, from where its head left its base."""
        base = self.git.sha(pull["base"]["ref"]) or pull["base"]["sha"]
        merge_base = self.git.merge_base(base, pull["head"]["sha"]) or base
        added, removed, modified = self.git.changes(merge_base, pull["head"]["sha"])
        return set(added) | set(removed) | set(modified)

    def label(self, name: str) -> dict[str, Any]:
        """A label's REST shape; REST creates a label it does not know, as GitHub does."""
        label_id = self.label_ids.setdefault(name, new_id())
        return {
            "id": label_id,
            "node_id": node_id("LA", label_id),
            "url": f"{self.api_url}/labels/{name}",
            "name": name,
            "color": "ededed",
            "default": False,
            "description": None,
        }

    def owner_json(self) -> dict[str, Any]:
        return user(self.owner, self.owner_type)

    def json(self) -> dict[str, Any]:
        api = self.api_url
        return {
            "id": self.id,
            "node_id": self.node_id,
            "name": self.name,
            "full_name": self.full_name,
            "private": self.private,
            "owner": self.owner_json(),
            "html_url": self.html_url,
            "description": None,
            "fork": False,
            "url": api,
            "clone_url": self.clone_url,
            "git_url": f"git://github.com/{self.full_name}.git",
            "ssh_url": f"git@github.com:{self.full_name}.git",
            "svn_url": self.html_url,
            "homepage": None,
            "size": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "language": None,
            "has_issues": True,
            "has_projects": True,
            "has_downloads": True,
            "has_wiki": False,
            "has_discussions": False,
            "has_pages": False,
            "forks_count": 0,
            "mirror_url": None,
            "archived": False,
            "disabled": False,
            "open_issues_count": sum(1 for i in self.issues.values() if i.state == "open"),
            "license": None,
            "forks": 0,
            "open_issues": 0,
            "watchers": 0,
            "default_branch": self.default_branch,
            "visibility": "private" if self.private else "public",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "pushed_at": "2026-01-01T00:00:00Z",
            "topics": [],
            "custom_properties": {},
            "is_template": False,
            "allow_forking": True,
            "web_commit_signoff_required": False,
            **{
                f"{name}_url": f"{api}/{name}"
                for name in (
                    "archive",
                    "assignees",
                    "blobs",
                    "branches",
                    "collaborators",
                    "comments",
                    "commits",
                    "compare",
                    "contents",
                    "contributors",
                    "deployments",
                    "downloads",
                    "events",
                    "forks",
                    "git_commits",
                    "git_refs",
                    "git_tags",
                    "hooks",
                    "issue_comment",
                    "issue_events",
                    "issues",
                    "keys",
                    "labels",
                    "languages",
                    "merges",
                    "milestones",
                    "notifications",
                    "pulls",
                    "releases",
                    "stargazers",
                    "statuses",
                    "subscribers",
                    "subscription",
                    "tags",
                    "teams",
                    "trees",
                )
            },
        }


@dataclass
class Project:
    owner: str
    owner_type: str
    number: int
    id: int = field(default_factory=new_id)
    field_id: int = field(default_factory=new_id)
    options: dict[str, str] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # item node id → item
    # The built-in workflows turned on (BUILT_IN_WORKFLOWS); all off unless a test
    # turns one on: no card moves by itself.
    workflows: set[str] = field(default_factory=set)

    status_names: tuple[str, ...] = GITHUB_DEFAULT_STATUS

    def __post_init__(self) -> None:
        self.options = {name: f"opt{new_id()}" for name in self.status_names}

    @property
    def node_id(self) -> str:
        return node_id("PVT", self.id)

    @property
    def field_node_id(self) -> str:
        return node_id("PVTSSF", self.field_id)

    def status_name(self, option_id: str | None) -> str | None:
        return next((name for name, oid in self.options.items() if oid == option_id), None)


@dataclass
class Token:
    """An installation token the double issued, and what it may do."""

    installation_id: int
    repositories: set[str] | None  # full names; None: every repository of the installation
    permissions: dict[str, str]
    expires_at: float


class State:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.RLock()
        self.repos: dict[str, Repo] = {}
        self.projects: dict[tuple[str, int], Project] = {}
        self.installations: dict[str, int] = {}
        self.tokens: dict[str, Token] = {}
        self.user_tokens: dict[str, str] = {}  # a person's token → their login
        self.requests: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []
        self._issues_by_node: dict[str, Issue] = {}

    def installation_for(self, owner: str) -> int:
        return self.installations.setdefault(owner, len(self.installations) + 1)

    def repo(self, owner: str, name: str) -> Repo | None:
        return self.repos.get(f"{owner}/{name}")

    def add_issue(self, issue: Issue) -> None:
        issue.repo.issues[issue.number] = issue
        self._issues_by_node[issue.node_id] = issue

    def issue_by_node(self, node: str) -> Issue | None:
        return self._issues_by_node.get(node)

    def may_push(self, token: str | None, repo: Repo) -> bool:
        """A push needs a token with contents: write on the repository."""
        if token is None:
            return False
        issued = self.tokens.get(token)
        if issued is None:
            return not token.startswith("ghs_")  # a user's token: full access
        return (
            repo.installed
            and issued.expires_at > time.time()
            and issued.installation_id == repo.installation_id
            and (issued.repositories is None or repo.full_name in issued.repositories)
            and issued.permissions.get("contents") == "write"
        )

    def may_read(self, token: str | None, repo: Repo) -> bool:
        if not repo.private:
            return True
        if token is None:
            return False
        issued = self.tokens.get(token)
        if issued is None:
            return not token.startswith("ghs_")
        return issued.expires_at > time.time() and (
            issued.repositories is None or repo.full_name in issued.repositories
        )

    def project_by_node(self, node: str) -> Project | None:
        return next((p for p in self.projects.values() if p.node_id == node), None)
