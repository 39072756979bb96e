"""/_admin/ routes for what people do beyond the ones in admin.py: a person's own
token (for the APIs GitHub opens only to user tokens, such as assigning Copilot),
an issue opened or edited by a person, a sub-issue added or removed by a person."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request

from fakehub.http import Refused, TooQuickly
from fakehub.state import Issue, new_id


def register_people(app: Flask, hub: Any) -> None:
    state = hub.state

    def body() -> dict[str, Any]:
        return request.get_json(silent=True) or {}

    @app.post("/_admin/tokens")
    def user_token() -> Any:
        """A token of `user`, as a personal access token (`ghp_`) or, with
        `"kind": "user-to-server"`, a GitHub App user-to-server token (`ghu_`)."""
        data = body()
        login = data["user"]
        prefix = "ghu_" if data.get("kind") == "user-to-server" else "ghp_"
        token = f"{prefix}fake{new_id()}"
        with state.lock:
            state.user_tokens[token] = login
        return jsonify(token=token, user=login), 201

    def person_does(action: Any) -> Any:

        try:
            with state.lock:
                return action()
        except TooQuickly as refused:
            return jsonify(error=str(refused)), 403
        except Refused as refused:
            return jsonify(error=str(refused)), 422

    def issue_of(owner: str, name: str, number: int) -> Issue:
        repo = state.repo(owner, name)
        if repo is None or number not in repo.issues:
            raise KeyError(f"no issue {owner}/{name}#{number}")
        return repo.issues[number]

    @app.post("/_admin/repos/<owner>/<name>/issues")
    def open_issue(owner: str, name: str) -> Any:
        """A person opens an issue: `issues` opened, sent by them."""
        data = body()
        repo = state.repo(owner, name)
        if repo is None:
            raise KeyError(f"no repository {owner}/{name}")
        login = data.get("user", "octocat")

        def create() -> Any:
            issue = hub.create_issue(
                repo,
                data["title"],
                data.get("body"),
                f"person:{login}",
                labels=data.get("labels"),
                assignees=data.get("assignees"),
                author=login,
            )
            return jsonify(issue.json()), 201

        return person_does(create)

    @app.post("/_admin/repos/<owner>/<name>/issues/<int:number>/edit")
    def edit_issue(owner: str, name: str, number: int) -> Any:
        """A person edits an issue's title or body: `issues` edited with `changes`."""
        data = body()
        issue = issue_of(owner, name, number)
        changes = {key: data[key] for key in ("title", "body") if key in data}

        def edit() -> Any:
            hub.edit_issue(issue, changes, data.get("user", "octocat"))
            return jsonify(issue.json())

        return person_does(edit)

    @app.route(
        "/_admin/repos/<owner>/<name>/issues/<int:number>/sub_issues", methods=["POST", "DELETE"]
    )
    def sub_issue(owner: str, name: str, number: int) -> Any:
        """A person adds (or removes) a sub-issue: `sub_issues` sub_issue_added and
        parent_issue_added (or _removed)."""
        data = body()
        parent = issue_of(owner, name, number)
        child = issue_of(owner, name, int(data["sub_issue_number"]))
        login = data.get("user", "octocat")
        adding = request.method == "POST"

        def change() -> Any:
            if adding:
                hub.add_sub_issue(parent, child, bool(data.get("replace_parent")))
            else:
                hub.remove_sub_issue(parent, child)
            send_sub_issue_events(hub, parent, child, "added" if adding else "removed", login)
            return jsonify(parent.json()), 201 if adding else 200

        return person_does(change)


def send_sub_issue_events(hub: Any, parent: Issue, child: Issue, change: str, actor: str) -> None:
    """GitHub tells of a sub-issue twice: to the parent (`sub_issue_added`) and to the
    child (`parent_issue_added`); both about the same repository here."""
    shown_parent, shown_child = parent.json(), child.json()
    hub.send(
        "sub_issues",
        parent.repo,
        actor,
        action=f"sub_issue_{change}",
        parent_issue_id=parent.id,
        parent_issue=shown_parent,
        sub_issue_id=child.id,
        sub_issue=shown_child,
        sub_issue_repo=child.repo.json(),
    )
    hub.send(
        "sub_issues",
        child.repo,
        actor,
        action=f"parent_issue_{change}",
        sub_issue_id=child.id,
        sub_issue=shown_child,
        parent_issue_id=parent.id,
        parent_issue=shown_parent,
        parent_issue_repo=parent.repo.json(),
    )
