"""Git references through the REST API, as GitHub's git database API serves them:
`POST /repos/{o}/{r}/git/refs` (`ref` as `refs/heads/NAME`, `sha`) makes a branch,
`PATCH /repos/{o}/{r}/git/refs/heads/{branch}` (`sha`, `force`) moves one. Each is a
push: its `push` webhook, and `pull_request` synchronize for the branch's open pull
requests. A protected branch is not moved (GitHub: 422 "Protected branch update
failed"); a move that loses commits needs `force` (422 "Update is not a fast forward")."""

from __future__ import annotations

from typing import Any

from flask import Flask, g, jsonify, request

from fakehub.actors import actor_of
from fakehub.git import git
from fakehub.http import error
from fakehub.pulls import ref_json

ZERO = "0" * 40


def register_refs(app: Flask, hub: Any) -> None:

    state = hub.state

    def writable(owner: str, name: str) -> Any:
        repo = state.repo(owner, name)
        token = g.get("token")
        if repo is None or not state.may_read(token, repo):
            return None, error(404, "Not Found")
        if not state.may_push(token, repo):
            return None, error(403, "Resource not accessible by integration")
        return repo, None

    def move(repo: Any, branch: str, before: str, after: str) -> None:
        git("update-ref", f"refs/heads/{branch}", after, cwd=repo.git.bare)
        actor = actor_of(state, g.get("token"))
        hub.pushed(repo, branch, before, after, actor)  # with the pull requests' synchronize

    @app.post("/repos/<owner>/<name>/git/refs")
    def create_ref(owner: str, name: str) -> Any:
        repo, refused = writable(owner, name)
        if refused:
            return refused
        data = request.get_json()
        ref, sha = data["ref"], data["sha"]
        if not ref.startswith("refs/heads/") or ref.count("/") < 2:
            return error(422, "Reference name must start with 'refs/heads/'")
        branch = ref.removeprefix("refs/heads/")
        with state.lock:
            if branch in repo.git.refs():
                return error(422, "Reference already exists")
            if repo.git.sha(sha) != sha:
                return error(422, "Object does not exist")
            move(repo, branch, ZERO, sha)
            return jsonify(ref_json(repo, branch, sha)), 201

    @app.patch("/repos/<owner>/<name>/git/refs/<path:ref>")
    def update_ref(owner: str, name: str, ref: str) -> Any:
        repo, refused = writable(owner, name)
        if refused:
            return refused
        data = request.get_json()
        branch, sha = ref.removeprefix("heads/"), data["sha"]
        with state.lock:
            before = repo.git.refs().get(branch) if ref.startswith("heads/") else None
            if before is None:
                return error(422, "Reference does not exist")
            if repo.git.sha(sha) != sha:
                return error(422, "Object does not exist")
            if branch in repo.protected_branches:
                return error(422, "Protected branch update failed")
            fast_forward = repo.git.merge_base(before, sha) == before
            if not fast_forward and not data.get("force"):
                return error(422, "Update is not a fast forward")
            if before != sha:
                move(repo, branch, before, sha)
            return jsonify(ref_json(repo, branch, sha))
