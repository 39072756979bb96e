"""The double's REST routes: each one an operation of GitHub's REST description
(requests are checked against it before they get here)."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import quote

from flask import Flask, abort, g, jsonify, request

from fakehub import copilot
from fakehub.actors import actor_of
from fakehub.assignees import assign_agent
from fakehub.http import Refused, SubIssueRefused, TooQuickly, check_text, error, rate_limited
from fakehub.limits import RateLimited
from fakehub.protection import blob_sha
from fakehub.state import BOT, Issue, Repo, Token, new_id, node_id, now, user
from fakehub.webhooks import check_run_json, pull_request_json

TOKEN_LIFETIME = 3600
SUB_ISSUES_DOCS = "https://docs.github.com/rest/issues/sub-issues#add-sub-issue"
# GitHub lists at most this many files of a comparison.
MAX_COMPARED_FILES = 300


def register_rest(app: Flask, hub: Any) -> None:

    state = hub.state

    def not_found() -> NoReturn:
        response, status = error(404, "Not Found")
        response.status_code = status  # abort() sends the response with its own status
        abort(response)

    def repo_or_404(owner: str, name: str) -> Repo:
        repo = state.repo(owner, name)
        if repo is None or not state.may_read(g.get("token"), repo):
            not_found()
        return repo

    def issue_or_404(owner: str, name: str, number: int) -> Issue:
        issue = repo_or_404(owner, name).issues.get(number)
        if issue is None:
            not_found()
        return issue

    def creating(action: Callable[[], Any]) -> Any:
        """Run a change that creates content: 403 when the budget is spent, 422 when refused."""
        token = g.get("token") or "anonymous"
        try:
            hub.budgets.check_content(token)
        except RateLimited as limited:
            return rate_limited(limited.retry_after)
        return changing(action)

    def changing(action: Callable[[], Any]) -> Any:
        try:
            with state.lock:
                return action()
        except TooQuickly as refused:
            return error(403, str(refused))
        except Refused as refused:
            return error(422, "Validation Failed", errors=[{"message": str(refused)}])

    @app.post("/app/installations/<int:installation_id>/access_tokens")
    def access_token(installation_id: int) -> Any:
        data = request.get_json(silent=True) or {}
        owner = next((o for o, i in state.installations.items() if i == installation_id), None)
        names = set(data.get("repositories") or [])
        ids = set(data.get("repository_ids") or [])
        repositories = None
        if names or ids:
            repositories = {
                r.full_name
                for r in state.repos.values()
                if r.owner == owner and (r.name in names or r.id in ids)
            }
            if len(repositories) < len(names) + len(ids):
                return error(422, "There is at least one repository that does not exist")
        permissions = data.get("permissions") or {
            "issues": "write",
            "contents": "write",
            "pull_requests": "write",
            "metadata": "read",
        }
        token = f"ghs_fake{installation_id}_{new_id()}"
        expires = time.time() + TOKEN_LIFETIME
        state.tokens[token] = Token(installation_id, repositories, permissions, expires)
        answer: dict[str, Any] = {
            "token": token,
            "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)),
            "permissions": permissions,
            "repository_selection": "selected" if repositories is not None else "all",
        }
        if repositories is not None:
            answer["repositories"] = [state.repos[name].json() for name in sorted(repositories)]
        return jsonify(answer), 201

    @app.get("/app")
    def the_app() -> Any:
        """The authenticated App (as its JWT names it): the one App the double knows."""
        return jsonify(
            id=4242,
            slug="specbridge",
            node_id="A_specbridge",
            name="specbridge",
            description="",
            owner={"login": "acme", "id": 1, "type": "Organization"},
            external_url=hub.url,
            html_url=f"{hub.url}/apps/specbridge",
            created_at="2024-01-01T00:00:00Z",
            updated_at="2024-01-01T00:00:00Z",
            permissions={},
            events=[],
        )

    @app.get("/repos/<owner>/<name>/installation")
    def installation(owner: str, name: str) -> Any:
        repo = repo_or_404(owner, name)
        if not repo.installed:
            not_found()
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

    @app.get("/")
    def api_root() -> Any:
        """GitHub's API root: its links (setup asks it whether an address is the API)."""
        base = hub.url
        return jsonify(
            current_user_url=f"{base}/user",
            repository_url=f"{base}/repos/{{owner}}/{{repo}}",
            organization_url=f"{base}/orgs/{{org}}",
            rate_limit_url=f"{base}/rate_limit",
        )

    @app.get("/repos/<owner>/<name>")
    def get_repo(owner: str, name: str) -> Any:
        return jsonify(repo_or_404(owner, name).json())

    @app.get("/repos/<owner>/<name>/commits/<path:ref>")
    def get_commit(owner: str, name: str, ref: str) -> Any:
        sha = repo_or_404(owner, name).git.sha(ref)
        if sha is None:
            return error(422, f"No commit found for SHA: {ref}")
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
            return error(404, "Not Found")
        return jsonify(
            type="file",
            encoding="base64",
            size=len(data),
            name=path.rsplit("/", 1)[-1],
            path=path,
            sha=blob_sha(repo, ref, path) or "",
            content=base64.b64encode(data).decode(),
        )

    @app.post("/repos/<owner>/<name>/issues")
    def create_issue(owner: str, name: str) -> Any:
        repo = repo_or_404(owner, name)
        data = request.get_json()

        def create() -> Any:
            assignees, agent = copilot.take_from_rest(
                hub, repo, list(data.get("assignees") or []), data, g.get("token")
            )
            issue = hub.create_issue(
                repo,
                str(data["title"]),
                data.get("body"),
                g.get("token") or "anonymous",
                labels=[x if isinstance(x, str) else x["name"] for x in data.get("labels") or []],
                assignees=assignees,
            )
            if agent is not None:
                assign_agent(hub, issue, agent, actor_of(state, g.get("token")))
            return jsonify(issue.json()), 201

        return creating(create)

    @app.get("/repos/<owner>/<name>/issues")
    def list_issues(owner: str, name: str) -> Any:
        repo = repo_or_404(owner, name)
        wanted_state = request.args.get("state", "open")
        labels = [x for x in request.args.get("labels", "").split(",") if x]
        since = request.args.get("since")
        issues = [
            i
            for i in sorted(repo.issues.values(), key=lambda i: -i.number)
            if (wanted_state == "all" or i.state == wanted_state)
            and all(label in i.labels for label in labels)
            and (since is None or i.updated_at >= since)
        ]
        return _paged([i.json() for i in issues])

    @app.get("/repos/<owner>/<name>/issues/<int:number>")
    def get_issue(owner: str, name: str, number: int) -> Any:
        return jsonify(issue_or_404(owner, name, number).json())

    @app.patch("/repos/<owner>/<name>/issues/<int:number>")
    def update_issue(owner: str, name: str, number: int) -> Any:
        issue = issue_or_404(owner, name, number)
        data = dict(request.get_json())
        if "labels" in data:
            data["labels"] = [x if isinstance(x, str) else x["name"] for x in data["labels"]]

        def edit() -> Any:
            agent = None
            if data.get("assignees") is not None:
                kept = [copilot.rest_login(a) for a in data["assignees"]]
                had = copilot.COPILOT["login"] in issue.assignees
                new = [a for a in kept if a not in issue.assignees]
                _, agent = copilot.take_from_rest(
                    hub, issue.repo, new, data, g.get("token"), issue.number
                )
                data["assignees"] = [a for a in kept if a != copilot.COPILOT["login"]]
                if had and copilot.COPILOT["login"] in kept:
                    data["assignees"].append(copilot.COPILOT["login"])
            hub.edit_issue(issue, data)
            if agent is not None:
                assign_agent(hub, issue, agent, actor_of(state, g.get("token")))
            return jsonify(issue.json())

        return changing(edit)

    @app.route("/repos/<owner>/<name>/issues/<int:number>/comments", methods=["GET", "POST"])
    def issue_comments(owner: str, name: str, number: int) -> Any:
        issue = issue_or_404(owner, name, number)
        if request.method == "GET":  # oldest first; `since`: updated at or after it
            since = request.args.get("since")
            return _paged([c for c in issue.comments if since is None or c["updated_at"] >= since])
        body = request.get_json()["body"]
        token = g.get("token") or "anonymous"
        # The App's token comments as its bot; a person's token as that person.
        author = actor_of(state, token)
        association = _association(issue.repo, author)
        return creating(
            lambda: (jsonify(hub.add_comment(issue, author, body, association, token)), 201)
        )

    @app.post("/repos/<owner>/<name>/issues/comments/<int:comment_id>/reactions")
    def react(owner: str, name: str, comment_id: int) -> Any:
        repo = repo_or_404(owner, name)
        comment = next(
            (c for i in repo.issues.values() for c in i.comments if c["id"] == comment_id), None
        )
        if comment is None:
            return error(404, "Not Found")
        content = request.get_json()["content"]
        with state.lock:
            reactions = comment.setdefault("reaction_list", [])
            mine = {"user": BOT["login"], "content": content}
            # The same reaction again is answered 200 with the one there, not added twice.
            known = mine in reactions
            if not known:
                reactions.append(mine)
        reaction_id = new_id()
        return jsonify(
            id=reaction_id,
            node_id=node_id("REA", reaction_id),
            user=user(BOT["login"]),
            content=content,
            created_at=now(),
        ), (200 if known else 201)

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

        def comment() -> Any:
            check_text(None, data["body"])
            hub._spend_content(g.get("token") or "anonymous")
            created = {
                "id": new_id(),
                "commit_id": sha,
                "body": data["body"],
                "path": data.get("path"),
                "line": data.get("line"),
                "user": user(BOT["login"]),
                "created_at": now(),
            }
            repo.commit_comments.append(created)
            return jsonify(created), 201

        return creating(comment)

    @app.get("/repos/<owner>/<name>/issues/<int:number>/sub_issues")
    def list_sub_issues(owner: str, name: str, number: int) -> Any:
        issue = issue_or_404(owner, name, number)
        return jsonify([issue.repo.issues[n].json() for n in issue.sub_issues])

    @app.post("/repos/<owner>/<name>/issues/<int:number>/sub_issues")
    def add_sub_issue(owner: str, name: str, number: int) -> Any:
        parent = issue_or_404(owner, name, number)
        data = request.get_json()
        child = next((i for i in parent.repo.issues.values() if i.id == data["sub_issue_id"]), None)
        if child is None:
            return error(422, "Validation Failed")

        def link() -> Any:
            try:
                hub.add_sub_issue(parent, child, bool(data.get("replace_parent")))
            except SubIssueRefused as refused:
                # github.com's answer: the reasons in `message`, no `errors`.
                return error(
                    422,
                    f"An error occurred while adding the sub-issue to the parent issue. {refused}",
                    documentation_url=SUB_ISSUES_DOCS,
                )
            return jsonify(parent.json()), 201

        return changing(link)

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
            return error(404, "Not Found")

        def block() -> Any:
            hub.add_blocked_by(issue, blocking)
            return jsonify(blocking.json()), 201

        return changing(block)

    @app.delete("/repos/<owner>/<name>/issues/<int:number>/dependencies/blocked_by/<int:issue_id>")
    def unblock(owner: str, name: str, number: int, issue_id: int) -> Any:
        issue = issue_or_404(owner, name, number)
        blocking = next((i for i in issue.repo.issues.values() if i.id == issue_id), None)
        if blocking is None or blocking.number not in issue.blocked_by:
            return error(404, "Not Found")
        with state.lock:
            hub.remove_blocked_by(issue, blocking)
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
            return jsonify([pull_request_json(repo, p) for p in found])
        data = request.get_json()
        if repo.git.sha(data["head"]) is None:
            return error(422, "Validation Failed", errors=[{"field": "head", "code": "invalid"}])
        token = g.get("token") or "anonymous"
        return creating(
            lambda: (
                jsonify(pull_request_json(repo, hub.open_pull(repo, data, BOT["login"], token))),
                201,
            )
        )

    # `path`: a branch's name may hold `/` (specbridge/spec/task), raw or as %2F.
    @app.get("/repos/<owner>/<name>/compare/<path:basehead>")
    def compare(owner: str, name: str, basehead: str) -> Any:
        repo = repo_or_404(owner, name)
        base, _, head = basehead.partition("...")
        head_sha, base_sha = repo.git.sha(head), repo.git.sha(base)
        if head_sha is None or base_sha is None:
            return error(404, "Not Found")
        merge_base = repo.git.merge_base(base_sha, head_sha) or base_sha
        added, removed, modified = repo.git.changes(merge_base, head_sha)
        statuses = [("added", added), ("removed", removed), ("modified", modified)]
        lines = repo.git.line_counts(merge_base, head_sha)
        files = [
            diff_entry(repo, path, status, head_sha, lines.get(path, (0, 0)))
            for status, paths in statuses
            for path in paths
        ]
        ahead_by = repo.git.commits_between(base_sha, head_sha)
        behind_by = repo.git.commits_between(head_sha, base_sha)
        return jsonify(
            status=compare_status(ahead_by, behind_by),
            ahead_by=ahead_by,
            behind_by=behind_by,
            merge_base_commit={"sha": merge_base},
            files=sorted(files, key=lambda f: f["filename"])[:MAX_COMPARED_FILES],
        )

    @app.post("/repos/<owner>/<name>/check-runs")
    def create_check_run(owner: str, name: str) -> Any:
        repo = repo_or_404(owner, name)
        data = request.get_json()
        if repo.git.sha(data["head_sha"]) is None:
            return error(422, "No commit found for SHA: " + data["head_sha"])
        return changing(
            lambda: (jsonify(check_run_json(repo, hub.create_check_run(repo, data))), 201)
        )

    @app.get("/repos/<owner>/<name>/check-runs/<int:run_id>")
    def get_check_run(owner: str, name: str, run_id: int) -> Any:
        repo = repo_or_404(owner, name)
        run = repo.check_run(run_id)
        if run is None:
            return error(404, "Not Found")
        return jsonify(check_run_json(repo, run))

    @app.patch("/repos/<owner>/<name>/check-runs/<int:run_id>")
    def update_check_run(owner: str, name: str, run_id: int) -> Any:
        repo = repo_or_404(owner, name)
        run = repo.check_run(run_id)
        if run is None:
            return error(404, "Not Found")
        data = request.get_json()
        return changing(
            lambda: jsonify(check_run_json(repo, hub.update_check_run(repo, run, data)))
        )

    @app.get("/repos/<owner>/<name>/commits/<ref>/check-runs")
    def check_runs_for_ref(owner: str, name: str, ref: str) -> Any:
        repo = repo_or_404(owner, name)
        sha = repo.git.sha(ref)
        wanted = request.args.get("check_name")
        runs = [
            r
            for r in repo.check_runs
            if r["head_sha"] == sha and (wanted is None or r["name"] == wanted)
        ]
        if request.args.get("filter", "latest") == "latest":
            latest: dict[str, dict[str, Any]] = {}
            for run in runs:
                latest[run["name"]] = run
            runs = list(latest.values())
        runs.sort(key=lambda r: -r["id"])
        return jsonify(total_count=len(runs), check_runs=[check_run_json(repo, r) for r in runs])


