"""Protected branches: a person protects a branch (`POST /_admin/repos/{o}/{r}/protect`),
and from then on a push to it is refused as github.com refuses it, over git's HTTP
protocol and through the contents API (`PUT /repos/{o}/{r}/contents/{path}`, which
the double otherwise serves: a commit on a branch, its `push` webhook).

Over git, github.com answers a push to a protected branch with

    remote: error: GH006: Protected branch update failed for refs/heads/main.
    remote: error: Changes must be made through a pull request.
     ! [remote rejected] main -> main (protected branch hook declined)

and nothing of the push is kept. Merging a pull request into the branch, and the
admin routes' commits (what a person with admin rights does), still move it.
"""

from __future__ import annotations

import base64
import gzip
import subprocess
from typing import Any

from flask import Flask, Response, g, jsonify, request

from fakehub.actors import actor_of
from fakehub.http import error
from fakehub.state import Repo, node_id

PROTECTED_MESSAGE = "Changes must be made through a pull request."


def _pkt(data: bytes) -> bytes:
    return f"{len(data) + 4:04x}".encode() + data


def _commands(data: bytes) -> tuple[list[tuple[str, str, str]], set[str]]:
    """The ref updates a receive-pack request asks for, and the client's capabilities."""
    commands: list[tuple[str, str, str]] = []
    capabilities: set[str] = set()
    position = 0
    while position + 4 <= len(data):
        try:
            size = int(data[position : position + 4], 16)
        except ValueError:
            break
        if size == 0:
            break
        line = data[position + 4 : position + size]
        position += size
        if b"\0" in line:
            line, caps = line.split(b"\0", 1)
            capabilities = set(caps.decode(errors="replace").split())
        parts = line.decode(errors="replace").split()
        if len(parts) == 3 and not parts[0].startswith(("shallow", "push-cert")):
            commands.append((parts[0], parts[1], parts[2]))
    return commands, capabilities


def refused_push(repo: Repo) -> Response | None:
    """github.com's answer to a git push updating a protected branch, or None."""
    data = request.get_data()
    if request.headers.get("Content-Encoding") == "gzip":
        data = gzip.decompress(data)
    commands, capabilities = _commands(data)
    protected = [
        ref for _, _, ref in commands if ref.removeprefix("refs/heads/") in repo.protected_branches
    ]
    if not protected:
        return None
    status = _pkt(b"unpack ok\n")
    for _, _, ref in commands:
        status += _pkt(f"ng {ref} protected branch hook declined\n".encode())
    status += b"0000"
    if "side-band-64k" in capabilities or "side-band" in capabilities:
        chunk = 65515 if "side-band-64k" in capabilities else 995
        messages = "".join(
            f"error: GH006: Protected branch update failed for {ref}.\nerror: {PROTECTED_MESSAGE}\n"
            for ref in protected
        ).encode()
        body = _pkt(b"\x02" + messages)
        body += b"".join(
            _pkt(b"\x01" + status[i : i + chunk]) for i in range(0, len(status), chunk)
        )
        body += b"0000"
    else:
        body = status
    return Response(
        body,
        200,
        {"Content-Type": "application/x-git-receive-pack-result", "Cache-Control": "no-cache"},
    )


def blob_sha(repo: Repo, ref: str, path: str) -> str | None:
    """The git blob sha of a file at a ref, as the contents API shows it."""
    result = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}:{path}"],
        cwd=repo.git.bare,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or None


