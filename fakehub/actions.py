"""GitHub Actions on the double, as far as a workflow that runs an agent needs it:
`workflow_dispatch` starting a run, and the run's `workflow_run` events.

What GitHub documents (REST "Create a workflow dispatch event"; the `workflow_dispatch`
trigger; webhook `workflow_run`):

- `POST /repos/{o}/{r}/actions/workflows/{workflow_id}/dispatches` `{"ref", "inputs",
  "return_run_details"}`: `workflow_id` is the workflow's file name (or its id); the file
  must exist on `ref` under `.github/workflows/` and say `on: workflow_dispatch`; inputs
  must be ones the file declares (422 "Unexpected inputs provided"), its required ones
  given, at most 25 of them and 65,535 characters in all. It answers 204, or 200 with
  `workflow_run_id`, `run_url` and `html_url` when `return_run_details` is true.
- The run is created queued (`workflow_run` requested); a test decides the rest with
  `POST /_admin/repos/{o}/{r}/actions/runs/{id}` `{"status": "in_progress"}` or
  `{"conclusion": "success" | "failure" | "cancelled" | "timed_out" | ...}` (`workflow_run`
  in_progress, completed). What the agent does meanwhile, a test does through the admin
  routes (a commit on a branch, a pull request).
- `GET /repos/{o}/{r}/actions/runs/{id}` reads a run, `POST .../actions/runs/{id}/cancel`
  cancels one not completed (202; 409 once completed); `GET /_admin/repos/{o}/{r}/actions/runs`
  lists them with the inputs each was given.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import yaml
from flask import Flask, g, jsonify, request

from fakehub.actors import actor_of
from fakehub.http import error
from fakehub.state import Repo, new_id, node_id, now, user

MAX_INPUTS = 25
MAX_INPUTS_CHARS = 65_535
CONCLUSIONS = (
    "success",
    "failure",
    "neutral",
    "cancelled",
    "skipped",
    "timed_out",
    "action_required",
    "stale",
    "startup_failure",
)
WORKFLOWS = ".github/workflows/"


class DispatchRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _workflow_file(repo: Repo, workflow_id: str, ref: str) -> tuple[str, dict[str, Any]]:
    """(path, parsed) of the workflow at `ref`, by file name or numeric id."""
    if repo.git.sha(ref) is None:
        raise DispatchRefused(422, f"No ref found for: {ref}")
    if workflow_id.isdigit():
        entries = repo.git.list_dir(ref, WORKFLOWS.rstrip("/")) or []
        paths = [path for kind, path, _ in entries if kind == "file"]
        paths = [p for p in paths if workflow_number(p) == int(workflow_id)]
    else:
        paths = [f"{WORKFLOWS}{workflow_id}"]
    for path in paths:
        text = repo.git.read(ref, path)
        if text is not None:
            try:
                return path, yaml.safe_load(text) or {}
            except yaml.YAMLError:
                raise DispatchRefused(422, f"Invalid workflow file {path}") from None
    raise DispatchRefused(404, "Not Found")


def workflow_number(path: str) -> int:
    """A workflow's id, stable for its path."""
    return zlib.crc32(path.encode()) % 100_000_000 + 1


def _dispatch_inputs(parsed: dict[str, Any]) -> dict[str, Any] | None:
    """The workflow's `workflow_dispatch` inputs, or None when it has no such trigger.
    (YAML reads a bare `on` as true.)"""
    on = parsed.get("on", parsed.get(True))
    if on == "workflow_dispatch" or (isinstance(on, list) and "workflow_dispatch" in on):
        return {}
    if isinstance(on, dict) and "workflow_dispatch" in on:
        return dict((on["workflow_dispatch"] or {}).get("inputs") or {})
    return None


