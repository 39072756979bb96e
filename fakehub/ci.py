"""Another CI on the double: the check suites and runs of other Apps (GitHub Actions,
or any App's checks) and commit statuses, reported to specbridge as GitHub reports
them to every App with checks and statuses read.

A test stands for the CI with two admin routes:

- `POST /_admin/repos/{o}/{r}/check-runs` `{"head_sha","name","status","conclusion",
  "output":{"title","summary","text"},"annotations":[{"path","start_line","message"}],
  "app","user"}`: the App's suite for the commit is made the first time (GitHub sends its
  `check_suite` requested to that App only, so specbridge hears nothing of it); a run
  without a conclusion is created (`check_run` created, queued or in progress); a
  conclusion completes the open run of that name in the suite, or creates one already
  completed (`check_run` created, then completed); the suite completes with its last
  run (`check_suite` completed, with the worst conclusion of its runs).
- `POST /_admin/repos/{o}/{r}/statuses/{sha}` `{"context","state","description",
  "target_url","user"}`: a commit status, as `POST /repos/{o}/{r}/statuses/{sha}`
  makes one (`status` webhook).

REST: `GET /repos/{o}/{r}/check-runs/{id}/annotations`, `POST /repos/{o}/{r}/statuses/{sha}`,
`GET /repos/{o}/{r}/commits/{ref}/status` (the combined status: the newest of each
context), `GET /repos/{o}/{r}/commits/{ref}/statuses`.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g, jsonify, request

from fakehub.actors import actor_of
from fakehub.http import Refused, error
from fakehub.state import Repo, new_id, node_id, now, user

# GitHub keeps at most this many statuses of one context on a commit.
STATUSES_PER_CONTEXT = 1000
STATUS_STATES = ("error", "failure", "pending", "success")
# What `annotations` in the admin route may say, as the Checks API takes them.
ANNOTATION_LEVELS = ("notice", "warning", "failure")


def annotation(data: dict[str, Any]) -> dict[str, Any]:
    """An annotation as the Checks API keeps it, from a test's short form."""

    level = data.get("annotation_level", "failure")
    if (
        not data.get("path")
        or not isinstance(data.get("start_line"), int)
        or level not in (ANNOTATION_LEVELS)
    ):
        raise Refused("an annotation needs a path, a start_line and a known annotation_level")
    return {
        "path": data["path"],
        "start_line": data["start_line"],
        "end_line": data.get("end_line", data["start_line"]),
        "start_column": data.get("start_column"),
        "end_column": data.get("end_column"),
        "annotation_level": level,
        "message": data.get("message") or "",
        "title": data.get("title"),
        "raw_details": data.get("raw_details"),
    }


def report_check_run(hub: Any, repo: Repo, data: dict[str, Any]) -> dict[str, Any]:
    """Another App's CI reports a check run on a commit (see the module's text)."""

    sha = repo.git.sha(data.get("head_sha") or "")
    if sha is None:
        raise Refused(f"No commit found for SHA: {data.get('head_sha')}")
    app = data.get("app") or "github-actions"
    sender = data.get("user") or f"{app}[bot]"
    output = dict(data.get("output") or {})
    output["annotations"] = [annotation(a) for a in data.get("annotations") or []]
    change = {
        key: data[key]
        for key in ("name", "status", "conclusion", "details_url", "external_id")
        if key in data
    }
    change["output"] = output
    suite = repo.check_suites.get((app, sha))
    if suite is None:
        branch = next((b for b, head in repo.git.refs().items() if head == sha), None)
        hub._suite(repo, sha, branch, app=app)
    else:
        running = [
            r
            for r in repo.runs_in(suite)
            if r["name"] == data["name"] and r["status"] != "completed"
        ]
        if running:
            return hub.update_check_run(repo, running[-1], change, sender=sender)
    return hub.create_check_run(repo, {**change, "head_sha": sha}, app=app, sender=sender)


