"""The double as GitHub is around an agent's pull request: a pull request is an issue too;
a board's "Item closed" workflow moves no card unless turned on; another CI's check runs
and commit statuses; the checks a protected branch requires; reviewers requested, by
a client or by GitHub for the code owners. State kept, webhooks and REST answers shaped
by GitHub's descriptions."""

from __future__ import annotations

from itertools import count
from typing import Any

import pytest
import requests

from fakehub import FakeHub
from tests.unit.double.shapes import (
    admin,
    deliveries,
    delivery_count,
    repo_state,
    rest_errors,
    webhook_errors,
)

_names = count()
CODEOWNERS = "# owners\n*.md @writer\n/src/ @acme/core @coder\n"


@pytest.fixture
def repo(hub: FakeHub) -> str:
    name = f"ci{next(_names)}"
    admin(
        hub,
        "POST",
        "repos",
        owner="acme",
        name=name,
        files={
            "README.md": "# app\n",
            "src/app.py": "print(1)\n",
            ".github/CODEOWNERS": CODEOWNERS,
        },
        collaborators={"writer": "write", "coder": "write", "reviewer": "write"},
        teams={"core": ["coder"]},
    ).raise_for_status()
    return f"acme/{name}"


def _api(hub: FakeHub, method: str, path: str, token: str = "t", **body: Any) -> requests.Response:
    return requests.request(
        method,
        f"{hub.url}/{path}",
        json=body or None,
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )


def _installation_token(hub: FakeHub, repo: str) -> str:
    installation = _api(hub, "GET", f"repos/{repo}/installation").json()["id"]
    return _api(hub, "POST", f"app/installations/{installation}/access_tokens").json()["token"]


def _pull(hub: FakeHub, repo: str, files: dict[str, str], draft: bool = True) -> dict[str, Any]:
    branch = f"specbridge/s/t{next(_names)}"
    admin(hub, "POST", f"repos/{repo}/commits", branch=branch, files=files).raise_for_status()
    created = _api(
        hub,
        "POST",
        f"repos/{repo}/pulls",
        token=_installation_token(hub, repo),
        title="T-1: do it",
        head=branch,
        base="main",
        body="Closes #1",
        draft=draft,
    )
    created.raise_for_status()
    return created.json()


def _sent(hub: FakeHub, since: int, event: str) -> list[dict[str, Any]]:
    found = [payload for name, payload in deliveries(hub, since) if name == event]
    for payload in found:
        assert webhook_errors(event, payload) == []
    return found


def test_a_pull_request_is_an_issue_its_comments_and_number_shared(hub: FakeHub, repo: str) -> None:
    issue = _api(hub, "POST", f"repos/{repo}/issues", title="An issue").json()
    pull = _pull(hub, repo, {"README.md": "# app, changed\n"})
    assert pull["number"] == issue["number"] + 1  # one numbering
    since = delivery_count(hub)

    # A person's comment on the pull request, through the admin route and through REST.
    said = admin(
        hub, "POST", f"repos/{repo}/issues/{pull['number']}/comments", user="writer", body="/x"
    )
    assert said.status_code == 201
    # The App comments with its installation token (a person's token comments as them).
    app_token = _installation_token(hub, repo)
    by_api = _api(
        hub, "POST", f"repos/{repo}/issues/{pull['number']}/comments", app_token, body="hello"
    )
    assert by_api.status_code == 201
    [person, bot] = _sent(hub, since, "issue_comment")
    assert person["issue"]["number"] == pull["number"]
    assert person["issue"]["pull_request"]["html_url"].endswith(f"/pull/{pull['number']}")
    assert person["comment"]["user"]["login"] == "writer"
    assert bot["comment"]["user"]["login"] == "specbridge[bot]"

    # REST reads it as the issue it also is; GraphQL's issue(number:) does not.
    as_issue = _api(hub, "GET", f"repos/{repo}/issues/{pull['number']}").json()
    assert as_issue["pull_request"]["url"].endswith(f"/pulls/{pull['number']}")
    assert as_issue["node_id"] == pull["node_id"]
    listed = _api(hub, "GET", f"repos/{repo}/issues").json()
    assert {i["number"] for i in listed} == {issue["number"], pull["number"]}
    comments = _api(hub, "GET", f"repos/{repo}/issues/{pull['number']}/comments").json()
    assert [c["body"] for c in comments] == ["/x", "hello"]
    owner, name = repo.split("/")
    query = 'query { repository(owner: "%s", name: "%s") { issue(number: %d) { id } } }'
    answer = _api(hub, "POST", "graphql", query=query % (owner, name, pull["number"])).json()
    assert answer["data"]["repository"]["issue"] is None

    # The state lists it under pull_requests, its comments with the others'.
    state = repo_state(hub, repo)
    assert [i["number"] for i in state["issues"]] == [issue["number"]]
    assert [c["body"] for c in state["comments"][str(pull["number"])]] == ["/x", "hello"]

    # Merged, the issue it is closes with it; a keyword naming it closes nothing.
    admin(hub, "POST", f"repos/{repo}/pulls/{pull['number']}/merge").raise_for_status()
    as_issue = _api(hub, "GET", f"repos/{repo}/issues/{pull['number']}").json()
    assert as_issue["state"] == "closed" and as_issue["pull_request"]["merged_at"]


