"""GitHub's agent tasks API (public preview) on the double: Copilot's cloud agent started
from a prompt, without an issue.

What GitHub documents ("Using cloud agent via the API"; the REST reference lists tasks
with `state` among `queued`, `in_progress`, `completed`, `failed`, `idle`,
`waiting_for_user`, `timed_out`, `cancelled`):

- `POST /agents/repos/{owner}/{repo}/tasks` `{"prompt", "base_ref", "head_ref", "model",
  "custom_agent", "create_pull_request"}` (201): `prompt` is the only required parameter;
  `create_pull_request` defaults to false. Only user-to-server
  tokens (a personal access token, an OAuth App token, a GitHub App user-to-server
  token); server-to-server tokens such as installation tokens are not supported. The
  double also asks that Copilot's coding agent be enabled for the repository.
- `GET /agents/repos/{owner}/{repo}/tasks` and `GET /agents/repos/{owner}/{repo}/tasks/{id}`
  read them back.

Answers are shaped by the REST description (github-fixtures' OpenAPI). A test moves a task on with
`POST /_admin/repos/{o}/{r}/agent-tasks/{id}` `{"state": "in_progress"}`, then acts as
the agent through the admin routes (a commit, a pull request).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g, jsonify, request

from fakehub.actors import actor_of, is_user_token
from fakehub.http import error
from fakehub.state import Repo, new_id, now, user

STATES = (
    "queued",
    "in_progress",
    "completed",
    "failed",
    "idle",
    "waiting_for_user",
    "timed_out",
    "cancelled",
)
NOT_SUPPORTED = (
    "Server-to-server tokens, such as GitHub App installation access tokens, are not "
    "supported: use a personal access token, an OAuth app token or a GitHub App "
    "user-to-server token"
)


def task_json(repo: Repo, task: dict[str, Any]) -> dict[str, Any]:
    """A task as the REST description shapes it (`id`, `state`, `created_at` required)."""
    api = f"https://api.github.com/agents/repos/{repo.full_name}/tasks/{task['id']}"
    shown: dict[str, Any] = {
        "id": task["id"],
        "url": api,
        "html_url": f"{repo.html_url}/copilot/tasks/{task['id']}",
        "name": task["prompt"].strip().splitlines()[0][:80],
        "creator": {"id": user(task["user"])["id"]},
        "creator_type": "user",
        "owner": {"id": user(repo.owner)["id"]},
        "repository": {"id": repo.id},
        "state": task["state"],
        "session_count": 1,
        "artifacts": task["artifacts"],
        "archived_at": None,
        "updated_at": task["updated_at"],
        "created_at": task["created_at"],
    }
    if task["custom_agent"]:
        shown["custom_agent"] = {"id": task["custom_agent"]}
    return shown


def register_agent_tasks(app: Flask, hub: Any) -> None:

    state = hub.state

    def found(owner: str, name: str) -> Repo | None:
        repo = state.repo(owner, name)
        return repo if repo is not None and state.may_read(g.get("token"), repo) else None

    @app.post("/agents/repos/<owner>/<name>/tasks")
    def create_task(owner: str, name: str) -> Any:
        repo = found(owner, name)
        token = g.get("token")
        if repo is None:
            return error(404, "Not Found")
        if not is_user_token(state, token):
            return error(403, NOT_SUPPORTED)
        if not repo.copilot:
            return error(403, f"Copilot cloud agent is not enabled for {repo.full_name}")
        data = request.get_json(silent=True) or {}
        prompt = data.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return error(422, "Validation Failed", errors=[{"field": "prompt", "code": "missing"}])
        base = data.get("base_ref") or repo.default_branch
        if repo.git.sha(base) is None:
            return error(422, f"No branch {base} in {repo.full_name}")
        task = {
            "id": str(new_id()),
            "state": "queued",
            "prompt": prompt,
            "base_ref": base,
            "head_ref": data.get("head_ref"),
            "model": data.get("model"),
            "custom_agent": data.get("custom_agent"),
            "create_pull_request": bool(data.get("create_pull_request", False)),
            "user": actor_of(state, token),
            "artifacts": [],
            "created_at": now(),
            "updated_at": now(),
        }
        with state.lock:
            repo.agent_tasks[task["id"]] = task
        return jsonify(task_json(repo, task)), 201

    @app.get("/agents/repos/<owner>/<name>/tasks")
    def list_tasks(owner: str, name: str) -> Any:
        repo = found(owner, name)
        if repo is None or not is_user_token(state, g.get("token")):
            return error(404, "Not Found")
        return jsonify(tasks=[task_json(repo, t) for t in repo.agent_tasks.values()])

    @app.get("/agents/repos/<owner>/<name>/tasks/<task_id>")
    def get_task(owner: str, name: str, task_id: str) -> Any:
        repo = found(owner, name)
        if repo is None or task_id not in repo.agent_tasks:
            return error(404, "Not Found")
        return jsonify(task_json(repo, repo.agent_tasks[task_id]))

    @app.post("/_admin/repos/<owner>/<name>/agent-tasks/<task_id>")
    def move_task(owner: str, name: str, task_id: str) -> Any:
        repo = state.repo(owner, name)
        if repo is None or task_id not in repo.agent_tasks:
            return jsonify(error=f"no agent task {task_id}"), 404
        wanted = (request.get_json(silent=True) or {}).get("state")
        if wanted not in STATES:
            return jsonify(error=f"state is one of {', '.join(STATES)}"), 422
        with state.lock:
            repo.agent_tasks[task_id].update(state=wanted, updated_at=now())
        return jsonify(task_json(repo, repo.agent_tasks[task_id]))