def register_protection(app: Flask, hub: Any) -> None:

    state = hub.state

    @app.post("/_admin/repos/<owner>/<name>/protect")
    def protect(owner: str, name: str) -> Any:
        """A person protects a branch: pushes to it are refused from then on; with
        `required_checks`, those status checks must pass before a merge."""
        repo = state.repo(owner, name)
        if repo is None:
            raise KeyError(f"no repository {owner}/{name}")
        data = request.get_json(silent=True) or {}
        branch = data.get("branch") or repo.default_branch
        checks = data.get("required_checks")
        if checks is not None and not (
            isinstance(checks, list) and all(isinstance(c, str) and c for c in checks)
        ):
            return jsonify(error="required_checks must list check names"), 422
        with state.lock:
            repo.protected_branches.add(branch)
            if checks is not None:
                repo.required_checks[branch] = list(dict.fromkeys(checks))
        return jsonify(
            protected_branches=sorted(repo.protected_branches),
            required_checks=repo.required_checks.get(branch, []),
        ), 201

    def administered(owner: str, name: str, branch: str) -> Repo | Any:
        """The repository whose branch protection the token may read (administration
        read, which an App asks for and a person with admin rights has), or GitHub's
        refusal: 403 without that permission, 404 for a branch not protected."""
        repo = state.repo(owner, name)
        token = g.get("token")
        if repo is None or not state.may_read(token, repo):
            return error(404, "Not Found")
        issued = state.tokens.get(token or "")
        if issued is not None and issued.permissions.get("administration") not in (
            "read",
            "write",
        ):
            return error(403, "Resource not accessible by integration")
        if branch not in repo.protected_branches:
            return error(404, "Branch not protected")
        return repo

    @app.get("/repos/<owner>/<name>/branches/<path:branch>/protection")
    def get_protection(owner: str, name: str, branch: str) -> Any:
        repo = administered(owner, name, branch)
        if not isinstance(repo, Repo):
            return repo
        url = f"{repo.api_url}/branches/{branch}/protection"
        return jsonify(
            url=url,
            required_status_checks=_status_checks(repo, branch),
            enforce_admins={"url": f"{url}/enforce_admins", "enabled": False},
            required_linear_history={"enabled": False},
            allow_force_pushes={"enabled": False},
            allow_deletions={"enabled": False},
        )

    @app.get("/repos/<owner>/<name>/branches/<path:branch>/protection/required_status_checks")
    def get_required_status_checks(owner: str, name: str, branch: str) -> Any:
        repo = administered(owner, name, branch)
        if not isinstance(repo, Repo):
            return repo
        if branch not in repo.required_checks:
            return error(404, "Required status checks not enabled")
        return jsonify(_status_checks(repo, branch))

    @app.put("/repos/<owner>/<name>/contents/<path:path>")
    def put_contents(owner: str, name: str, path: str) -> Any:
        """Create or update a file: one commit on the branch, its `push` webhook."""
        repo = state.repo(owner, name)
        token = g.get("token")
        if repo is None or not state.may_read(token, repo):
            return error(404, "Not Found")
        if not state.may_push(token, repo):
            return error(403, "Resource not accessible by integration")
        data = request.get_json()
        branch = data.get("branch") or repo.default_branch
        with state.lock:
            if repo.git.sha(branch) is None or branch not in repo.git.refs():
                return error(404, f"Branch {branch} not found")
            if branch in repo.protected_branches:
                return error(409, PROTECTED_MESSAGE)
            current = blob_sha(repo, branch, path)
            if current is not None and not data.get("sha"):
                return error(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
            if current is not None and data["sha"] != current:
                return error(409, f"{path} does not match {data['sha']}")
            try:
                text = base64.b64decode(data["content"], validate=True).decode()
            except ValueError:
                return error(422, "content is not valid Base64")
            author = (data.get("committer") or {}).get("name") or actor_of(state, token)
            result = hub.commit(repo, branch, {path: text}, data["message"], author)
            return jsonify(_file_commit(repo, branch, path, result["sha"])), (
                201 if current is None else 200
            )


def _status_checks(repo: Repo, branch: str) -> dict[str, Any]:
    """The required status checks of a protected branch, as GitHub answers them."""
    url = f"{repo.api_url}/branches/{branch}/protection/required_status_checks"
    names = repo.required_checks.get(branch, [])
    return {
        "url": url,
        "strict": False,
        "contexts": names,
        "contexts_url": f"{url}/contexts",
        "checks": [{"context": name, "app_id": None} for name in names],
    }


def _file_commit(repo: Repo, branch: str, path: str, sha: str) -> dict[str, Any]:
    from fakehub.pulls import branch_json

    blob = blob_sha(repo, sha, path) or ""
    commit = branch_json(repo, branch, sha)["commit"]
    url = f"{repo.api_url}/contents/{path}?ref={branch}"
    return {
        "content": {
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": blob,
            "size": len(repo.git.read(sha, path) or b""),
            "url": url,
            "html_url": f"{repo.html_url}/blob/{branch}/{path}",
            "git_url": f"{repo.api_url}/git/blobs/{blob}",
            "download_url": f"https://raw.githubusercontent.com/{repo.full_name}/{branch}/{path}",
            "type": "file",
            "_links": {
                "self": url,
                "git": f"{repo.api_url}/git/blobs/{blob}",
                "html": f"{repo.html_url}/blob/{branch}/{path}",
            },
        },
        "commit": {
            "sha": sha,
            "node_id": node_id("C", abs(hash(sha)) % 10_000_000),
            "url": f"{repo.api_url}/git/commits/{sha}",
            "html_url": commit["html_url"],
            "author": commit["commit"]["author"],
            "committer": commit["commit"]["committer"],
            "message": commit["commit"]["message"],
            "tree": commit["commit"]["tree"],
            "parents": commit["parents"],
            "verification": {
                "verified": False,
                "reason": "unsigned",
                "signature": None,
                "payload": None,
                "verified_at": None,
            },
        },
    }
