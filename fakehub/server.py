"""The GitHub double: its state changes (each sending GitHub's webhooks), and the
HTTP server that checks every request as GitHub would before it is answered.

Routes live beside: REST in rest.py, GraphQL in graphql_api.py, git over HTTP
in git_http.py, what people do in admin.py.
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.serving import make_server

from fakehub import graphql_api
from fakehub.apps import WEB_FORM
from fakehub.git import GitRepository
from fakehub.http import (
    TOO_DEEP,
    TOO_MANY_SUB_ISSUES,
    Refused,
    SubIssueRefused,
    TooQuickly,
    check_label_names,
    check_text,
    error,
    rate_limited,
    request_token,
)
from fakehub.limits import (
    NESTING_LEVELS,
    SUB_ISSUES_PER_PARENT,
    TOO_QUICKLY,
    Budgets,
    Limits,
    RateLimited,
)
from fakehub.openapi import github_rest
from fakehub.reviewers import request_code_owners
from fakehub.state import (
    BOT,
    BUILT_IN_WORKFLOWS,
    GITHUB_DEFAULT_STATUS,
    PROJECT_AUTOMATION,
    Issue,
    Project,
    Repo,
    State,
    new_id,
    node_id,
    now,
    reactions,
    user,
)
from fakehub.webhooks import (
    CHECKS_APP,
    GITHUB_TIMEOUT,
    SUITE_CONCLUSIONS,
    WebhookSender,
    check_run_payload,
    check_suite_json,
    envelope,
    installation_json,
    issue_payload,
    project_item_payload,
    pull_links,
    pull_request_json,
    push_payload,
    repository_brief,
)

# The Checks API takes at most this many annotations per request.
ANNOTATIONS_PER_REQUEST = 50


class FakeHub:
    def __init__(
        self,
        webhook_url: str | None = None,
        webhook_secret: str = "",
        state_dir: Path | None = None,
        webhook_timeout: float = GITHUB_TIMEOUT,
    ) -> None:
        root = Path(state_dir or tempfile.mkdtemp(prefix="fakehub-"))
        root.mkdir(parents=True, exist_ok=True)
        self.state = State(root)
        self.limits = Limits()
        self.budgets = Budgets(self.limits)
        self.webhooks = WebhookSender(webhook_url, webhook_secret, webhook_timeout)
        self.app = self._build_app()
        self._server: Any = None
        self.url = ""

    # -- running -----------------------------------------------------------------------

    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        github_rest()
        graphql_api.github_schema()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = make_server(host, port, self.app, threaded=True)
        self.url = f"http://{host}:{self._server.server_port}"
        for repo in self.state.repos.values():
            repo.base_url = self.url
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    # -- changes, each sending the webhooks GitHub sends ------------------------------------

    def send(self, event: str, repo: Repo, sender: str, /, **payload: Any) -> str | None:
        """GitHub tells an App only of the repositories it is installed on."""
        if not repo.installed:
            return None
        data = envelope(self.state, repo, sender, **payload)
        if event == "projects_v2_item":
            del data["repository"]  # a board belongs to an owner, not to a repository
        return self.webhooks.send(event, data)

    def create_repo(self, data: dict[str, Any]) -> Repo:
        owner, name = data["owner"], data["name"]
        owner_type = data.get("owner_type", "Organization")
        git = GitRepository(self.state.root, f"{owner}/{name}", data.get("default_branch", "main"))
        git.commit(
            git.default_branch,
            data.get("files") or {"README.md": f"# {name}\n"},
            "Initial commit",
            "octocat",
        )
        repo = Repo(
            owner,
            name,
            owner_type,
            git,
            self.state.installation_for(owner),
            base_url=self.url,
            private=bool(data.get("private")),
            collaborators=data.get("collaborators") or {},
            installed=data.get("installed", True),
            copilot=bool(data.get("copilot")) or "copilot" in (data.get("agents") or []),
            teams=dict(data.get("teams") or {}),
            agents=[a for a in data.get("agents") or [] if a != "copilot"],
        )
        self.state.repos[repo.full_name] = repo
        if data.get("project"):
            number = data["project"]["number"]
            options = tuple(data.get("status_options") or GITHUB_DEFAULT_STATUS)
            self.state.projects.setdefault(
                (owner, number), Project(owner, owner_type, number, status_names=options)
            )
        return repo

    def commit(
        self, repo: Repo, branch: str, files: dict[str, str | None], message: str, author: str
    ) -> dict[str, str]:
        before, after = repo.git.commit(branch, files, message, author)
        delivery_id = self.pushed(repo, branch, before, after, author)
        return {"sha": after, "delivery_id": delivery_id}

    def pushed(self, repo: Repo, branch: str, before: str, after: str, pusher: str) -> str:
        """A branch moved (a commit, a push over HTTP, a merge): its webhooks, and the
        pull requests whose head it is follow."""
        message = repo.git.message(after)
        delivery_id = self.send(
            "push", repo, pusher, **push_payload(repo, branch, before, after, message, pusher)
        )
        # GitHub makes a check suite for each App with checks permission, and asks it to check.
        suite = self._suite(repo, after, branch, before)
        self.send(
            "check_suite",
            repo,
            pusher,
            action="requested",
            check_suite=check_suite_json(repo, suite),
        )
        # However it came (a commit, git over HTTP, the refs API), the head of the branch's
        # open pull requests moves with it: `pull_request` synchronize.
        for pull in repo.pulls.values():
            if pull["state"] == "open" and pull["head"]["ref"] == branch:
                pull["head"]["sha"] = after
                self.send_pull_request(
                    repo, pull, "synchronize", pusher, before=before, after=after
                )
        return delivery_id

    def install(self, owner: str, names: list[str], person: str) -> str | None:
        """A person installs the App on repositories of `owner`: `installation` created
        when it was on none of them yet, else `installation_repositories` added."""
        owned = [r for r in self.state.repos.values() if r.owner == owner]
        chosen = [r for r in owned if r.name in names and not r.installed]
        if not chosen:
            return None
        first = not any(r.installed for r in owned)
        for repo in chosen:
            repo.installed = True
        listed = [repository_brief(r) for r in chosen]
        common = {"installation": installation_json(chosen[0]), "sender": user(person)}
        if first:
            payload = {"action": "created", **common, "repositories": listed}
            return self.webhooks.send("installation", payload)
        payload = {
            "action": "added",
            **common,
            "repository_selection": "selected",
            "repositories_added": listed,
            "repositories_removed": [],
            "requester": None,
        }
        return self.webhooks.send("installation_repositories", payload)

    def create_issue(
        self,
        repo: Repo,
        title: str,
        body: str | None,
        token: str,
        labels: list[str] | None = None,
        assignees: list[str] | None = None,
        author: str = BOT["login"],
    ) -> Issue:
        check_text(title, body)
        check_label_names(labels or [])
        self._spend_content(token)
        issue = Issue(
            repo,
            repo.next_number(),
            title,
            body,
            author,
            labels=list(labels or []),
            assignees=list(assignees or []),
        )
        self.state.add_issue(issue)
        self.send("issues", repo, author, **issue_payload("opened", issue))
        return issue

    def edit_issue(self, issue: Issue, changes: dict[str, Any], actor: str = BOT["login"]) -> None:
        """Title, body, labels, assignees, state (with state_reason), as PATCH takes them."""
        check_text(changes.get("title", issue.title), changes.get("body", issue.body))
        check_label_names(changes.get("labels") or [])
        edited = {
            key: {"from": getattr(issue, key)}
            for key in ("title", "body")
            if key in changes and changes[key] != getattr(issue, key)
        }
        for key in ("title", "body"):
            if key in changes:
                setattr(issue, key, changes[key])
        if "labels" in changes:
            issue.labels = list(changes["labels"])
        if "assignees" in changes:
            issue.assignees = list(changes["assignees"])
        issue.updated_at = now()
        if edited:
            self.send("issues", issue.repo, actor, **issue_payload("edited", issue, changes=edited))
        if changes.get("state") in ("open", "closed"):
            self.set_issue_state(issue, changes["state"], changes.get("state_reason"), actor)

    def set_issue_state(self, issue: Issue, state: str, reason: str | None, actor: str) -> None:
        if issue.state == state:
            return
        if issue.is_pull_request:  # closing the issue a pull request is closes the pull request
            self._set_pull_state(issue, state, actor)
            return
        issue.state, issue.updated_at = state, now()
        if state == "closed":
            issue.state_reason, issue.closed_at = reason or "completed", now()
            self.send("issues", issue.repo, actor, **issue_payload("closed", issue))
            self.item_closed(issue)
        else:
            issue.state_reason, issue.closed_at = "reopened", None
            self.send("issues", issue.repo, actor, **issue_payload("reopened", issue))

    def _set_pull_state(self, issue: Issue, state: str, actor: str) -> None:
        """As GitHub does through the issues API: `pull_request` closed or reopened."""
        from fakehub.pulls import close_pull

        pull = issue.repo.pulls[issue.number]
        if pull.get("merged"):
            raise Refused("A merged pull request cannot be reopened or closed again")
        if state == "closed":
            close_pull(self, issue.repo, pull, actor)
            return
        pull.update(state="open", closed_at=None)
        self.pull_changed(issue.repo, pull)
        self.send_pull_request(issue.repo, pull, "reopened", actor)

    def item_closed(self, issue: Issue) -> None:
        """A board's built-in "Item closed" workflow, where a test turned it on: the
        card of a closed issue goes to Done (sent by GitHub's project automation)."""
        for project in self.state.projects.values():
            column = BUILT_IN_WORKFLOWS["item_closed"]
            if "item_closed" not in project.workflows or column not in project.options:
                continue
            for item in list(project.items.values()):
                if item["content"] == issue.node_id and item["status"] != project.options[column]:
                    self.set_item_status(
                        project.node_id,
                        item["id"],
                        project.field_node_id,
                        project.options[column],
                        PROJECT_AUTOMATION,
                    )

    def add_comment(
        self, issue: Issue, author: str, body: str, association: str, token: str | None = None
    ) -> dict[str, Any]:
        check_text("comment", body)
        if token is not None:
            self._spend_content(token)
        comment_id = new_id()
        comment = {
            "id": comment_id,
            "node_id": node_id("IC", comment_id),
            "url": f"{issue.repo.api_url}/issues/comments/{comment_id}",
            "html_url": f"{issue.repo.html_url}/issues/{issue.number}#issuecomment-{comment_id}",
            "issue_url": f"{issue.repo.api_url}/issues/{issue.number}",
            "body": body,
            "user": user(author),
            "created_at": now(),
            "updated_at": now(),
            "author_association": association,
            "performed_via_github_app": None,
            "reactions": reactions(f"{issue.repo.api_url}/issues/comments/{comment_id}/reactions"),
        }
        issue.comments.append(comment)
        self.send(
            "issue_comment",
            issue.repo,
            author,
            action="created",
            issue=issue.json(),
            comment=comment,
        )
        return comment

    def create_label(self, repo: Repo, name: str, token: str) -> dict[str, Any]:
        if name in repo.label_ids:
            raise Refused(f"Name has already been taken: {name}")
        check_label_names([name])
        self._spend_content(token)
        return repo.label(name)

    def check_room(self, parent: Issue, height: int = 1) -> None:
        """GitHub's limits on a parent: 100 sub-issues (closed ones count), 8 levels."""
        if len(parent.sub_issues) >= SUB_ISSUES_PER_PARENT:
            raise SubIssueRefused([TOO_MANY_SUB_ISSUES])
        if _depth(parent) + height > NESTING_LEVELS:
            raise SubIssueRefused([TOO_DEEP])

    def add_sub_issue(self, parent: Issue, child: Issue, replace: bool = False) -> None:
        """As github.com validates the link (see SubIssueRefused): every broken rule is
        named, in one sentence; the depth is checked once the rules hold. With
        `replace`, a child of another parent moves to the end of this one."""
        reasons = []
        if child is parent:
            reasons.append("Sub issue cannot be the same as the parent issue")
        if child.repo.owner != parent.repo.owner:
            reasons.append("Sub issue must have the same owner as the parent")
        if child.number in parent.sub_issues:
            reasons.append("Issue may not contain duplicate sub-issues")
        if child.parent is not None and not replace:
            reasons.append("Sub issue may only have one parent")
        if child is not parent and _is_ancestor(child, parent):
            reasons.append("Sub issue may not create a circular dependency.")
        if len(parent.sub_issues) >= SUB_ISSUES_PER_PARENT:
            reasons.append(TOO_MANY_SUB_ISSUES)
        if reasons:
            raise SubIssueRefused(reasons)
        if _depth(parent) + _height(child) > NESTING_LEVELS:
            raise SubIssueRefused([TOO_DEEP])
        if child.parent is not None:
            old = parent.repo.issues[child.parent]
            old.sub_issues.remove(child.number)
        parent.sub_issues.append(child.number)
        child.parent = parent.number

    def remove_sub_issue(self, parent: Issue, child: Issue) -> None:
        if child.number not in parent.sub_issues:
            raise Refused("The issue is not a sub-issue of this parent")
        parent.sub_issues.remove(child.number)
        child.parent = None

    def add_blocked_by(self, issue: Issue, blocking: Issue) -> None:
        if blocking.number in issue.blocked_by:
            raise Refused("Issue is already blocked by this issue")
        if blocking is issue:
            raise Refused("An issue cannot block itself")
        issue.blocked_by.append(blocking.number)

    def remove_blocked_by(self, issue: Issue, blocking: Issue) -> None:
        if blocking.number not in issue.blocked_by:
            raise Refused("Issue is not blocked by this issue")
        issue.blocked_by.remove(blocking.number)

    def add_project_item(self, project_id: str, content_id: str) -> dict[str, Any]:
        project = self._project(project_id)
        issue = self.state.issue_by_node(content_id)
        if issue is None:
            raise Refused(f"Could not resolve to a node with the global id of '{content_id}'")
        item = next((i for i in project.items.values() if i["content"] == content_id), None)
        if item is None:
            item = graphql_api.new_item(content_id, BOT["login"])
            project.items[item["id"]] = item
            if project.owner_type == "Organization":
                self.send(
                    "projects_v2_item",
                    issue.repo,
                    BOT["login"],
                    **project_item_payload("created", project, item, issue),
                )
        return item

    def set_item_status(
        self,
        project_id: str,
        item_id: str,
        field_id: str,
        option: str | None,
        actor: str = BOT["login"],
    ) -> dict[str, Any]:
        project = self._project(project_id)
        item = project.items.get(item_id)
        if (
            item is None
            or field_id != project.field_node_id
            or option not in project.options.values()
        ):
            raise Refused("The item, field or option does not exist on this project")
        before = item["status"]
        item["status"] = option
        item.setdefault("history", []).append(project.status_name(option))
        issue = self.state.issue_by_node(item["content"])
        if project.owner_type == "Organization" and issue is not None and before != option:
            # As in GitHub's published schema: which field changed, not its values.
            changes = {
                "field_value": {
                    "field_node_id": project.field_node_id,
                    "field_type": "single_select",
                }
            }
            self.send(
                "projects_v2_item",
                issue.repo,
                actor,
                **project_item_payload("edited", project, item, issue, changes=changes),
            )
        return item

    def open_pull(
        self, repo: Repo, data: dict[str, Any], author: str, token: str | None = None
    ) -> dict[str, Any]:
        check_text(data["title"], data.get("body"))  # a pull request is an issue: same limits
        if token is not None:
            self._spend_content(token)
        number = repo.next_number()
        pull = {
            "id": new_id(),
            "number": number,
            "state": "open",
            "title": data["title"],
            "body": data.get("body"),
            "draft": bool(data.get("draft")),
            "merged": False,
            "user": user(author),
            "head": {"ref": data["head"], "sha": repo.git.sha(data["head"])},
            "base": {"ref": data["base"], "sha": repo.git.sha(data["base"])},
            "html_url": f"{repo.html_url}/pull/{number}",
            "created_at": now(),
        }
        repo.pulls[number] = pull
        # On GitHub a pull request is an issue too: same number, comments, labels.
        repo.issues[number] = Issue(
            repo,
            number,
            pull["title"],
            pull["body"],
            author,
            pull_request=pull_links(repo, pull),
            pull_node_id=node_id("PR", pull["id"]),
        )
        return pull

    def pull_changed(self, repo: Repo, pull: dict[str, Any]) -> None:
        """The issue a pull request also is follows its state (closed, merged)."""
        issue = repo.issues[pull["number"]]
        issue.state, issue.updated_at = pull["state"], now()
        issue.closed_at = pull.get("closed_at") if pull["state"] == "closed" else None
        issue.state_reason = None
        issue.pull_request = pull_links(repo, pull)
        if pull["state"] == "closed":
            self.item_closed(issue)

    def person_opens_pull(self, repo: Repo, data: dict[str, Any]) -> dict[str, Any]:
        """A person opens a pull request (from a fork with `head_repo_fork`): `pull_request`."""
        if repo.git.sha(data["head"]) is None or repo.git.sha(data["base"]) is None:
            raise Refused("head and base must be branches of the repository")
        login = data.get("user", "octocat")
        pull = self.open_pull(repo, data, login)
        pull["head_repo_fork"] = bool(data.get("head_repo_fork"))
        self.send_pull_request(repo, pull, "opened", login)
        if not pull["draft"]:
            request_code_owners(self, repo, pull, login)
        return pull

    def send_pull_request(
        self, repo: Repo, pull: dict[str, Any], action: str, sender: str, **extra: Any
    ) -> str:
        return self.send(
            "pull_request",
            repo,
            sender,
            action=action,
            number=pull["number"],
            **extra,
            pull_request=pull_request_json(repo, pull),
        )

    def create_check_run(
        self,
        repo: Repo,
        data: dict[str, Any],
        app: str = CHECKS_APP["slug"],
        sender: str = BOT["login"],
    ) -> dict[str, Any]:
        """A run joins its App's suite for its commit (made now if GitHub had not);
        the App hears of it (`check_run` created, and completed). `app`: another App's
        run (another CI, fakehub/ci.py), which specbridge hears of as GitHub tells every
        App with checks permission."""
        suite = self._suite(repo, data["head_sha"], app=app)
        run = {
            "id": new_id(),
            "name": data["name"],
            "head_sha": data["head_sha"],
            "status": "queued",
            "conclusion": None,
            "started_at": now(),
            "completed_at": None,
            "output": {},
            "annotations": [],
            "check_suite_id": suite["id"],
        }
        self._apply_check_run(run, data)
        repo.check_runs.append(run)
        self.send("check_run", repo, sender, **check_run_payload("created", repo, run, suite))
        self._check_run_changed(repo, run, suite, was_completed=False, sender=sender)
        return run

    def update_check_run(
        self, repo: Repo, run: dict[str, Any], data: dict[str, Any], sender: str = BOT["login"]
    ) -> dict[str, Any]:
        was_completed = run["status"] == "completed"
        self._apply_check_run(run, data)
        suite = repo.suite_of(run)
        self._check_run_changed(repo, run, suite, was_completed, sender=sender)
        return run

    def rerequest_check_run(self, repo: Repo, run: dict[str, Any], person: str) -> None:
        """A person presses Re-run on one check: GitHub asks its App (`check_run` rerequested)."""
        if run["status"] != "completed":
            raise Refused("This check run is not rerequestable")
        suite = repo.suite_of(run)
        self.send("check_run", repo, person, **check_run_payload("rerequested", repo, run, suite))

    def rerequest_check_suite(self, repo: Repo, suite: dict[str, Any], person: str) -> None:
        """A person presses Re-run all checks: the suite is queued again, its App asked."""
        suite.update(status="queued", conclusion=None, updated_at=now())
        self.send(
            "check_suite",
            repo,
            person,
            action="rerequested",
            check_suite=check_suite_json(repo, suite),
        )

    def _suite(
        self,
        repo: Repo,
        sha: str,
        branch: str | None = None,
        before: str | None = None,
        app: str = CHECKS_APP["slug"],
    ) -> dict[str, Any]:
        suite = repo.check_suites.get((app, sha))
        if suite is None:
            suite = repo.check_suites[(app, sha)] = {
                "id": new_id(),
                "app": app,
                "head_sha": sha,
                "head_branch": branch,
                "before": before,
                "status": "queued",
                "conclusion": None,
                "created_at": now(),
                "updated_at": now(),
            }
        return suite

    @staticmethod
    def _apply_check_run(run: dict[str, Any], data: dict[str, Any]) -> None:
        """As GitHub does: a conclusion completes the run; annotations are appended."""
        output = data.get("output") or {}
        annotations = output.get("annotations") or []
        if len(annotations) > ANNOTATIONS_PER_REQUEST:
            raise Refused(f"Only {ANNOTATIONS_PER_REQUEST} annotations are allowed per request")
        for key in ("name", "status", "conclusion", "started_at", "completed_at", "external_id"):
            if key in data:
                run[key] = data[key]
        if data.get("conclusion"):
            run["status"] = "completed"
            run["completed_at"] = run.get("completed_at") or now()
        run["output"].update({k: v for k, v in output.items() if k != "annotations"})
        run["annotations"] += annotations

    def _check_run_changed(
        self,
        repo: Repo,
        run: dict[str, Any],
        suite: dict[str, Any],
        was_completed: bool,
        sender: str = BOT["login"],
    ) -> None:
        """A run that completes is announced; its suite completes with its last run, and
        concludes with the worst of its runs' latest (a run made again replaces the one of
        its name)."""
        latest: dict[str, dict[str, Any]] = {}
        for one in sorted(repo.runs_in(suite), key=lambda r: r["id"]):
            latest[one["name"]] = one
        runs = list(latest.values())
        if run["status"] != "completed":
            suite.update(status="in_progress", conclusion=None, updated_at=now())
            return
        if was_completed:
            return
        self.send("check_run", repo, sender, **check_run_payload("completed", repo, run, suite))
        if all(r["status"] == "completed" for r in runs):
            concluded = {r["conclusion"] for r in runs}
            conclusion = next(c for c in SUITE_CONCLUSIONS if c in concluded)
            suite.update(status="completed", conclusion=conclusion, updated_at=now())
            self.send(
                "check_suite",
                repo,
                sender,
                action="completed",
                check_suite=check_suite_json(repo, suite),
            )

    def merge_pull(self, repo: Repo, number: int, actor: str) -> dict[str, Any]:
        """A person merges: the base moves (`push`), `pull_request` closed with merged
        true; merged into the default branch, the issues its body names with a closing
        keyword close, as on GitHub."""
        from fakehub.pulls import closing_issues

        pull = repo.pulls[number]
        if pull["state"] != "open":
            raise Refused("Pull Request is not mergeable")
        if pull.get("draft"):
            raise Refused("Pull Request is still a draft")
        base = pull["base"]["ref"]
        before = repo.git.sha(base) or "0" * 40
        sha = repo.git.merge(pull["head"]["ref"], base, f"Merge pull request #{number}")
        pull.update(
            state="closed",
            merged=True,
            merge_commit_sha=sha,
            closed_at=now(),
            merged_at=now(),
            merged_by=actor,
        )
        self.pull_changed(repo, pull)
        self.pushed(repo, base, before, sha, actor)
        self.send_pull_request(repo, pull, "closed", actor)
        if base == repo.default_branch:
            for issue in closing_issues(repo, pull.get("body")):
                self.set_issue_state(issue, "closed", "completed", actor)
        return pull

    def _project(self, project_id: str) -> Project:
        project = self.state.project_by_node(project_id)
        if project is None:
            raise Refused(f"Could not resolve to a node with the global id of '{project_id}'")
        return project

    def _spend_content(self, token: str) -> None:
        if not self.budgets.create_one(token):
            raise TooQuickly(TOO_QUICKLY)

    # -- the Flask app -----------------------------------------------------------------

    def _build_app(self) -> Flask:
        from fakehub.actions import register_actions
        from fakehub.admin import register_admin
        from fakehub.agent_tasks import register_agent_tasks
        from fakehub.apps import register_apps
        from fakehub.assignees import register_assignees
        from fakehub.ci import register_ci
        from fakehub.git_http import register_git
        from fakehub.hook_deliveries import register_hook_deliveries
        from fakehub.oauth import register_oauth
        from fakehub.people import register_people
        from fakehub.protection import register_protection
        from fakehub.pulls import register_pulls
        from fakehub.refs import register_refs
        from fakehub.rest import register_rest
        from fakehub.reviewers import register_reviewers

        app = Flask("fakehub")
        app.before_request(self._check_request)
        app.after_request(self._finish)
        register_rest(app, self)
        register_hook_deliveries(app, self)
        register_pulls(app, self)
        register_assignees(app, self)
        register_ci(app, self)
        register_people(app, self)
        register_protection(app, self)
        register_refs(app, self)
        register_reviewers(app, self)
        register_git(app, self)
        app.add_url_rule("/graphql", view_func=self._graphql, methods=["POST"])
        register_admin(app, self)
        register_apps(app, self)
        register_oauth(app, self)
        register_actions(app, self)
        register_agent_tasks(app, self)
        return app

    def _check_request(self) -> Any:
        if request.path.startswith("/_admin/") or request.path.endswith(
            (".git/info/refs", ".git/git-upload-pack", ".git/git-receive-pack", WEB_FORM)
        ):
            return None
        body = request.get_json(silent=True) if request.data else None
        g.token = request_token()
        document = (body or {}).get("query", "") if request.path == "/graphql" else ""
        kind = graphql_api.kind(document) if request.path == "/graphql" else None
        g.record = {
            "method": request.method,
            "path": request.full_path.rstrip("?"),
            "status": None,
            "graphql": kind,
            "mutations": graphql_api.mutation_fields(document) if kind == "mutation" else [],
            "mismatch": None,
            "time": time.time(),
        }
        with self.state.lock:
            self.state.requests.append(g.record)
            fault = self._take_fault(request.method, request.path)
        if fault is not None:
            return fault
        try:
            self.budgets.charge_points(
                g.token or "anonymous", kind is not None, kind == "mutation", request.method
            )
        except RateLimited as limited:
            return rate_limited(limited.retry_after)
        if request.path == "/graphql" or request.path.startswith("/login/"):
            return None  # GraphQL is checked as it runs; /login/ is github.com's, not the API's
        mismatch = github_rest().check(request.method, request.path, request.args.to_dict(), body)
        if mismatch:
            g.record["mismatch"] = mismatch
            return error(
                422 if "no operation" not in mismatch else 404,
                "Validation Failed",
                errors=[{"message": mismatch, "code": "invalid"}],
            )
        return None

    def _finish(self, response: Response) -> Response:
        if "fault_after" in g and response.status_code < 400:
            # GitHub's front end gave up while the request was carried out behind it.
            response, _ = error(g.fault_after, "Server Error")
            response.status_code = g.fault_after
        if "record" in g:
            g.record["status"] = response.status_code
        response.headers["X-GitHub-Request-Id"] = f"FAKE:{new_id()}"
        response.headers["X-RateLimit-Limit"] = "5000"
        response.headers["X-RateLimit-Remaining"] = "4999"
        response.headers["X-RateLimit-Reset"] = str(int(time.time()) + 3600)
        response.headers["X-RateLimit-Used"] = "1"
        response.headers["X-RateLimit-Resource"] = "core"
        return response

    def _graphql(self) -> Any:
        data = request.get_json(silent=True) or {}
        document = data.get("query", "")
        if set(g.record["mutations"]) & graphql_api.CONTENT_MUTATIONS:
            try:
                self.budgets.check_content(g.token or "anonymous")
            except RateLimited as limited:
                return rate_limited(limited.retry_after)
        with self.state.lock:
            body, mismatch = graphql_api.execute(
                self, document, data.get("variables"), g.token or "anonymous"
            )
        if mismatch:
            g.record["mismatch"] = mismatch
        return jsonify(body)

    def _take_fault(self, method: str, path: str) -> tuple[Response, int] | None:
        now = time.time()
        for fault in self.state.faults:
            if (
                (fault["count"] > 0 or fault.get("until", 0) > now)
                and fault.get("method", method) == method
                and re.search(fault.get("path", ""), path)
            ):
                fault["seen"] = fault.get("seen", 0) + 1
                if fault["seen"] % fault.get("every", 1):
                    continue  # one matching request in `every` fails
                fault["count"] -= 1
                status = fault["status"]
                if fault.get("after"):
                    g.fault_after = status  # done first, then answered so (`_finish`)
                    return None
                if status in (403, 429):
                    return rate_limited(fault.get("retry_after", 1), status)
                return error(status, "Server Error")
        return None


def _depth(issue: Issue) -> int:
    """Levels from the top of its tree down to this issue (1 for a top issue)."""
    levels, current = 1, issue
    while current.parent is not None:
        current = current.repo.issues[current.parent]
        levels += 1
    return levels


def _is_ancestor(issue: Issue, of: Issue) -> bool:
    """Whether `issue` is `of` or above it in its tree."""
    current: Issue | None = of
    while current is not None:
        if current is issue:
            return True
        current = current.repo.issues[current.parent] if current.parent is not None else None
    return False


def _height(issue: Issue) -> int:
    """Levels of this issue and its sub-issues (1 for an issue without any)."""
    children = [issue.repo.issues[n] for n in issue.sub_issues]
    return 1 + max((_height(c) for c in children), default=0)