def diff_entry(
    repo: Repo, path: str, status: str, sha: str, lines: tuple[int, int]
) -> dict[str, Any]:
    """One file of a comparison, with the fields GitHub's diff entry always has."""
    where = quote(path)
    return {
        "filename": path,
        "status": status,
        "sha": sha,
        "additions": lines[0],
        "deletions": lines[1],
        "changes": lines[0] + lines[1],
        "blob_url": f"{repo.html_url}/blob/{sha}/{where}",
        "raw_url": f"{repo.html_url}/raw/{sha}/{where}",
        "contents_url": f"{repo.api_url}/contents/{where}?ref={sha}",
    }


def compare_status(ahead_by: int, behind_by: int) -> str:
    """GitHub's word for how head stands to base in the commit graph."""
    if ahead_by and behind_by:
        return "diverged"
    return "ahead" if ahead_by else "behind" if behind_by else "identical"


def _paged(items: list[dict[str, Any]]) -> Any:
    """One page of a listing as GitHub gives it: `per_page` (30 by default, 100 at most)
    and `page`, the next page named in a `Link` header."""
    per_page = min(int(request.args.get("per_page", 30)), 100)
    page = int(request.args.get("page", 1))
    response = jsonify(items[(page - 1) * per_page : page * per_page])
    if page * per_page < len(items):
        base = f"{request.host_url.rstrip('/')}{request.path}"
        query = "&".join(f"{k}={v}" for k, v in request.args.items() if k != "page")
        response.headers["Link"] = f'<{base}?{query}&page={page + 1}>; rel="next"'
    return response


def _association(repo: Any, login: str) -> str:
    """How GitHub shows a commenter's tie to the repository (`author_association`)."""
    if login == repo.owner:
        return "OWNER"
    return "COLLABORATOR" if login in repo.collaborators else "NONE"
