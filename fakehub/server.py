"""The GitHub double's HTTP server: REST, GraphQL, webhooks out, and /_admin/."""

from __future__ import annotations

import base64
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
from fakehub.git import GitRepository
from fakehub.openapi import github_rest
from fakehub.state import (
    BOT,
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
    WebhookSender,
    envelope,
    issue_payload,
    project_item_payload,
    push_payload,
)

DOCS = "https://docs.github.com/rest"
RATE_LIMITED = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)


def _error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify(message=message, documentation_url=DOCS, status=str(status), **extra), status


class FakeHub:
    def __init__(
        self,
        webhook_url: str | None = None,
        webhook_secret: str = "",
        state_dir: Path | None = None,
    ) -> None:
        root = Path(state_dir or tempfile.mkdtemp(prefix="fakehub-"))
        root.mkdir(parents=True, exist_ok=True)
        self.state = State(root)
        self.webhooks = WebhookSender(webhook_url, webhook_secret)
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
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    # -- changes made through the API or by people (each sends its webhooks) ----------

    def send(self, event: str, repo: Repo, sender: str, **payload: Any) -> str:
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
            collaborators=data.get("collaborators") or {},
        )
        self.state.repos[repo.full_name] = repo
        if data.get("project"):
            number = data["project"]["number"]
            self.state.projects.setdefault((owner, number), Project(owner, owner_type, number))
        return repo

    def commit(
        self, repo: Repo, branch: str, files: dict[str, str | None], message: str, author: str
    ) -> dict[str, str]:
        before, after = repo.git.commit(branch, files, message, author)
        delivery = self.send(
            "push", repo, author, **push_payload(repo, branch, before, after, message, author)
        )
        return {"sha": after, "delivery_id": delivery}

    def set_issue_state(self, issue: Issue, state: str, reason: str | None, actor: str) -> None:
        if issue.state == state:
            return
        issue.state, issue.updated_at = state, now()
        if state == "closed":
            issue.state_reason, issue.closed_at = reason or "completed", now()
            self.send("issues", issue.repo, actor, **issue_payload("closed", issue))
        else:
            issue.state_reason, issue.closed_at = "reopened", None
            self.send("issues", issue.repo, actor, **issue_payload("reopened", issue))

    def add_project_item(self, project_id: str, content_id: str) -> dict[str, Any]:
        project = self._project(project_id)
        issue = self.state.issue_by_node(content_id)
        if issue is None:
            raise graphql_api.GraphQLError(
                f"Could not resolve to a node with the global id of '{content_id}'"
            )
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
        return {"item": graphql_api.item_node(self.state, project, item)}

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
            raise graphql_api.GraphQLError(
                "The item, field or option does not exist on this project"
            )
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
        return {"projectV2Item": graphql_api.item_node(self.state, project, item)}

    def add_sub_issue(self, parent_id: str, child_id: str) -> dict[str, Any]:
        parent, child = self.state.issue_by_node(parent_id), self.state.issue_by_node(child_id)
        if parent is None or child is None:
            raise graphql_api.GraphQLError("Could not resolve the issue or the sub-issue")
        if child.parent is not None:
            raise graphql_api.GraphQLError("Sub issue may only have one parent")
        parent.sub_issues.append(child.number)
        child.parent = parent.number
        return {"issue": graphql_api.issue_node(parent), "subIssue": graphql_api.issue_node(child)}

    def _project(self, project_id: str) -> Project:
        project = self.state.project_by_node(project_id)
        if project is None:
            raise graphql_api.GraphQLError(
                f"Could not resolve to a node with the global id of '{project_id}'"
            )
        return project

    # -- the Flask app -----------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask("fakehub")
        hub = self
        state = self.state

        @app.before_request
        def check_request() -> Any:
            if request.path.startswith("/_admin/"):
                return None
            body = request.get_json(silent=True) if request.data else None
            g.record = {
                "method": request.method,
                "path": request.full_path.rstrip("?"),
                "status": None,
                "graphql": None,
                "mismatch": None,
                "time": time.time(),
            }
            with state.lock:
                state.requests.append(g.record)
                fault = self._take_fault(request.method, request.path)
            if request.path == "/graphql":
                g.record["graphql"] = graphql_api.kind((body or {}).get("query", ""))
                return fault
            if fault is not None:
                return fault
            mismatch = github_rest().check(
                request.method, request.path, request.args.to_dict(), body
            )
            if mismatch:
                g.record["mismatch"] = mismatch
                return _error(
                    422 if "no operation" not in mismatch else 404,
                    "Validation Failed",
                    errors=[{"message": mismatch, "code": "invalid"}],
                )
            return None

        @app.after_request
        def finish(response: Response) -> Response:
            if "record" in g:
                g.record["status"] = response.status_code
            response.headers["X-GitHub-Request-Id"] = f"FAKE:{new_id()}"
            response.headers["X-RateLimit-Limit"] = "5000"
            response.headers["X-RateLimit-Remaining"] = "4999"
            response.headers["X-RateLimit-Reset"] = str(int(time.time()) + 3600)
            response.headers["X-RateLimit-Used"] = "1"
            response.headers["X-RateLimit-Resource"] = "core"
            return response

        def repo_or_404(owner: str, name: str) -> Repo:
            repo = state.repo(owner, name)
            if repo is None:
                from flask import abort

                abort(_error(404, "Not Found")[0])
            return repo

        @app.post("/app/installations/<int:installation_id>/access_tokens")
        def access_token(installation_id: int) -> Any:
            expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
            return jsonify(
                token=f"ghs_fake{installation_id}_{new_id()}",
                expires_at=expires,
                permissions={"issues": "write", "contents": "write"},
                repository_selection="all",
            ), 201

        @app.get("/repos/<owner>/<name>/installation")
        def installation(owner: str, name: str) -> Any:
            repo = repo_or_404(owner, name)
            return jsonify(
                id=repo.installation_id,
                app_id=4242,
                app_slug="specbridge",
                account=repo.owner_json(),
                target_type=repo.owner_type,
                permissions={},
                events=[],
                repository_selection="all",
            )

        @app.get("/repos/<owner>/<name>")
        def get_repo(owner: str, name: str) -> Any:
            return jsonify(repo_or_404(owner, name).json())

        @app.get("/repos/<owner>/<name>/commits/<path:ref>")
        def get_commit(owner: str, name: str, ref: str) -> Any:
            sha = repo_or_404(owner, name).git.sha(ref)
            if sha is None:
                return _error(422, f"No commit found for SHA: {ref}")
            return jsonify(sha=sha, node_id=node_id("C", len(sha)), commit={"message": ""})

        @app.get("/repos/<owner>/<name>/contents/<path:path>")
        def contents(owner: str, name: str, path: str) -> Any:
            repo = repo_or_404(owner, name)
            ref = request.args.get("ref", repo.default_branch)
            entries = repo.git.list_dir(ref, path)
            if entries is not None:
                return jsonify(
                    [
                        {
                            "type": kind,
                            "name": p.rsplit("/", 1)[-1],
                            "path": p,
                            "sha": sha,
                            "size": 0,
                        }
                        for kind, p, sha in entries
                    ]
                )
            data = repo.git.read(ref, path)
            if data is None:
                return _error(404, "Not Found")
            return jsonify(
                type="file",
                encoding="base64",
                size=len(data),
                name=path.rsplit("/", 1)[-1],
                path=path,
                sha=f"{abs(hash(data)):040x}"[:40],
                content=base64.b64encode(data).decode(),
            )

        @app.post("/repos/<owner>/<name>/issues")
        def create_issue(owner: str, name: str) -> Any:
            repo = repo_or_404(owner, name)
            data = request.get_json()
            with state.lock:
                issue = Issue(
                    repo,
                    repo.next_number(),
                    str(data["title"]),
                    data.get("body"),
                    BOT["login"],
                    labels=list(data.get("labels") or []),
                    assignees=list(data.get("assignees") or []),
                )
                repo.issues[issue.number] = issue
                hub.send("issues", repo, BOT["login"], **issue_payload("opened", issue))
            return jsonify(issue.json()), 201

        @app.get("/repos/<owner>/<name>/issues")
        def list_issues(owner: str, name: str) -> Any:
            repo = repo_or_404(owner, name)
            wanted_state = request.args.get("state", "open")
            labels = [x for x in request.args.get("labels", "").split(",") if x]
            issues = [
                i
                for i in sorted(repo.issues.values(), key=lambda i: -i.number)
                if (wanted_state == "all" or i.state == wanted_state)
                and all(label in i.labels for label in labels)
            ]
            per_page = min(int(request.args.get("per_page", 30)), 100)
            page = int(request.args.get("page", 1))
            chunk = issues[(page - 1) * per_page : page * per_page]
            response = jsonify([i.json() for i in chunk])
            if page * per_page < len(issues):
                base = f"{request.host_url.rstrip('/')}{request.path}"
                query = "&".join(f"{k}={v}" for k, v in request.args.items() if k != "page")
                response.headers["Link"] = f'<{base}?{query}&page={page + 1}>; rel="next"'
            return response

        def issue_or_404(owner: str, name: str, number: int) -> Issue:
            issue = repo_or_404(owner, name).issues.get(number)
            if issue is None:
                from flask import abort

                abort(_error(404, "Not Found")[0])
            return issue

        @app.get("/repos/<owner>/<name>/issues/<int:number>")
        def get_issue(owner: str, name: str, number: int) -> Any:
            return jsonify(issue_or_404(owner, name, number).json())

        @app.patch("/repos/<owner>/<name>/issues/<int:number>")
        def update_issue(owner: str, name: str, number: int) -> Any:
            issue = issue_or_404(owner, name, number)
            data = request.get_json()
            with state.lock:
                changes = {
                    k: {"from": getattr(issue, k)}
                    for k in ("title", "body")
                    if k in data and data[k] != getattr(issue, k)
                }
                for key in ("title", "body"):
                    if key in data:
                        setattr(issue, key, data[key])
                if "labels" in data:
                    issue.labels = [x if isinstance(x, str) else x["name"] for x in data["labels"]]
                if "assignees" in data:
                    issue.assignees = list(data["assignees"])
                issue.updated_at = now()
                if changes:
                    hub.send(
                        "issues",
                        issue.repo,
                        BOT["login"],
                        **issue_payload("edited", issue, changes=changes),
                    )
                if data.get("state") in ("open", "closed"):
                    hub.set_issue_state(
                        issue, data["state"], data.get("state_reason"), BOT["login"]
                    )
            return jsonify(issue.json())

        @app.route("/repos/<owner>/<name>/issues/<int:number>/comments", methods=["GET", "POST"])
        def issue_comments(owner: str, name: str, number: int) -> Any:
            issue = issue_or_404(owner, name, number)
            if request.method == "GET":
                return jsonify(issue.comments)
            with state.lock:
                comment = hub.add_comment(issue, BOT["login"], request.get_json()["body"], "NONE")
            return jsonify(comment), 201

        @app.post("/repos/<owner>/<name>/issues/comments/<int:comment_id>/reactions")
        def react(owner: str, name: str, comment_id: int) -> Any:
            repo = repo_or_404(owner, name)
            comment = next(
                (c for i in repo.issues.values() for c in i.comments if c["id"] == comment_id), None
            )
            if comment is None:
                return _error(404, "Not Found")
            content = request.get_json()["content"]
            with state.lock:
                comment.setdefault("reaction_list", []).append(
                    {"user": BOT["login"], "content": content}
                )
            reaction_id = new_id()
            return jsonify(
                id=reaction_id,
                node_id=node_id("REA", reaction_id),
                user=user(BOT["login"]),
                content=content,
                created_at=now(),
            ), 201

        @app.get("/repos/<owner>/<name>/collaborators/<login>/permission")
        def permission(owner: str, name: str, login: str) -> Any:
            repo = repo_or_404(owner, name)
            role = repo.collaborators.get(login, "none" if login != owner else "admin")
            legacy = {"maintain": "write", "triage": "read"}.get(role, role)
            return jsonify(permission=legacy, role_name=role, user=user(login))

        @app.post("/repos/<owner>/<name>/commits/<sha>/comments")
        def commit_comment(owner: str, name: str, sha: str) -> Any:
            repo = repo_or_404(owner, name)
            data = request.get_json()
            comment = {
                "id": new_id(),
                "commit_id": sha,
                "body": data["body"],
                "path": data.get("path"),
                "line": data.get("line"),
                "user": user(BOT["login"]),
                "created_at": now(),
            }
            repo.commit_comments.append(comment)
            return jsonify(comment), 201

        @app.get("/repos/<owner>/<name>/issues/<int:number>/sub_issues")
        def list_sub_issues(owner: str, name: str, number: int) -> Any:
            issue = issue_or_404(owner, name, number)
            return jsonify([issue.repo.issues[n].json() for n in issue.sub_issues])

        @app.post("/repos/<owner>/<name>/issues/<int:number>/sub_issues")
        def add_sub_issue(owner: str, name: str, number: int) -> Any:
            parent = issue_or_404(owner, name, number)
            child_id = request.get_json()["sub_issue_id"]
            child = next((i for i in parent.repo.issues.values() if i.id == child_id), None)
            if child is None:
                return _error(422, "Validation Failed")
            try:
                hub.add_sub_issue(parent.node_id, child.node_id)
            except graphql_api.GraphQLError as error:
                return _error(422, str(error))
            return jsonify(parent.json()), 201

        @app.route(
            "/repos/<owner>/<name>/issues/<int:number>/dependencies/blocked_by",
            methods=["GET", "POST"],
        )
        def blocked_by(owner: str, name: str, number: int) -> Any:
            issue = issue_or_404(owner, name, number)
            if request.method == "GET":
                return jsonify([issue.repo.issues[n].json() for n in issue.blocked_by])
            blocking_id = request.get_json()["issue_id"]
            blocking = next((i for i in issue.repo.issues.values() if i.id == blocking_id), None)
            if blocking is None:
                return _error(404, "Not Found")
            if blocking.number in issue.blocked_by:
                return _error(
                    422, "Validation Failed", errors=[{"message": "already blocked by it"}]
                )
            issue.blocked_by.append(blocking.number)
            return jsonify(blocking.json()), 201

        @app.delete(
            "/repos/<owner>/<name>/issues/<int:number>/dependencies/blocked_by/<int:issue_id>"
        )
        def unblock(owner: str, name: str, number: int, issue_id: int) -> Any:
            issue = issue_or_404(owner, name, number)
            blocking = next((i for i in issue.repo.issues.values() if i.id == issue_id), None)
            if blocking is None or blocking.number not in issue.blocked_by:
                return _error(404, "Not Found")
            issue.blocked_by.remove(blocking.number)
            return jsonify(blocking.json())

        @app.route("/repos/<owner>/<name>/pulls", methods=["GET", "POST"])
        def pulls(owner: str, name: str) -> Any:
            repo = repo_or_404(owner, name)
            if request.method == "GET":
                head = request.args.get("head", "")
                found = [
                    p
                    for p in repo.pulls.values()
                    if (not head or f"{owner}:{p['head']['ref']}" == head)
                    and request.args.get("state", "open") in (p["state"], "all")
                ]
                return jsonify(found)
            data = request.get_json()
            if repo.git.sha(data["head"]) is None:
                return _error(
                    422, "Validation Failed", errors=[{"field": "head", "code": "invalid"}]
                )
            with state.lock:
                pull = hub.open_pull(repo, data, BOT["login"])
            return jsonify(pull), 201

        @app.post("/graphql")
        def graphql() -> Any:
            data = request.get_json(silent=True) or {}
            with state.lock:
                body, mismatch = graphql_api.execute(
                    hub, data.get("query", ""), data.get("variables")
                )
            if mismatch:
                g.record["mismatch"] = mismatch
            return jsonify(body)

        from fakehub.admin import register_admin

        register_admin(app, hub)
        return app

    def add_comment(self, issue: Issue, author: str, body: str, association: str) -> dict[str, Any]:
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

    def open_pull(self, repo: Repo, data: dict[str, Any], author: str) -> dict[str, Any]:
        number = repo.next_number()
        pull = {
            "id": new_id(),
            "number": number,
            "state": "open",
            "title": data["title"],
            "body": data.get("body"),
            "merged": False,
            "user": user(BOT["login"]),
            "head": {"ref": data["head"], "sha": repo.git.sha(data["head"])},
            "base": {"ref": data["base"], "sha": repo.git.sha(data["base"])},
            "html_url": f"{repo.html_url}/pull/{number}",
            "created_at": now(),
        }
        repo.pulls[number] = pull
        return pull

    def merge_pull(self, repo: Repo, number: int, actor: str) -> dict[str, Any]:
        pull = repo.pulls[number]
        sha = repo.git.merge(
            pull["head"]["ref"], pull["base"]["ref"], f"Merge pull request #{number}"
        )
        pull.update(state="closed", merged=True, merge_commit_sha=sha)
        for closed in re.findall(
            r"(?i)\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s+#(\d+)", pull.get("body") or ""
        ):
            issue = repo.issues.get(int(closed))
            if issue is not None:
                self.set_issue_state(issue, "closed", "completed", actor)
        return pull

    def _take_fault(self, method: str, path: str) -> tuple[Response, int] | None:
        for fault in self.state.faults:
            if (
                fault["count"] > 0
                and fault.get("method", method) == method
                and re.search(fault.get("path", ""), path)
            ):
                fault["count"] -= 1
                status = fault["status"]
                response, _ = _error(
                    status,
                    RATE_LIMITED if status in (403, 429) else "Server Error",
                )
                if status in (403, 429):
                    response.headers["Retry-After"] = str(fault.get("retry_after", 1))
                return response, status
        return None
