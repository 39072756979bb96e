"""Git over HTTP as github.com serves it: git's smart protocol through
`git http-backend`, at `{url}/{owner}/{name}.git`.

Reads of a public repository need no credential. A private repository needs
a token for reads too, and a push always needs a token with `contents:
write` on that repository (an installation token narrowed elsewhere is
refused), sent as HTTP Basic `x-access-token:<token>` or as a token header.
A push updates the double like any commit: its `push` webhook is sent.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from flask import Flask, Response, request

from fakehub.http import request_token
from fakehub.protection import refused_push
from fakehub.state import BOT


def register_git(app: Flask, hub: Any) -> None:
    state = hub.state

    @app.route("/<owner>/<name>.git/<path:rest>", methods=["GET", "POST"])
    def smart_http(owner: str, name: str, rest: str) -> Any:
        repo = state.repo(owner, name)
        token = request_token()
        if repo is None:
            return Response("Repository not found.\n", 404)
        pushing = rest == "git-receive-pack" or request.args.get("service") == "git-receive-pack"
        allowed = state.may_push(token, repo) if pushing else state.may_read(token, repo)
        if not allowed:
            # What github.com answers: git then asks for credentials, and with
            # no prompt available it fails with "Authentication failed".
            return Response(
                "Invalid username or token.\n" if token else "Authentication required.\n",
                401,
                {"WWW-Authenticate": 'Basic realm="GitHub"'},
            )
        if rest == "git-receive-pack":
            refusal = refused_push(repo)  # a protected branch: github.com's answer
            if refusal is not None:
                return refusal
        before = repo.git.refs() if pushing and rest == "git-receive-pack" else None
        response = _http_backend(state.root / "git", f"/{owner}/{name}.git/{rest}", token)
        if before is not None:
            with state.lock:
                after = repo.git.refs()
                for branch, sha in sorted(after.items()):
                    if before.get(branch) != sha:
                        pusher = _pusher(token, state)
                        hub.pushed(repo, branch, before.get(branch, "0" * 40), sha, pusher)
        return response


def _pusher(token: str | None, state: Any) -> str:
    return BOT["login"] if token in state.tokens else "octocat"


def _http_backend(project_root: Any, path_info: str, token: str | None) -> Response:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": str(project_root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": path_info,
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": request.query_string.decode(),
        "CONTENT_TYPE": request.headers.get("Content-Type", ""),
        "REMOTE_ADDR": request.remote_addr or "127.0.0.1",
        # http-backend refuses pushes from an anonymous user; this one is checked above.
        "REMOTE_USER": "x-access-token" if token else "",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.receivepack",
        "GIT_CONFIG_VALUE_0": "true",
    }
    if request.headers.get("Content-Encoding"):
        env["HTTP_CONTENT_ENCODING"] = request.headers["Content-Encoding"]
    if request.headers.get("Git-Protocol"):
        env["GIT_PROTOCOL"] = request.headers["Git-Protocol"]
    result = subprocess.run(
        ["git", "http-backend"], input=request.get_data(), env=env, capture_output=True
    )
    head, body = _split_cgi(result.stdout)
    status, headers = 200, {}
    for line in head.decode(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key.lower() == "status":
            status = int(value.strip().split()[0])
        elif key:
            headers[key.strip()] = value.strip()
    return Response(body, status, headers)


def _split_cgi(output: bytes) -> tuple[bytes, bytes]:
    """A CGI answer's headers and body: split at the first blank line."""
    ends = [(output.find(sep), sep) for sep in (b"\r\n\r\n", b"\n\n") if sep in output]
    if not ends:
        return output, b""
    index, separator = min(ends)
    return output[:index], output[index + len(separator) :]
