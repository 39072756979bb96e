"""Who an issue is assigned to and how it is labelled, changed one by one as
GitHub's REST API changes them, each change with its `issues` webhook
(assigned, unassigned, labeled, unlabeled).

REST: `POST`/`DELETE /repos/{o}/{r}/issues/{n}/assignees` (Copilot among the
assignees goes through fakehub/copilot.py), `POST /repos/{o}/{r}/issues/{n}/labels`,
`DELETE /repos/{o}/{r}/issues/{n}/labels/{name}`.
"""

from __future__ import annotations

from typing import Any, NoReturn

from flask import Flask, abort, g, jsonify, request

from fakehub import copilot
from fakehub.actors import actor_of
from fakehub.http import Refused, check_label_names, error
from fakehub.state import COPILOT, Issue, now, user
from fakehub.webhooks import issue_payload


def add_assignees(hub: Any, issue: Issue, logins: list[str], actor: str) -> None:
    for login in logins:
        if login not in issue.assignees:
            issue.assignees.append(login)
            issue.updated_at = now()
            hub.send(
                "issues",
                issue.repo,
                actor,
                **issue_payload("assigned", issue, assignee=user(login)),
            )


def remove_assignees(hub: Any, issue: Issue, logins: list[str], actor: str) -> None:
    for login in logins:
        if login in issue.assignees:
            issue.assignees.remove(login)
            issue.updated_at = now()
            hub.send(
                "issues",
                issue.repo,
                actor,
                **issue_payload("unassigned", issue, assignee=user(login)),
            )


def add_labels(hub: Any, issue: Issue, names: list[str], actor: str) -> None:
    check_label_names(names)  # a name it does not know makes a label
    for name in names:
        if name not in issue.labels:
            issue.labels.append(name)
            issue.updated_at = now()
            _send_label(hub, issue, "labeled", issue.repo.label(name), actor)


def remove_label(hub: Any, issue: Issue, name: str, actor: str) -> None:
    issue.labels.remove(name)
    issue.updated_at = now()
    _send_label(hub, issue, "unlabeled", issue.repo.label(name), actor)


def _send_label(hub: Any, issue: Issue, action: str, label: dict[str, Any], actor: str) -> None:
    """`issues` labeled or unlabeled; of a pull request, GitHub sends `pull_request`."""
    if issue.is_pull_request:
        pull = issue.repo.pulls[issue.number]
        hub.send_pull_request(issue.repo, pull, action, actor, label=label)
    else:
        hub.send("issues", issue.repo, actor, **issue_payload(action, issue, label=label))


def assign_agent(hub: Any, issue: Issue, assignment: dict[str, Any], actor: str) -> None:
    """The agent (Copilot, or a partner agent) joins the issue's assignees (`issues`
    assigned) and the assignment is kept."""
    login = assignment.get("agent") or COPILOT["login"]
    already = login in issue.assignees
    add_assignees(hub, issue, [login], actor)
    if not already:
        issue.repo.copilot_assignments.append(
            {"issue": issue.number, "accepted": True, "assigned_at": now(), **assignment}
        )


def _names(items: list[Any], key: str) -> list[str]:
    """REST takes a login (or a label name) or an object naming it."""
    return [x if isinstance(x, str) else x[key] for x in items]


def register_assignees(app: Flask, hub: Any) -> None:
    state = hub.state

    def not_found() -> NoReturn:
        response, status = error(404, "Not Found")
        response.status_code = status
        abort(response)

    def issue_or_404(owner: str, name: str, number: int) -> Issue:
        repo = state.repo(owner, name)
        if repo is None or not state.may_read(g.get("token"), repo):
            not_found()
        issue = repo.issues.get(number)
        if issue is None:
            not_found()
        return issue

    @app.post("/repos/<owner>/<name>/issues/<int:number>/assignees")
    def assign(owner: str, name: str, number: int) -> Any:
        """People with push access are assigned, others silently left out, as on
        GitHub; Copilot only as fakehub/copilot.py allows."""
        issue = issue_or_404(owner, name, number)
        data = request.get_json(silent=True) or {}
        token = g.get("token")
        with state.lock:
            actor = actor_of(state, token)
            logins, assignment = copilot.take_from_rest(
                hub, issue.repo, _names(data.get("assignees") or [], "login"), data, token
            )
            add_assignees(hub, issue, logins, actor)
            if assignment is not None:
                assign_agent(hub, issue, assignment, actor)
            return jsonify(issue.json()), 201

    @app.delete("/repos/<owner>/<name>/issues/<int:number>/assignees")
    def unassign(owner: str, name: str, number: int) -> Any:
        issue = issue_or_404(owner, name, number)
        data = request.get_json(silent=True) or {}
        wanted = [copilot.rest_login(x) for x in data.get("assignees") or []]
        with state.lock:
            remove_assignees(hub, issue, wanted, actor_of(state, g.get("token")))
            return jsonify(issue.json())

    @app.post("/repos/<owner>/<name>/issues/<int:number>/labels")
    def label(owner: str, name: str, number: int) -> Any:
        issue = issue_or_404(owner, name, number)
        data = request.get_json(silent=True)
        items = data.get("labels") or [] if isinstance(data, dict) else data or []
        with state.lock:
            try:
                add_labels(hub, issue, _names(items, "name"), actor_of(state, g.get("token")))
            except Refused as refused:
                return error(422, "Validation Failed", errors=[{"message": str(refused)}])
            return jsonify([issue.repo.label(n) for n in issue.labels])

    @app.delete("/repos/<owner>/<name>/issues/<int:number>/labels/<path:label_name>")
    def unlabel(owner: str, name: str, number: int, label_name: str) -> Any:
        issue = issue_or_404(owner, name, number)
        if label_name not in issue.labels:
            return error(404, "Label does not exist")
        with state.lock:
            remove_label(hub, issue, label_name, actor_of(state, g.get("token")))
            return jsonify([issue.repo.label(n) for n in issue.labels])
