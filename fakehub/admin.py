"""/_admin/: what tests and demos do as people, and what they read back."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from flask import Flask, jsonify, request

from fakehub.http import Refused
from fakehub.openapi import github_rest
from fakehub.state import Repo


def register_admin(app: Flask, hub: Any) -> None:
    state = hub.state

    def body() -> dict[str, Any]:
        return request.get_json(silent=True) or {}

    def repo(owner: str, name: str) -> Repo:
        found = state.repo(owner, name)
        if found is None:
            raise KeyError(f"no repository {owner}/{name}")
        return found

    @app.errorhandler(KeyError)
    def missing(error: KeyError) -> Any:
        return jsonify(error=str(error)), 404

    @app.post("/_admin/repos")
    def create_repo() -> Any:
        with state.lock:
            created = hub.create_repo(body())
            project = next((p for (o, _), p in state.projects.items() if o == created.owner), None)
        return jsonify(
            repository=created.json(),
            installation_id=created.installation_id,
            project_id=project.node_id if project else None,
        ), 201

    @app.post("/_admin/installations/<owner>")
    def install(owner: str) -> Any:
        """A person installs the App on some of the owner's repositories."""
        data = body()
        with state.lock:
            delivery_id = hub.install(owner, data["repositories"], data.get("user", "octocat"))
        return jsonify(delivery_id=delivery_id), 201

    @app.post("/_admin/repos/<owner>/<name>/commits")
    def commit(owner: str, name: str) -> Any:
        data = body()
        target = repo(owner, name)
        with state.lock:
            result = hub.commit(
                target,
                data.get("branch") or target.default_branch,
                data["files"],
                data.get("message", "Update"),
                data.get("user", "octocat"),
            )
        return jsonify(result), 201

    @app.post("/_admin/repos/<owner>/<name>/issues/<int:number>/<any(close, reopen):action>")
    def close_or_reopen(owner: str, name: str, number: int, action: str) -> Any:
        data = body()
        issue = repo(owner, name).issues[number]
        with state.lock:
            new_state = "closed" if action == "close" else "open"
            hub.set_issue_state(
                issue, new_state, data.get("state_reason"), data.get("user", "octocat")
            )
        return jsonify(issue.json())

    @app.post("/_admin/repos/<owner>/<name>/issues/<int:number>/comments")
    def comment(owner: str, name: str, number: int) -> Any:
        data = body()
        issue = repo(owner, name).issues[number]
        with state.lock:
            created = hub.add_comment(
                issue,
                data.get("user", "octocat"),
                data["body"],
                data.get("author_association", "NONE"),
            )
        return jsonify(created), 201

    @app.post("/_admin/repos/<owner>/<name>/pulls")
    def open_pull(owner: str, name: str) -> Any:

        try:
            with state.lock:
                pull = hub.person_opens_pull(repo(owner, name), body())
        except Refused as refused:
            return jsonify(error=str(refused)), 422
        return jsonify(pull), 201

    @app.post("/_admin/repos/<owner>/<name>/pulls/<int:number>/merge")
    def merge(owner: str, name: str, number: int) -> Any:
        from fakehub.pulls import mark_ready

        target, person = repo(owner, name), body().get("user", "octocat")
        try:
            with state.lock:
                if target.pulls[number].get("draft") and target.pulls[number]["state"] == "open":
                    # GitHub merges no draft: the person marks it ready first, as on github.com
                    mark_ready(hub, target, target.pulls[number], person)
                pull = hub.merge_pull(target, number, person)
        except Refused as refused:
            return jsonify(error=str(refused)), 405
        return jsonify(pull)

    @app.post("/_admin/repos/<owner>/<name>/check-runs/<int:run_id>/rerequest")
    def rerun_check(owner: str, name: str, run_id: int) -> Any:
        """A person presses Re-run on one check run."""

        target = repo(owner, name)
        run = target.check_run(run_id)
        if run is None:
            raise KeyError(f"no check run {run_id}")
        try:
            with state.lock:
                hub.rerequest_check_run(target, run, body().get("user", "octocat"))
        except Refused as refused:
            return jsonify(error=str(refused)), 422
        return jsonify({}), 201

    @app.post("/_admin/repos/<owner>/<name>/check-suites/<int:suite_id>/rerequest")
    def rerun_checks(owner: str, name: str, suite_id: int) -> Any:
        """A person presses Re-run all checks on a commit."""
        target = repo(owner, name)
        suite = target.check_suite(suite_id)
        if suite is None:
            raise KeyError(f"no check suite {suite_id}")
        with state.lock:
            hub.rerequest_check_suite(target, suite, body().get("user", "octocat"))
        return jsonify({}), 201

    @app.post("/_admin/orgs/<owner>/projects/<int:number>/items/<int:issue_number>/status")
    def move_card(owner: str, number: int, issue_number: int) -> Any:
        data = body()
        project = state.projects[(owner, number)]
        with state.lock:
            item = next(
                i
                for i in project.items.values()
                if (issue := state.issue_by_node(i["content"])) and issue.number == issue_number
            )
            hub.set_item_status(
                project.node_id,
                item["id"],
                project.field_node_id,
                project.options[data["status"]],
                data.get("user", "octocat"),
            )
        return jsonify(ok=True)

    @app.post("/_admin/orgs/<owner>/projects/<int:number>/workflows")
    def workflows(owner: str, number: int) -> Any:
        """A person turns a board's built-in workflows on or off ({"item_closed": true})."""
        from fakehub.state import BUILT_IN_WORKFLOWS

        project = state.projects.get((owner, number))
        if project is None:
            raise KeyError(f"no project {owner}/{number}")
        data = body()
        unknown = sorted(set(data) - set(BUILT_IN_WORKFLOWS))
        if unknown:
            return jsonify(error=f"no built-in workflow {', '.join(unknown)}"), 422
        with state.lock:
            for name, on in data.items():
                (project.workflows.add if on else project.workflows.discard)(name)
        return jsonify(workflows=sorted(project.workflows))

    @app.post("/_admin/limits")
    def limits() -> Any:
        with state.lock:
            hub.limits.update(body())
        return jsonify(vars(hub.limits))

    @app.get("/_admin/requests/summary")
    def requests_summary() -> Any:
        with state.lock:
            return jsonify(summarize(state.requests, hub.budgets.created, hub.budgets.refused))

    @app.get("/_admin/state")
    def read_state() -> Any:
        with state.lock:
            requests = list(state.requests)
            return jsonify(
                repositories=[_repo_state(state, r) for r in state.repos.values()],
                requests=requests,
                mismatches=[r for r in requests if r["mismatch"]],
                write_requests=sum(1 for r in requests if _is_write(r)),
            )

    @app.get("/_admin/deliveries")
    def deliveries() -> Any:
        """One entry per event: `id` is its guid, `status` its last attempt's status
        code (or `failed: ...`), `attempts` the ids of its attempts."""
        return jsonify(
            [
                {k: d[k] for k in ("id", "event", "action", "status", "payload", "attempts")}
                for d in list(hub.webhooks.deliveries)
            ]
        )

    @app.route("/_admin/webhook", methods=["GET", "POST"])
    def webhook() -> Any:
        """Where webhooks go, and how long the double waits for an answer: a URL
        nobody listens on takes the bot "down" (each delivery then fails)."""
        data = body()
        if "url" in data:
            hub.webhooks.url = data["url"]
        if "timeout" in data:
            hub.webhooks.timeout = float(data["timeout"])
        return jsonify(url=hub.webhooks.url, timeout=hub.webhooks.timeout)

    @app.post("/_admin/deliveries/<delivery_id>/redeliver")
    def redeliver(delivery_id: str) -> Any:
        hub.webhooks.redeliver(delivery_id)
        return jsonify(ok=True)

    @app.post("/_admin/wait")
    def wait() -> Any:
        hub.webhooks.wait()
        return jsonify(ok=True)

    @app.post("/_admin/reset")
    def reset() -> Any:
        with state.lock:
            state.requests.clear()
            hub.budgets.created.clear()
        return jsonify(ok=True)

    @app.post("/_admin/faults")
    def faults() -> Any:
        fault = {"count": 1, **body()}
        if "seconds" in fault:  # a window of time rather than a number of requests
            fault.update(count=0, until=time.time() + fault.pop("seconds"))
        with state.lock:
            state.faults.append(fault)
        return jsonify(ok=True), 201