def create_status(hub: Any, repo: Repo, sha: str, data: dict[str, Any], creator: str) -> Any:
    """A commit status: kept with the commit's others, and the `status` webhook."""
    from fakehub.pulls import branch_json

    state = data.get("state")
    if state not in STATUS_STATES:
        raise Refused(f"state is not included in the list ({', '.join(STATUS_STATES)})")
    context = data.get("context") or "default"
    same = [s for s in repo.statuses if s["sha"] == sha and s["context"] == context.lower()]
    if len(same) >= STATUSES_PER_CONTEXT:
        raise Refused("This SHA and context has reached the maximum number of statuses.")
    status_id = new_id()
    status = {
        "id": status_id,
        "sha": sha,
        "context": context.lower(),
        "shown_context": context,
        "state": state,
        "description": data.get("description"),
        "target_url": data.get("target_url"),
        "creator": creator,
        "created_at": now(),
        "updated_at": now(),
    }
    repo.statuses.append(status)
    heads = [b for b, head in repo.git.refs().items() if head == sha]
    commit = branch_json(repo, heads[0] if heads else repo.default_branch, sha)["commit"]
    commit["commit"]["verification"] = {
        "verified": False,
        "reason": "unsigned",
        "signature": None,
        "payload": None,
        "verified_at": None,
    }
    hub.send(
        "status",
        repo,
        creator,
        id=status_id,
        sha=sha,
        name=repo.full_name,
        target_url=status["target_url"],
        avatar_url=user(creator)["avatar_url"],
        context=context,
        description=status["description"],
        state=state,
        commit=commit,
        branches=[
            {
                "name": branch,
                "commit": {"sha": sha, "url": f"{repo.api_url}/commits/{sha}"},
                "protected": branch in repo.protected_branches,
            }
            for branch in heads[:10]
        ],
        created_at=status["created_at"],
        updated_at=status["updated_at"],
    )
    return status


def status_json(repo: Repo, status: dict[str, Any]) -> dict[str, Any]:
    """A status as `POST .../statuses/{sha}` and the lists answer it."""
    return {
        "url": f"{repo.api_url}/statuses/{status['sha']}",
        "avatar_url": user(status["creator"])["avatar_url"],
        "id": status["id"],
        "node_id": node_id("SC", status["id"]),
        "state": status["state"],
        "description": status["description"],
        "target_url": status["target_url"],
        "context": status["shown_context"],
        "created_at": status["created_at"],
        "updated_at": status["updated_at"],
        "creator": user(status["creator"]),
    }


def combined_status(repo: Repo, sha: str) -> dict[str, Any]:
    """GitHub's combined status of a commit: the newest status of each context; failure
    if any is error or failure, pending if any is pending (or there is none), else success."""
    newest: dict[str, dict[str, Any]] = {}
    for status in repo.statuses:
        if status["sha"] == sha:
            newest[status["context"]] = status
    states = {s["state"] for s in newest.values()}
    if states & {"error", "failure"}:
        state = "failure"
    elif "pending" in states or not states:
        state = "pending"
    else:
        state = "success"
    shown = [
        {k: v for k, v in status_json(repo, s).items() if k != "creator"}
        for s in sorted(newest.values(), key=lambda s: -s["id"])
    ]
    return {
        "state": state,
        "statuses": shown,
        "sha": sha,
        "total_count": len(shown),
        "repository": _minimal_repository(repo),
        "commit_url": f"{repo.api_url}/commits/{sha}",
        "url": f"{repo.api_url}/commits/{sha}/status",
    }


def _minimal_repository(repo: Repo) -> dict[str, Any]:
    full = repo.json()
    keep = ("id", "node_id", "name", "full_name", "owner", "private", "html_url")
    keep += ("description", "fork", "url")
    return {k: v for k, v in full.items() if k in keep or k.endswith("_url")}