def dispatch(hub: Any, repo: Repo, workflow_id: str, data: dict[str, Any], actor: str) -> dict:
    ref = data.get("ref")
    if not isinstance(ref, str) or not ref:
        raise DispatchRefused(422, "ref is required")
    ref = ref.removeprefix("refs/heads/")
    inputs = data.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise DispatchRefused(422, "inputs must be an object")
    if len(inputs) > MAX_INPUTS:
        raise DispatchRefused(422, f"you may only define up to {MAX_INPUTS} `inputs`")
    if len(json.dumps(inputs, ensure_ascii=False)) > MAX_INPUTS_CHARS:
        raise DispatchRefused(422, f"inputs are too large (over {MAX_INPUTS_CHARS} characters)")
    path, parsed = _workflow_file(repo, workflow_id, ref)
    declared = _dispatch_inputs(parsed)
    if declared is None:
        raise DispatchRefused(422, "Workflow does not have 'workflow_dispatch' trigger")
    unexpected = sorted(set(inputs) - set(declared))
    if unexpected:
        raise DispatchRefused(422, f"Unexpected inputs provided: {json.dumps(unexpected)}")
    for name, spec in declared.items():
        if (spec or {}).get("required") and name not in inputs and "default" not in (spec or {}):
            raise DispatchRefused(422, f"Required input '{name}' not provided")
    run_id = new_id()
    runs = repo.workflow_runs
    run = {
        "id": run_id,
        "workflow_path": path,
        "workflow_name": str(parsed.get("name") or path),
        "head_branch": ref,
        "head_sha": repo.git.sha(ref),
        "status": "queued",
        "conclusion": None,
        "run_number": 1 + sum(1 for r in runs.values() if r["workflow_path"] == path),
        "actor": actor,
        "inputs": {str(k): v for k, v in inputs.items()},
        "created_at": now(),
        "updated_at": now(),
        "run_started_at": now(),
    }
    runs[run_id] = run
    _send(hub, repo, run, "requested")
    return run


def advance(hub: Any, repo: Repo, run: dict[str, Any], data: dict[str, Any]) -> None:
    """A test decides how the run goes: in progress, or completed with a conclusion."""
    conclusion = data.get("conclusion")
    if conclusion is not None:
        if conclusion not in CONCLUSIONS:
            raise DispatchRefused(422, f"conclusion is not one of {', '.join(CONCLUSIONS)}")
        if run["status"] == "completed":
            raise DispatchRefused(422, "the run is completed already")
        run.update(status="completed", conclusion=conclusion, updated_at=now())
        _send(hub, repo, run, "completed")
        return
    if data.get("status") != "in_progress" or run["status"] != "queued":
        raise DispatchRefused(422, "a queued run goes in_progress, then completes")
    run.update(status="in_progress", updated_at=now())
    _send(hub, repo, run, "in_progress")


def run_json(repo: Repo, run: dict[str, Any]) -> dict[str, Any]:
    """A workflow run as REST and the `workflow_run` webhook show it."""
    api = f"{repo.api_url}/actions/runs/{run['id']}"
    workflow_id = workflow_number(run["workflow_path"])
    return {
        "id": run["id"],
        "node_id": node_id("WFR", run["id"]),
        "name": run["workflow_name"],
        "display_title": run["workflow_name"],
        "path": run["workflow_path"],
        "head_branch": run["head_branch"],
        "head_sha": run["head_sha"],
        "event": "workflow_dispatch",
        "status": run["status"],
        "conclusion": run["conclusion"],
        "workflow_id": workflow_id,
        "check_suite_id": run["id"] + 1,
        "check_suite_node_id": node_id("CS", run["id"] + 1),
        "url": api,
        "html_url": f"{repo.html_url}/actions/runs/{run['id']}",
        "pull_requests": [],
        "created_at": run["created_at"],
        "updated_at": run["updated_at"],
        "run_started_at": run["run_started_at"],
        "run_number": run["run_number"],
        "run_attempt": 1,
        "actor": user(run["actor"]),
        "triggering_actor": user(run["actor"]),
        "jobs_url": f"{api}/jobs",
        "logs_url": f"{api}/logs",
        "check_suite_url": f"{repo.api_url}/check-suites/{run['id'] + 1}",
        "artifacts_url": f"{api}/artifacts",
        "cancel_url": f"{api}/cancel",
        "rerun_url": f"{api}/rerun",
        "previous_attempt_url": None,
        "workflow_url": f"{repo.api_url}/actions/workflows/{workflow_id}",
        "head_commit": {
            "id": run["head_sha"],
            "tree_id": run["head_sha"],
            "message": "",
            "timestamp": run["created_at"],
            "author": {"name": run["actor"], "email": f"{run['actor']}@users.noreply"},
            "committer": {"name": run["actor"], "email": f"{run['actor']}@users.noreply"},
        },
        "repository": repo.json(),
        "head_repository": repo.json(),
    }