def test_closing_the_issue_a_pull_request_is_closes_the_pull_request(
    hub: FakeHub, repo: str
) -> None:
    pull = _pull(hub, repo, {"README.md": "# closed through the issues API\n"})
    since = delivery_count(hub)
    closed = _api(hub, "PATCH", f"repos/{repo}/issues/{pull['number']}", state="closed")
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    assert _api(hub, "GET", f"repos/{repo}/pulls/{pull['number']}").json()["state"] == "closed"
    assert [
        (p["action"], p["pull_request"]["merged"]) for p in _sent(hub, since, "pull_request")
    ] == [("closed", False)]
    reopened = admin(hub, "POST", f"repos/{repo}/issues/{pull['number']}/reopen")
    assert reopened.json()["state"] == "open"
    assert _api(hub, "GET", f"repos/{repo}/pulls/{pull['number']}").json()["state"] == "open"


def test_no_card_moves_on_close_unless_the_item_closed_workflow_is_on(hub: FakeHub) -> None:
    name, board = f"board{next(_names)}", 200 + next(_names)
    admin(hub, "POST", "repos", owner="acme", name=name, project={"number": board})
    repo = f"acme/{name}"
    project = hub.state.projects[("acme", board)]
    issues = [_api(hub, "POST", f"repos/{repo}/issues", title=f"I{n}").json() for n in (1, 2)]
    for issue in issues:
        hub.add_project_item(project.node_id, issue["node_id"])
    admin(hub, "POST", f"repos/{repo}/issues/{issues[0]['number']}/close").raise_for_status()
    items = {i["issue_number"]: i for i in repo_state(hub, repo)["project_items"]}
    assert items[issues[0]["number"]]["history"] == []  # off: the card stays

    turned = admin(hub, "POST", f"orgs/acme/projects/{board}/workflows", item_closed=True)
    assert turned.json() == {"workflows": ["item_closed"]}
    since = delivery_count(hub)
    admin(hub, "POST", f"repos/{repo}/issues/{issues[1]['number']}/close").raise_for_status()
    items = {i["issue_number"]: i for i in repo_state(hub, repo)["project_items"]}
    assert items[issues[1]["number"]]["status"] == "Done"
    [moved] = _sent(hub, since, "projects_v2_item")
    assert moved["sender"]["login"] == "github-project-automation[bot]"
    assert moved["sender"]["type"] == "Bot"
    unknown = admin(hub, "POST", f"orgs/acme/projects/{board}/workflows", auto_add=True)
    assert unknown.status_code == 422


def test_another_ci_reports_check_runs_as_github_sends_them(hub: FakeHub, repo: str) -> None:
    pull = _pull(hub, repo, {"src/app.py": "print(2)\n"})
    sha = pull["head"]["sha"]
    since = delivery_count(hub)
    queued = admin(
        hub, "POST", f"repos/{repo}/check-runs", head_sha=sha, name="tests", status="queued"
    )
    assert queued.status_code == 201
    admin(
        hub, "POST", f"repos/{repo}/check-runs", head_sha=sha, name="lint", conclusion="success"
    ).raise_for_status()
    done = admin(
        hub,
        "POST",
        f"repos/{repo}/check-runs",
        head_sha=sha,
        name="tests",
        conclusion="failure",
        output={"title": "1 failed", "summary": "test_app failed", "text": "E assert 2 == 1"},
        annotations=[{"path": "src/app.py", "start_line": 1, "message": "expected 1"}],
    ).json()
    assert done["id"] == queued.json()["id"]  # the open run of that name completed
    runs = _sent(hub, since, "check_run")
    assert [(r["action"], r["check_run"]["name"]) for r in runs] == [
        ("created", "tests"),
        ("created", "lint"),
        ("completed", "lint"),
        ("completed", "tests"),
    ]
    assert {r["check_run"]["app"]["slug"] for r in runs} == {"github-actions"}
    assert runs[-1]["check_run"]["pull_requests"][0]["number"] == pull["number"]
    [suite] = _sent(hub, since, "check_suite")  # requested went to GitHub Actions only
    assert (suite["action"], suite["check_suite"]["conclusion"]) == ("completed", "failure")

    listed = _api(hub, "GET", f"repos/{repo}/commits/{sha}/check-runs").json()
    assert {r["name"]: r["conclusion"] for r in listed["check_runs"]} == {
        "tests": "failure",
        "lint": "success",
    }
    annotations = _api(hub, "GET", f"repos/{repo}/check-runs/{done['id']}/annotations").json()
    assert (
        rest_errors(
            "GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}/annotations", annotations
        )
        == []
    )
    assert [(a["path"], a["start_line"], a["message"]) for a in annotations] == [
        ("src/app.py", 1, "expected 1")
    ]
    run = _api(hub, "GET", f"repos/{repo}/check-runs/{done['id']}").json()
    assert run["output"]["text"] == "E assert 2 == 1"