def annotation_json(repo: Repo, run: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    return {
        "path": data["path"],
        "blob_href": f"{repo.html_url}/blob/{run['head_sha']}/{data['path']}",
        "start_line": data["start_line"],
        "end_line": data.get("end_line", data["start_line"]),
        "start_column": data.get("start_column"),
        "end_column": data.get("end_column"),
        "annotation_level": data.get("annotation_level"),
        "title": data.get("title"),
        "message": data.get("message"),
        "raw_details": data.get("raw_details"),
    }


def register_ci(app: Flask, hub: Any) -> None:

    state = hub.state

    def admin_repo(owner: str, name: str) -> Repo:
        repo = state.repo(owner, name)
        if repo is None:
            raise KeyError(f"no repository {owner}/{name}")
        return repo

    def readable(owner: str, name: str) -> Repo | None:
        repo = state.repo(owner, name)
        return repo if repo is not None and state.may_read(g.get("token"), repo) else None

    @app.post("/_admin/repos/<owner>/<name>/check-runs")
    def ci_check_run(owner: str, name: str) -> Any:
        """Another CI reports a check run (created, or completed)."""
        from fakehub.webhooks import check_run_json

        repo = admin_repo(owner, name)
        data = request.get_json(silent=True) or {}
        try:
            with state.lock:
                run = report_check_run(hub, repo, data)
                return jsonify(check_run_json(repo, run)), 201
        except Refused as refused:
            return jsonify(error=str(refused)), 422

    @app.post("/_admin/repos/<owner>/<name>/statuses/<sha>")
    def ci_status(owner: str, name: str, sha: str) -> Any:
        """Another CI reports a commit status (`status` webhook)."""
        repo = admin_repo(owner, name)
        data = request.get_json(silent=True) or {}
        found = repo.git.sha(sha)
        if found is None:
            return jsonify(error=f"No commit found for SHA: {sha}"), 422
        creator = data.get("user") or "ci-bot"
        try:
            with state.lock:
                status = create_status(hub, repo, found, data, creator)
        except Refused as refused:
            return jsonify(error=str(refused)), 422
        return jsonify(status_json(repo, status)), 201

    @app.post("/repos/<owner>/<name>/statuses/<sha>")
    def post_status(owner: str, name: str, sha: str) -> Any:
        repo = readable(owner, name)
        if repo is None:
            return error(404, "Not Found")
        if repo.git.sha(sha) != sha:
            return error(422, f"No commit found for SHA: {sha}")
        data = request.get_json() or {}
        try:
            with state.lock:
                status = create_status(hub, repo, sha, data, actor_of(state, g.get("token")))
        except Refused as refused:
            return error(422, "Validation Failed", errors=[{"message": str(refused)}])
        return jsonify(status_json(repo, status)), 201

    @app.get("/repos/<owner>/<name>/commits/<path:ref>/status")
    def get_combined_status(owner: str, name: str, ref: str) -> Any:
        repo = readable(owner, name)
        sha = repo.git.sha(ref) if repo is not None else None
        if repo is None or sha is None:
            return error(404, "Not Found")
        return jsonify(combined_status(repo, sha))

    @app.get("/repos/<owner>/<name>/commits/<path:ref>/statuses")
    def list_statuses(owner: str, name: str, ref: str) -> Any:
        repo = readable(owner, name)
        sha = repo.git.sha(ref) if repo is not None else None
        if repo is None or sha is None:
            return error(404, "Not Found")
        found = [status_json(repo, s) for s in reversed(repo.statuses) if s["sha"] == sha]
        return jsonify(_page(found))

    @app.get("/repos/<owner>/<name>/check-runs/<int:run_id>/annotations")
    def annotations(owner: str, name: str, run_id: int) -> Any:
        repo = readable(owner, name)
        run = repo.check_run(run_id) if repo is not None else None
        if repo is None or run is None:
            return error(404, "Not Found")
        return jsonify(_page([annotation_json(repo, run, a) for a in run["annotations"]]))


def _page(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    per_page = min(int(request.args.get("per_page", 30)), 100)
    page = int(request.args.get("page", 1))
    return items[(page - 1) * per_page : page * per_page]
