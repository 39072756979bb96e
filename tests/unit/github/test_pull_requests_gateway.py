"""The exact requests made about an agent's pull request (bot/github/pull_requests.py)."""

from __future__ import annotations

import json

import pytest
import responses
from responses import matchers

from bot.github import GitHubConnection, github_client
from bot.github.pull_requests import PullRequestGateway
from bot.settings import load_settings
from tests.support import MOCK_API, MOCK_GRAPHQL

REPO = f"{MOCK_API}/repos/octo/app"


@pytest.fixture
def pulls() -> PullRequestGateway:
    settings = load_settings(
        {
            "GITHUB_TOKEN": "t0ken",
            "GITHUB_API_URL": MOCK_API,
            "GITHUB_WRITE_INTERVAL": "0",
            "GITHUB_CONTENT_LIMITS": "none",
        }
    )
    connection: GitHubConnection = github_client(settings, None)
    return PullRequestGateway(connection, "octo/app")


def _run(run_id: int, name: str, status: str, conclusion: str | None, **output: str) -> dict:  # type: ignore[type-arg]
    return {
        "id": run_id,
        "name": name,
        "status": status,
        "conclusion": conclusion,
        "app": {"slug": "github-actions"},
        "output": {"title": None, "summary": None, "text": None, **output},
        "html_url": f"https://github.com/octo/app/runs/{run_id}",
    }


@responses.activate
def test_the_newest_run_of_each_name_and_the_newest_status_of_each_context(
    pulls: PullRequestGateway,
) -> None:
    responses.get(
        f"{REPO}/commits/abc/check-runs",
        json={
            "total_count": 3,
            "check_runs": [
                _run(3, "tests", "completed", "success"),
                _run(2, "lint", "in_progress", None),
                _run(1, "tests", "completed", "failure", text="E boom"),
            ],
        },
        match=[matchers.query_param_matcher({"filter": "latest", "per_page": "100", "page": "1"})],
    )
    responses.get(
        f"{REPO}/commits/abc/status",
        json={
            "state": "pending",
            "statuses": [
                {"context": "ci/jenkins", "state": "pending", "description": "building"},
                {"context": "deploy", "state": "error", "description": None, "target_url": "u"},
            ],
        },
        match=[matchers.query_param_matcher({"per_page": "100"})],
    )
    runs = {r.name: r for r in pulls.check_runs("abc")}
    assert (runs["tests"].conclusion, runs["tests"].run_id) == ("success", 3)
    assert runs["lint"].conclusion is None and runs["lint"].app == "github-actions"
    statuses = {s.name: (s.conclusion, s.title, s.kind) for s in pulls.statuses("abc")}
    assert statuses == {
        "ci/jenkins": (None, "building", "commit status"),
        "deploy": ("error", "", "commit status"),
    }


@responses.activate
def test_required_checks_as_the_branch_shows_them_to_any_reader(
    pulls: PullRequestGateway,
) -> None:
    responses.get(
        f"{REPO}/branches/main",
        json={
            "name": "main",
            "protected": True,
            "protection": {
                "enabled": True,
                "required_status_checks": {
                    "enforcement_level": "non_admins",
                    "contexts": ["tests", "ci/jenkins"],
                    "checks": [{"context": "tests", "app_id": 15368}, {"context": "e2e"}],
                },
            },
        },
    )
    responses.get(f"{REPO}/branches/gone", status=404, json={"message": "Branch not found"})
    assert pulls.required_checks("main") == ["tests", "ci/jenkins", "e2e"]
    assert pulls.required_checks("gone") == []


@responses.activate
def test_ready_for_review_and_reviewers_asked(pulls: PullRequestGateway) -> None:
    responses.post(
        MOCK_GRAPHQL,
        json={"data": {"markPullRequestReadyForReview": {"pullRequest": {"isDraft": False}}}},
    )
    responses.post(
        f"{REPO}/pulls/7/requested_reviewers",
        status=201,
        json={"number": 7},
        match=[matchers.json_params_matcher({"reviewers": ["ann"], "team_reviewers": ["core"]})],
    )
    pulls.mark_ready("PR_7")
    sent = json.loads(responses.calls[0].request.body)
    assert "markPullRequestReadyForReview" in sent["query"] and sent["variables"] == {"id": "PR_7"}
    assert pulls.request_reviewers(7, ["ann"], ["core"]) is None
    assert pulls.request_reviewers(7, [], []) is None  # nobody to ask: no request
    assert len(responses.calls) == 2


@responses.activate
def test_a_refused_reviewer_is_said_not_raised(pulls: PullRequestGateway) -> None:
    message = (
        "Reviews may only be requested from collaborators. One or more of the users or teams "
        "you specified is not a collaborator of the octo/app repository."
    )
    responses.post(f"{REPO}/pulls/7/requested_reviewers", status=422, json={"message": message})
    assert pulls.request_reviewers(7, ["stranger"], []) == message