def test_commit_statuses_and_the_combined_status(hub: FakeHub, repo: str) -> None:
    pull = _pull(hub, repo, {"src/app.py": "print(3)\n"})
    sha = pull["head"]["sha"]
    since = delivery_count(hub)
    for state in ("pending", "failure"):
        admin(
            hub,
            "POST",
            f"repos/{repo}/statuses/{sha}",
            context="ci/jenkins",
            state=state,
            description=f"build {state}",
        ).raise_for_status()
    created = _api(hub, "POST", f"repos/{repo}/statuses/{sha}", context="deploy", state="success")
    assert created.status_code == 201
    sent = _sent(hub, since, "status")
    assert [(s["context"], s["state"]) for s in sent] == [
        ("ci/jenkins", "pending"),
        ("ci/jenkins", "failure"),
        ("deploy", "success"),
    ]
    assert sent[0]["branches"][0]["name"] == pull["head"]["ref"]
    combined = _api(hub, "GET", f"repos/{repo}/commits/{sha}/status").json()
    assert rest_errors("GET", "/repos/{owner}/{repo}/commits/{ref}/status", combined) == []
    assert combined["state"] == "failure"
    assert {s["context"]: s["state"] for s in combined["statuses"]} == {
        "ci/jenkins": "failure",
        "deploy": "success",
    }
    refused = admin(hub, "POST", f"repos/{repo}/statuses/{sha}", context="x", state="green")
    assert refused.status_code == 422


def test_a_protected_branch_names_its_required_checks(hub: FakeHub, repo: str) -> None:
    unprotected = _api(hub, "GET", f"repos/{repo}/branches/main/protection")
    assert unprotected.status_code == 404
    admin(hub, "POST", f"repos/{repo}/protect", required_checks=["tests", "ci/jenkins"])
    branch = _api(hub, "GET", f"repos/{repo}/branches/main").json()
    assert branch["protection"]["required_status_checks"]["contexts"] == ["tests", "ci/jenkins"]
    # The full rules need administration read, which the App's default token lacks.
    app_token = _installation_token(hub, repo)
    denied = _api(hub, "GET", f"repos/{repo}/branches/main/protection", token=app_token)
    assert denied.status_code == 403
    protection = _api(hub, "GET", f"repos/{repo}/branches/main/protection").json()
    assert (
        rest_errors("GET", "/repos/{owner}/{repo}/branches/{branch}/protection", protection) == []
    )
    checks = _api(hub, "GET", f"repos/{repo}/branches/main/protection/required_status_checks")
    assert [c["context"] for c in checks.json()["checks"]] == ["tests", "ci/jenkins"]


def test_reviewers_requested_and_code_owners_asked_when_a_draft_is_ready(
    hub: FakeHub, repo: str
) -> None:
    pull = _pull(hub, repo, {"src/app.py": "print(4)\n", "docs/guide.md": "# guide\n"})
    number = pull["number"]
    path = f"repos/{repo}/pulls/{number}/requested_reviewers"
    assert _api(hub, "GET", path).json() == {"users": [], "teams": []}  # a draft asks no one

    since = delivery_count(hub)
    mark = "mutation($id: ID!) { markPullRequestReadyForReview(input: {pullRequestId: $id}) { pullRequest { isDraft } } }"  # noqa: E501
    token = _installation_token(hub, repo)
    answer = _api(
        hub, "POST", "graphql", token=token, query=mark, variables={"id": pull["node_id"]}
    )
    assert answer.json()["data"]["markPullRequestReadyForReview"]["pullRequest"]["isDraft"] is False
    sent = _sent(hub, since, "pull_request")
    assert sent[0]["action"] == "ready_for_review"
    asked = [
        (
            s["requested_reviewer"]["login"]
            if "requested_reviewer" in s
            else s["requested_team"]["slug"]
        )
        for s in sent[1:]
    ]
    assert asked == ["writer", "coder", "core"]  # *.md → @writer; src/ → @acme/core @coder

    since = delivery_count(hub)
    added = _api(hub, "POST", path, token=token, reviewers=["reviewer"])
    assert added.status_code == 201
    assert [u["login"] for u in added.json()["requested_reviewers"]] == [
        "writer",
        "coder",
        "reviewer",
    ]
    [requested] = _sent(hub, since, "pull_request")
    assert requested["requested_reviewer"]["login"] == "reviewer"
    stranger = _api(hub, "POST", path, token=token, reviewers=["mallory"])
    assert stranger.status_code == 422 and "not a collaborator" in stranger.json()["message"]
    author = _api(hub, "POST", path, token=token, reviewers=["specbridge[bot]"])
    assert author.status_code == 422

    admin(
        hub, "POST", f"repos/{repo}/pulls/{number}/reviews", user="reviewer", event="APPROVE"
    ).raise_for_status()
    now = _api(hub, "GET", path).json()
    assert [u["login"] for u in now["users"]] == ["writer", "coder"]
    assert [t["slug"] for t in now["teams"]] == ["core"]


def test_every_request_above_matched_githubs_description(hub: FakeHub) -> None:
    assert requests.get(f"{hub.url}/_admin/state", timeout=30).json()["mismatches"] == []
