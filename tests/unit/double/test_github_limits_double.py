# ruff: noqa: F811 - the fixtures of test_fakehub.py, imported to be shared
"""What github.com accepts and refuses, as the double does: a comparison of branches
whose names hold `/`, the labels of a pull request, and GitHub's limits on a label's
name (50 characters) and on a body (65,536 characters)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from bot.github import GitHubConnection, RepositoryGateway
from bot.github.issues import IssueWriter
from fakehub import FakeHub
from tests.unit.double.shapes import admin, deliveries, delivery_count, rest_errors
from tests.unit.double.test_fakehub import (  # noqa: F401 - fixtures
    client,
    hub,
    receiver,
    repo,
)

AUTH = {"Authorization": "token t"}
LONGEST_LABEL = "l" * 50
LONGEST_BODY = "b" * 65_536


def _post(hub: FakeHub, path: str, body: Any) -> requests.Response:
    return requests.post(f"{hub.url}{path}", json=body, headers=AUTH, timeout=30)


def _refused_for(response: requests.Response) -> str:
    assert response.status_code == 422, response.text
    assert response.json()["message"] == "Validation Failed"
    return str(response.json()["errors"][0]["message"])


def test_branches_whose_names_hold_a_slash_are_compared(
    hub: FakeHub, client: GitHubConnection, repo: str
) -> None:
    branch = "specbridge/spec/task"
    admin(hub, "POST", f"repos/{repo}/commits", branch=branch, files={"x": "y"}).raise_for_status()
    gateway = RepositoryGateway(client, repo)
    # The gateway asks with the name quoted (%2F); GitHub takes it raw too.
    assert gateway.compare_commits("main", branch) == "ahead"
    assert gateway.compare_commits(branch, "main") == "behind"
    raw = requests.get(f"{hub.url}/repos/{repo}/compare/main...{branch}", headers=AUTH, timeout=30)
    assert raw.status_code == 200
    assert (raw.json()["ahead_by"], raw.json()["behind_by"]) == (1, 0)
    missing = requests.get(f"{hub.url}/repos/{repo}/compare/main...no/such", timeout=30)
    assert missing.status_code == 404


def test_a_pull_request_carries_its_labels_and_their_webhooks_are_pull_requests(
    hub: FakeHub, repo: str
) -> None:
    admin(hub, "POST", f"repos/{repo}/commits", branch="labelled", files={"x": "y"})
    pull = admin(hub, "POST", f"repos/{repo}/pulls", head="labelled", base="main", title="L")
    number = pull.json()["number"]
    since = delivery_count(hub)

    labelled = _post(hub, f"/repos/{repo}/issues/{number}/labels", {"labels": ["needs: review"]})

    assert labelled.status_code == 200
    got = requests.get(f"{hub.url}/repos/{repo}/pulls/{number}", headers=AUTH, timeout=30).json()
    assert [label["name"] for label in got["labels"]] == ["needs: review"]
    assert rest_errors("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", got) == []
    listed = requests.get(f"{hub.url}/repos/{repo}/pulls", headers=AUTH, timeout=30).json()
    assert [label["name"] for p in listed for label in p["labels"]] == ["needs: review"]
    # GitHub tells of a pull request's label as `pull_request` labeled, not `issues`.
    sent = [(event, payload.get("action")) for event, payload in deliveries(hub, since)]
    assert sent == [("pull_request", "labeled")]


def test_a_label_name_longer_than_50_characters_is_refused(
    hub: FakeHub, client: GitHubConnection, repo: str
) -> None:
    too_long = LONGEST_LABEL + "x"
    issue = _post(hub, f"/repos/{repo}/issues", {"title": "t", "labels": [LONGEST_LABEL]})
    assert issue.status_code == 201  # 50 is allowed
    number = issue.json()["number"]
    refused = "name is too long (maximum is 50 characters)"
    # REST makes a label it does not know as it labels: not one this long.
    made_with = _post(hub, f"/repos/{repo}/issues", {"title": "t", "labels": [too_long]})
    assert _refused_for(made_with) == refused
    assert (
        _refused_for(_post(hub, f"/repos/{repo}/issues/{number}/labels", {"labels": [too_long]}))
        == refused
    )
    patched = requests.patch(
        f"{hub.url}/repos/{repo}/issues/{number}", json={"labels": [too_long]}, headers=AUTH
    )
    assert _refused_for(patched) == refused
    # GraphQL's createLabel, as the sync makes its labels.
    writer = IssueWriter(client, repo)
    repository_id, _ = writer.repository_and_labels([])
    made = writer.create_labels(repository_id, ["short", too_long])
    assert set(made.done) == {"short"}
    assert refused in made.failed[too_long]


@pytest.mark.parametrize(
    "path",
    ["/issues", "/issues/{number}/comments", "/pulls", "/commits/{sha}/comments"],
)
def test_a_body_longer_than_65536_characters_is_refused(
    hub: FakeHub, client: GitHubConnection, repo: str, path: str
) -> None:
    admin(hub, "POST", f"repos/{repo}/commits", branch="long", files={"x": "y"})
    number = _post(hub, f"/repos/{repo}/issues", {"title": "t"}).json()["number"]
    sha = RepositoryGateway(client, repo).commit_sha("main")
    url = f"/repos/{repo}" + path.format(number=number, sha=sha)
    fields = {
        "/issues": {"title": "t"},
        "/pulls": {"title": "t", "head": "long", "base": "main"},
    }.get(path, {})

    refused = _post(hub, url, {**fields, "body": LONGEST_BODY + "b"})

    assert _refused_for(refused) == "body is too long (maximum is 65536 characters)"
    assert _post(hub, url, {**fields, "body": LONGEST_BODY}).status_code == 201