def _workflow_json(repo: Repo, run: dict[str, Any]) -> dict[str, Any]:
    number = workflow_number(run["workflow_path"])
    return {
        "id": number,
        "node_id": node_id("W", number),
        "name": run["workflow_name"],
        "path": run["workflow_path"],
        "state": "active",
        "created_at": run["created_at"],
        "updated_at": run["created_at"],
        "url": f"{repo.api_url}/actions/workflows/{number}",
        "html_url": f"{repo.html_url}/blob/{repo.default_branch}/{run['workflow_path']}",
        "badge_url": f"{repo.html_url}/workflows/{run['workflow_name']}/badge.svg",
    }


def _send(hub: Any, repo: Repo, run: dict[str, Any], action: str) -> None:
    hub.send(
        "workflow_run",
        repo,
        run["actor"],
        action=action,
        workflow=_workflow_json(repo, run),
        workflow_run=run_json(repo, run),
    )


def register_actions(app: Flask, hub: Any) -> None:

    state = hub.state

    def admin_repo(owner: str, name: str) -> Repo:
        repo = state.repo(owner, name)
        if repo is None:
            raise KeyError(f"no repository {owner}/{name}")
        return repo

    @app.post("/repos/<owner>/<name>/actions/workflows/<workflow_id>/dispatches")
    def create_dispatch(owner: str, name: str, workflow_id: str) -> Any:
        repo = state.repo(owner, name)
        token = g.get("token")
        if repo is None or not state.may_read(token, repo):
            return error(404, "Not Found")
        if not state.may_push(token, repo):  # actions: write, as a push needs contents
            return error(403, "Resource not accessible by integration")
        data = request.get_json(silent=True) or {}
        try:
            with state.lock:
                run = dispatch(hub, repo, workflow_id, data, actor_of(state, token))
        except DispatchRefused as refused:
            return error(refused.status, str(refused))
        if not data.get("return_run_details"):
            return "", 204
        shown = run_json(repo, run)
        return jsonify(workflow_run_id=run["id"], run_url=shown["url"], html_url=shown["html_url"])

    @app.get("/repos/<owner>/<name>/actions/runs/<int:run_id>")
    def get_run(owner: str, name: str, run_id: int) -> Any:
        repo = state.repo(owner, name)
        if repo is None or not state.may_read(g.get("token"), repo):
            return error(404, "Not Found")
        run = repo.workflow_runs.get(run_id)
        return jsonify(run_json(repo, run)) if run else error(404, "Not Found")

    @app.post("/repos/<owner>/<name>/actions/runs/<int:run_id>/cancel")
    def cancel_run(owner: str, name: str, run_id: int) -> Any:
        repo = state.repo(owner, name)
        token = g.get("token")
        if repo is None or not state.may_read(token, repo) or run_id not in repo.workflow_runs:
            return error(404, "Not Found")
        if not state.may_push(token, repo):
            return error(403, "Resource not accessible by integration")
        run = repo.workflow_runs[run_id]
        if run["status"] == "completed":
            return error(409, "Cannot cancel a workflow run that is completed.")
        with state.lock:
            advance(hub, repo, run, {"conclusion": "cancelled"})
        return jsonify({}), 202

    @app.get("/_admin/repos/<owner>/<name>/actions/runs")
    def admin_runs(owner: str, name: str) -> Any:
        repo = admin_repo(owner, name)
        return jsonify(runs=[dict(run) for run in repo.workflow_runs.values()])

    @app.post("/_admin/repos/<owner>/<name>/actions/runs/<int:run_id>")
    def admin_advance(owner: str, name: str, run_id: int) -> Any:
        repo = admin_repo(owner, name)
        run = repo.workflow_runs.get(run_id)
        if run is None:
            return jsonify(error=f"no run {run_id}"), 404
        try:
            with state.lock:
                advance(hub, repo, run, request.get_json(silent=True) or {})
        except DispatchRefused as refused:
            return jsonify(error=str(refused)), refused.status
        return jsonify(run_json(repo, run))
