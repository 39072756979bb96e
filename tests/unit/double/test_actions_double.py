"""The double's GitHub Actions: `workflow_dispatch` checked against the workflow file as
GitHub checks it, and the run's `workflow_run` events (requested, in_progress,
completed) shaped by GitHub's descriptions, with a test deciding the outcome."""

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
    rest_errors,
    webhook_errors,
)

_names = count()
WORKFLOW = """\
name: Agent
on:
  workflow_dispatch:
    inputs:
      prompt: {required: true, type: string}
      effort: {required: false, type: string}
jobs: {}
"""


@pytest.fixture
def repo(hub: FakeHub) -> str:
    name = f"actions{next(_names)}"
    admin(
        hub,
        "POST",
        "repos",
        owner="acme",
        name=name,
        files={
            ".github/workflows/agent.yml": WORKFLOW,
            ".github/workflows/ci.yml": "name: CI\non: [push]\njobs: {}\n",
        },
    ).raise_for_status()
    return f"acme/{name}"


def _token(hub: FakeHub, repo: str) -> str:
    api = f"{hub.url}/repos/{repo}/installation"
    installation = requests.get(api, timeout=30, headers={"Authorization": "token t"}).json()
    return requests.post(
        f"{hub.url}/app/installations/{installation['id']}/access_tokens",
        timeout=30,
        headers={"Authorization": "token t"},
    ).json()["token"]


def _dispatch(hub: FakeHub, repo: str, workflow: str, **body: Any) -> requests.Response:
    return requests.post(
        f"{hub.url}/repos/{repo}/actions/workflows/{workflow}/dispatches",
        json=body,
        headers={"Authorization": f"token {_token(hub, repo)}"},
        timeout=30,
    )


def _runs(hub: FakeHub, repo: str) -> list[dict[str, Any]]:
    return admin(hub, "GET", f"repos/{repo}/actions/runs").json()["runs"]


def test_a_dispatch_starts_a_run_and_a_test_decides_how_it_ends(hub: FakeHub, repo: str) -> None:
    since = delivery_count(hub)
    answer = _dispatch(
        hub, repo, "agent.yml", ref="main", inputs={"prompt": "Do it"}, return_run_details=True
    )
    assert answer.status_code == 200
    details = answer.json()
    run_id = details["workflow_run_id"]
    assert details["html_url"] == f"https://github.com/{repo}/actions/runs/{run_id}"
    [run] = _runs(hub, repo)
    assert (run["id"], run["inputs"], run["status"]) == (run_id, {"prompt": "Do it"}, "queued")

    admin(hub, "POST", f"repos/{repo}/actions/runs/{run_id}", status="in_progress")
    admin(hub, "POST", f"repos/{repo}/actions/runs/{run_id}", conclusion="failure")
    sent = [(p["action"], p) for e, p in deliveries(hub, since) if e == "workflow_run"]
    assert [action for action, _ in sent] == ["requested", "in_progress", "completed"]
    for _, payload in sent:
        assert webhook_errors("workflow_run", payload) == []
        assert payload["workflow_run"]["id"] == run_id
        assert payload["workflow_run"]["event"] == "workflow_dispatch"
        assert payload["workflow"]["path"] == ".github/workflows/agent.yml"
    assert sent[-1][1]["workflow_run"]["conclusion"] == "failure"
    # A completed run completes once.
    again = admin(hub, "POST", f"repos/{repo}/actions/runs/{run_id}", conclusion="success")
    assert again.status_code == 422

    # A completed run cannot be cancelled; a queued one can.
    cancel = f"{hub.url}/repos/{repo}/actions/runs/{run_id}/cancel"
    headers = {"Authorization": f"token {_token(hub, repo)}"}
    assert requests.post(cancel, headers=headers, timeout=30).status_code == 409
    second = _dispatch(
        hub, repo, "agent.yml", ref="main", inputs={"prompt": "x"}, return_run_details=True
    ).json()["workflow_run_id"]
    cancel = f"{hub.url}/repos/{repo}/actions/runs/{second}/cancel"
    assert requests.post(cancel, headers=headers, timeout=30).status_code == 202
    assert [r["conclusion"] for r in _runs(hub, repo)] == ["failure", "cancelled"]

    # Without `return_run_details`: 204, no body.
    assert _dispatch(hub, repo, "agent.yml", ref="main", inputs={"prompt": "x"}).status_code == 204


@pytest.mark.parametrize(
    ("workflow", "body", "status", "message"),
    [
        ("missing.yml", {"ref": "main"}, 404, "Not Found"),
        ("ci.yml", {"ref": "main"}, 422, "does not have 'workflow_dispatch' trigger"),
        ("agent.yml", {"ref": "nope", "inputs": {"prompt": "x"}}, 422, "No ref found for: nope"),
        ("agent.yml", {"ref": "main", "inputs": {}}, 422, "Required input 'prompt'"),
        (
            "agent.yml",
            {"ref": "main", "inputs": {"prompt": "x", "colour": "red"}},
            422,
            'Unexpected inputs provided: ["colour"]',
        ),
        (
            "agent.yml",
            {"ref": "main", "inputs": {"prompt": "x" * 70_000}},
            422,
            "inputs are too large",
        ),
    ],
)
def test_a_dispatch_github_would_refuse_is_refused(
    hub: FakeHub, repo: str, workflow: str, body: dict[str, Any], status: int, message: str
) -> None:
    answer = _dispatch(hub, repo, workflow, **body)
    assert answer.status_code == status
    assert message in answer.json()["message"]
    assert _runs(hub, repo) == []


def test_a_persons_token_comments_as_that_person(hub: FakeHub, repo: str) -> None:
    issue = admin(hub, "POST", f"repos/{repo}/issues", title="An issue", user="octocat").json()
    person = admin(hub, "POST", "tokens", user="writer").json()["token"]
    said = requests.post(
        f"{hub.url}/repos/{repo}/issues/{issue['number']}/comments",
        json={"body": "@copilot please"},
        headers={"Authorization": f"token {person}"},
        timeout=30,
    )
    assert said.status_code == 201 and said.json()["user"]["login"] == "writer"


# -- the agent tasks API -----------------------------------------------------------------


def test_an_agent_task_is_started_with_a_persons_token_only(hub: FakeHub) -> None:
    name = f"tasks{next(_names)}"
    admin(hub, "POST", "repos", owner="acme", name=name, copilot=True).raise_for_status()
    repo = f"acme/{name}"
    url = f"{hub.url}/agents/repos/{repo}/tasks"
    body = {"prompt": "Fix the login button\nand test it", "base_ref": "main"}

    refused = requests.post(
        url, json=body, headers={"Authorization": f"token {_token(hub, repo)}"}, timeout=30
    )
    assert refused.status_code == 403
    assert "Server-to-server tokens" in refused.json()["message"]

    person = {"Authorization": f"token {admin(hub, 'POST', 'tokens', user='mona').json()['token']}"}
    created = requests.post(url, json=body, headers=person, timeout=30)
    assert created.status_code == 201
    task = created.json()
    assert rest_errors("POST", "/agents/repos/{owner}/{repo}/tasks", task, "201") == []
    assert task["state"] == "queued" and task["name"] == "Fix the login button"
    listed = requests.get(url, headers=person, timeout=30).json()
    assert [t["id"] for t in listed["tasks"]] == [task["id"]]

    moved = admin(hub, "POST", f"repos/{repo}/agent-tasks/{task['id']}", state="in_progress")
    assert moved.json()["state"] == "in_progress"
    missing = requests.post(url, json={}, headers=person, timeout=30)
    assert missing.status_code == 422