def summarize(
    requests: list[dict[str, Any]], created: dict[str, int], refused: int = 0
) -> dict[str, Any]:
    """What benches count: requests by kind, mutations by name, content created, and
    what the limits refused (items past the budget in a request; requests answered
    403 or 429)."""
    rest: Counter[str] = Counter()
    graphql: Counter[str] = Counter()
    mutations: Counter[str] = Counter()
    for record in requests:
        if record["graphql"] is not None:
            graphql[record["graphql"]] += 1
            mutations.update(record.get("mutations") or [])
        else:
            rest[
                f"{record['method']} {github_rest().template(record['method'], record['path'])}"
            ] += 1
    return {
        "rest": dict(rest),
        "graphql": dict(graphql),
        "mutations": dict(mutations),
        "write_requests": sum(1 for r in requests if _is_write(r)),
        "content_created": sum(created.values()),
        "content_refused": refused,
        "requests_limited": sum(1 for r in requests if r["status"] in (403, 429)),
    }


def _is_write(record: dict[str, Any]) -> bool:
    if record["path"].startswith("/graphql"):
        return record["graphql"] == "mutation"
    return record["method"] != "GET"


def _repo_state(state: Any, repo: Repo) -> dict[str, Any]:
    items = []
    for project in state.projects.values():
        if project.owner != repo.owner:
            continue
        for item in project.items.values():
            issue = state.issue_by_node(item["content"])
            if issue is not None and issue.repo is repo:
                items.append(
                    {
                        "issue_number": issue.number,
                        "status": project.status_name(item["status"]),
                        "item_id": item["id"],
                        "history": item.get("history", []),
                        "project": project.number,
                    }
                )
    return {
        "full_name": repo.full_name,
        "clone_url": repo.clone_url,
        "issues": [
            {
                "number": i.number,
                "id": i.id,
                "node_id": i.node_id,
                "title": i.title,
                "body": i.body,
                "state": i.state,
                "state_reason": i.state_reason,
                "labels": i.labels,
                "assignees": i.assignees,
                "sub_issues": i.sub_issues,
                "blocked_by": i.blocked_by,
                "parent": i.parent,
            }
            for i in sorted(repo.issues.values(), key=lambda i: i.number)
            if not i.is_pull_request  # listed under pull_requests; their comments below
        ],
        "comments": {
            str(i.number): [
                {
                    "id": c["id"],
                    "user": c["user"]["login"],
                    "body": c["body"],
                    "reactions": [r["content"] for r in c.get("reaction_list", [])],
                }
                for c in i.comments
            ]
            for i in repo.issues.values()
        },
        "commit_comments": [
            {"commit_id": c["commit_id"], "body": c["body"]} for c in repo.commit_comments
        ],
        "project_items": items,
        "pull_requests": list(repo.pulls.values()),
        "check_runs": repo.check_runs,
        "check_suites": list(repo.check_suites.values()),
        "reviews": {str(n): reviews for n, reviews in repo.reviews.items()},
        "review_comments": {str(n): found for n, found in repo.review_comments.items()},
        "copilot": repo.copilot,
        "copilot_assignments": repo.copilot_assignments,
        "protected_branches": sorted(repo.protected_branches),
        "required_checks": repo.required_checks,
        "requested_reviewers": {str(n): asked for n, asked in repo.requested_reviewers.items()},
        "statuses": [
            {k: s[k] for k in ("sha", "context", "state", "description")} for s in repo.statuses
        ],
    }
