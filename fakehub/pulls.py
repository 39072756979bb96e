"""Pull requests as people and hosted agents (Copilot) make them: drafts, ready
for review, closed without merging, reviews with line comments; and the REST
that reads them back (a pull request, its reviews and review comments, a
branch, a git ref).

Reviews are kept per pull request in `Repo.reviews`, their line comments in
`Repo.review_comments`. Webhooks: `pull_request` ready_for_review and closed,
`pull_request_review` submitted, `pull_request_review_comment` created, shaped
by GitHub's webhook schemas (the REST description's `x-webhooks` for the two
review events, which octokit's schema folder lacks).
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from flask import Flask, abort, g, jsonify, request

from fakehub.git import git
from fakehub.http import Refused, error
from fakehub.reviewers import request_code_owners, reviewed
from fakehub.state import Issue, Repo, new_id, node_id, now, reactions, user
from fakehub.webhooks import pull_request_json

# What a review's event becomes, in REST (upper case) and in webhooks (lower case).
REVIEW_STATES = {
    "APPROVE": "APPROVED",
    "REQUEST_CHANGES": "CHANGES_REQUESTED",
    "COMMENT": "COMMENTED",
}
# GitHub's closing keywords, optionally followed by a colon, then `#N` or `owner/repo#N`.
CLOSING = re.compile(
    r"(?i)\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?):?\s+(?:([\w.-]+/[\w.-]+))?#(\d+)\b"
)


def closing_issues(repo: Repo, body: str | None) -> list[Issue]:
    """The issues of `repo` a pull request body names with a closing keyword
    ("Fixes #12", "closes: #3", "Resolves acme/app#4"), each once, in order."""
    found: list[Issue] = []
    for full_name, number in CLOSING.findall(body or ""):
        if full_name and full_name.lower() != repo.full_name.lower():
            continue  # another repository's issue: the double keeps none it could close
        issue = repo.issues.get(int(number))
        if issue is not None and not issue.is_pull_request and issue not in found:
            found.append(issue)
    return found


# -- changes, each sending GitHub's webhooks ------------------------------------------------


def mark_ready(hub: Any, repo: Repo, pull: dict[str, Any], actor: str) -> dict[str, Any]:
    """A person or a bot marks a draft ready for review: `pull_request` ready_for_review."""

    if pull["state"] != "open" or not pull.get("draft"):
        raise Refused("Pull request is not a draft")
    pull["draft"] = False
    hub.send_pull_request(repo, pull, "ready_for_review", actor)
    request_code_owners(hub, repo, pull, actor)  # GitHub asks a draft's code owners now
    return pull


def close_pull(hub: Any, repo: Repo, pull: dict[str, Any], actor: str) -> dict[str, Any]:
    """Closed without merging: `pull_request` closed, merged false."""

    if pull["state"] != "open":
        raise Refused("Pull request is already closed")
    pull.update(state="closed", closed_at=now(), merged=False)
    hub.pull_changed(repo, pull)
    hub.send_pull_request(repo, pull, "closed", actor)
    return pull


def submit_review(
    hub: Any, repo: Repo, pull: dict[str, Any], data: dict[str, Any]
) -> dict[str, Any]:
    """A person submits a review on the pull request's head, with line comments:
    `pull_request_review` submitted, then `pull_request_review_comment` created for each."""

    event = data.get("event", "COMMENT")
    if event not in REVIEW_STATES:
        raise Refused(f"event must be one of {', '.join(REVIEW_STATES)}")
    author = data.get("user", "octocat")
    if event != "COMMENT" and author == pull["user"]["login"]:
        verb = "approve" if event == "APPROVE" else "request changes on"
        raise Refused(f"Can not {verb} your own pull request")
    comments = data.get("comments") or []
    body = data.get("body") or ""
    if event != "APPROVE" and not body and not comments:
        raise Refused("Body is required for a review that comments or requests changes")
    head = pull["head"]["sha"]
    changed = repo.changed_paths(pull)
    for comment in comments:
        _check_line(repo, head, changed, comment)
    review_id = new_id()
    review = {
        "id": review_id,
        "node_id": node_id("PRR", review_id),
        "user": user(author),
        "body": body,
        "state": REVIEW_STATES[event],
        "html_url": f"{pull['html_url']}#pullrequestreview-{review_id}",
        "pull_request_url": f"{repo.api_url}/pulls/{pull['number']}",
        "_links": {
            "html": {"href": f"{pull['html_url']}#pullrequestreview-{review_id}"},
            "pull_request": {"href": f"{repo.api_url}/pulls/{pull['number']}"},
        },
        "submitted_at": now(),
        "commit_id": head,
        "author_association": _association(repo, author),
    }
    repo.reviews.setdefault(pull["number"], []).append(review)
    reviewed(repo, pull, author)
    made = [_review_comment(repo, pull, review, c) for c in comments]
    repo.review_comments.setdefault(pull["number"], []).extend(made)
    hub.send(
        "pull_request_review",
        repo,
        author,
        action="submitted",
        review={**review, "state": review["state"].lower(), "updated_at": review["submitted_at"]},
        pull_request=pull_request_json(repo, pull),
    )
    for comment in made:
        hub.send(
            "pull_request_review_comment",
            repo,
            author,
            action="created",
            comment=comment,
            pull_request=pull_request_json(repo, pull),
        )
    return {**review, "comments": made}


def _check_line(repo: Repo, head: str, changed: set[str], comment: dict[str, Any]) -> None:
    """GitHub takes a line comment only on a file the pull request changes, on a line
    the file has at the head."""

    path, line = comment.get("path"), comment.get("line")
    if path not in changed:
        raise Refused(f"Path could not be resolved: {path}")
    lines = (repo.git.read(head, path) or b"").decode(errors="replace").splitlines()
    if not isinstance(line, int) or not 1 <= line <= len(lines):
        raise Refused(f"Line could not be resolved: {path}:{line}")


def _review_comment(
    repo: Repo, pull: dict[str, Any], review: dict[str, Any], data: dict[str, Any]
) -> dict[str, Any]:
    comment_id = new_id()
    path, line = data["path"], data["line"]
    text = (repo.git.read(review["commit_id"], path) or b"").decode(errors="replace")
    url = f"{repo.api_url}/pulls/comments/{comment_id}"
    html = f"{pull['html_url']}#discussion_r{comment_id}"
    pull_url = f"{repo.api_url}/pulls/{pull['number']}"
    return {
        "url": url,
        "pull_request_review_id": review["id"],
        "id": comment_id,
        "node_id": node_id("PRRC", comment_id),
        "diff_hunk": f"@@ -{line},1 +{line},1 @@\n+{text.splitlines()[line - 1]}",
        "path": path,
        "position": line,
        "original_position": line,
        "commit_id": review["commit_id"],
        "original_commit_id": review["commit_id"],
        "user": review["user"],
        "body": data.get("body") or "",
        "created_at": review["submitted_at"],
        "updated_at": review["submitted_at"],
        "html_url": html,
        "pull_request_url": pull_url,
        "author_association": review["author_association"],
        "_links": {
            "self": {"href": url},
            "html": {"href": html},
            "pull_request": {"href": pull_url},
        },
        "start_line": None,
        "original_start_line": None,
        "start_side": None,
        "line": line,
        "original_line": line,
        "side": "RIGHT",
        "subject_type": "line",
        "reactions": reactions(f"{url}/reactions"),
    }


def _association(repo: Repo, login: str) -> str:
    if login == repo.owner:
        return "OWNER"
    return "COLLABORATOR" if login in repo.collaborators else "NONE"


# -- what the REST API answers ---------------------------------------------------------------


def branch_json(repo: Repo, branch: str, sha: str) -> dict[str, Any]:
    """`GET /repos/{o}/{r}/branches/{branch}`: the branch's head commit."""
    fields = git(
        "log",
        "-1",
        "--format=%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%T%x00%P%x00%B",
        sha,
        cwd=repo.git.bare,
    ).split("\0")
    an, ae, ad, cn, ce, cd, tree, parents, message = fields
    commit_url = f"{repo.api_url}/commits/{sha}"
    protected = branch in repo.protected_branches
    required = list(repo.required_checks.get(branch, [])) if protected else []
    return {
        "name": branch,
        "commit": {
            "sha": sha,
            "node_id": node_id("C", len(sha) + abs(hash(sha)) % 10_000),
            "url": commit_url,
            "html_url": f"{repo.html_url}/commit/{sha}",
            "comments_url": f"{commit_url}/comments",
            "commit": {
                "url": f"{repo.api_url}/git/commits/{sha}",
                "author": {"name": an, "email": ae, "date": ad},
                "committer": {"name": cn, "email": ce, "date": cd},
                "message": message.strip(),
                "tree": {"sha": tree, "url": f"{repo.api_url}/git/trees/{tree}"},
                "comment_count": 0,
            },
            "author": None,
            "committer": None,
            "parents": [
                {
                    "sha": parent,
                    "url": f"{repo.api_url}/commits/{parent}",
                    "html_url": f"{repo.html_url}/commit/{parent}",
                }
                for parent in parents.split()
            ],
        },
        "_links": {
            "self": f"{repo.api_url}/branches/{branch}",
            "html": f"{repo.html_url}/tree/{branch}",
        },
        "protected": protected,
        # What GitHub shows of the protection to anyone who may read the repository:
        # the required checks' names (the full rules need administration read).
        "protection": {
            "enabled": protected,
            "required_status_checks": {
                "enforcement_level": "non_admins" if required else "off",
                "contexts": required,
                "checks": [{"context": name, "app_id": None} for name in required],
            },
        },
        "protection_url": f"{repo.api_url}/branches/{branch}/protection",
    }


def ref_json(repo: Repo, branch: str, sha: str) -> dict[str, Any]:
    """`GET /repos/{o}/{r}/git/ref/heads/{branch}`."""
    return {
        "ref": f"refs/heads/{branch}",
        "node_id": node_id("REF", abs(hash((repo.full_name, branch))) % 10_000_000),
        "url": f"{repo.api_url}/git/refs/heads/{branch}",
        "object": {"type": "commit", "sha": sha, "url": f"{repo.api_url}/git/commits/{sha}"},
    }


def register_pulls(app: Flask, hub: Any) -> None:

    state = hub.state

    def not_found() -> NoReturn:
        response, status = error(404, "Not Found")
        response.status_code = status
        abort(response)

    def readable(owner: str, name: str) -> Repo:
        repo = state.repo(owner, name)
        if repo is None or not state.may_read(g.get("token"), repo):
            not_found()
        return repo

    def pull_of(repo: Repo, number: int) -> dict[str, Any]:
        pull = repo.pulls.get(number)
        if pull is None:
            not_found()
        return pull

    # -- REST --------------------------------------------------------------------------

    @app.get("/repos/<owner>/<name>/pulls/<int:number>")
    def get_pull(owner: str, name: str, number: int) -> Any:
        repo = readable(owner, name)
        return jsonify(pull_request_json(repo, pull_of(repo, number)))

    @app.get("/repos/<owner>/<name>/pulls/<int:number>/reviews")
    def list_reviews(owner: str, name: str, number: int) -> Any:
        repo = readable(owner, name)
        pull_of(repo, number)
        return jsonify(_page(repo.reviews.get(number, [])))

    @app.get("/repos/<owner>/<name>/pulls/<int:number>/reviews/<int:review_id>/comments")
    def review_comments(owner: str, name: str, number: int, review_id: int) -> Any:
        repo = readable(owner, name)
        pull_of(repo, number)
        if not any(r["id"] == review_id for r in repo.reviews.get(number, [])):
            not_found()
        found = [
            c
            for c in repo.review_comments.get(number, [])
            if c["pull_request_review_id"] == review_id
        ]
        return jsonify(_page(found))

    @app.get("/repos/<owner>/<name>/pulls/<int:number>/comments")
    def pull_comments(owner: str, name: str, number: int) -> Any:
        repo = readable(owner, name)
        pull_of(repo, number)
        return jsonify(_page(repo.review_comments.get(number, [])))

    @app.get("/repos/<owner>/<name>/branches/<path:branch>")
    def get_branch(owner: str, name: str, branch: str) -> Any:
        repo = readable(owner, name)
        sha = repo.git.refs().get(branch)
        if sha is None:
            return error(404, "Branch not found")
        return jsonify(branch_json(repo, branch, sha))

    @app.get("/repos/<owner>/<name>/git/ref/<path:ref>")
    def get_ref(owner: str, name: str, ref: str) -> Any:
        repo = readable(owner, name)
        branch = ref.removeprefix("heads/")
        sha = repo.git.refs().get(branch) if ref.startswith("heads/") else None
        if sha is None:
            not_found()
        return jsonify(ref_json(repo, branch, sha))

    # -- what people (and hosted agents) do --------------------------------------------

    def person(action: Any) -> Any:
        try:
            with state.lock:
                return action()
        except Refused as refused:
            return jsonify(error=str(refused)), 422

    def admin_pull(owner: str, name: str, number: int) -> tuple[Repo, dict[str, Any]]:
        repo = state.repo(owner, name)
        if repo is None or number not in repo.pulls:
            raise KeyError(f"no pull request {owner}/{name}#{number}")
        return repo, repo.pulls[number]

    def actor() -> str:
        return (request.get_json(silent=True) or {}).get("user", "octocat")

    @app.post("/_admin/repos/<owner>/<name>/pulls/<int:number>/ready")
    def ready(owner: str, name: str, number: int) -> Any:
        repo, pull = admin_pull(owner, name, number)
        who = actor()
        return person(lambda: jsonify(pull_request_json(repo, mark_ready(hub, repo, pull, who))))

    @app.post("/_admin/repos/<owner>/<name>/pulls/<int:number>/close")
    def close(owner: str, name: str, number: int) -> Any:
        repo, pull = admin_pull(owner, name, number)
        who = actor()
        return person(lambda: jsonify(pull_request_json(repo, close_pull(hub, repo, pull, who))))

    @app.post("/_admin/repos/<owner>/<name>/pulls/<int:number>/reviews")
    def review(owner: str, name: str, number: int) -> Any:
        repo, pull = admin_pull(owner, name, number)
        data = request.get_json(silent=True) or {}
        return person(lambda: (jsonify(submit_review(hub, repo, pull, data)), 201))


def _page(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One page, as GitHub lists them (`per_page` up to 100, `page` from 1)."""
    per_page = min(int(request.args.get("per_page", 30)), 100)
    page = int(request.args.get("page", 1))
    return items[(page - 1) * per_page : page * per_page]
