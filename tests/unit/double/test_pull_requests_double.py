# ruff: noqa: F811 - the fixtures of test_fakehub.py, imported to be shared
"""The double's pull requests (opened by a person, synchronized by a commit) and
check runs, as GitHub has them: webhooks shaped like GitHub's, annotations
appended per request, at most 50 per request."""

from __future__ import annotations

import json

import requests

from bot.github import GitHubConnection, RepositoryGateway
from bot.github.checks import Annotation, ChecksGateway
from fakehub import FakeHub
from tests.unit.double.test_fakehub import (  # noqa: F401 - fixtures
    Receiver,
    _validator,
    client,
    hub,
    receiver,
    repo,
)


def _admin(hub: FakeHub, path: str, **body: object) -> dict:  # type: ignore[type-arg]
    response = requests.post(f"{hub.url}/_admin/{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def _received(hub: FakeHub, receiver: Receiver) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    requests.post(f"{hub.url}/_admin/wait", timeout=60)
    return [(d["headers"]["X-GitHub-Event"], json.loads(d["body"])) for d in receiver.received]


def test_a_person_opens_a_pull_request_and_pushes_to_it(
    hub: FakeHub, receiver: Receiver, repo: str
) -> None:
    _admin(hub, f"repos/{repo}/commits", branch="feature", files={"specs/c.yaml": "title: C\n"})
    receiver.received.clear()
    pull = _admin(hub, f"repos/{repo}/pulls", head="feature", base="main", title="C", user="mona")
    fork = _admin(
        hub,
        f"repos/{repo}/pulls",
        head="feature",
        base="main",
        title="C from a fork",
        user="stranger",
        head_repo_fork=True,
    )
    pushed = _admin(hub, f"repos/{repo}/commits", branch="feature", files={"x": "y"})

    pulls = [(e, p) for e, p in _received(hub, receiver) if e == "pull_request"]
    for _, payload in pulls:
        errors = [
            e.message for e in _validator("pull_request", payload["action"]).iter_errors(payload)
        ]
        assert errors == []
    assert [(p["action"], p["number"]) for _, p in pulls] == [
        ("opened", pull["number"]),
        ("opened", fork["number"]),
        ("synchronize", pull["number"]),
        ("synchronize", fork["number"]),
    ]
    opened_from_fork = pulls[1][1]["pull_request"]
    assert opened_from_fork["head"]["repo"]["fork"] is True
    assert opened_from_fork["head"]["repo"]["full_name"] == f"stranger/{repo.split('/')[1]}"
    assert pulls[2][1]["after"] == pushed["sha"] == pulls[2][1]["pull_request"]["head"]["sha"]


def test_check_runs_keep_every_page_of_annotations(
    hub: FakeHub, client: GitHubConnection, repo: str
) -> None:
    gateway = RepositoryGateway(client, repo)
    sha = gateway.commit_sha("main")
    checks = ChecksGateway(client, repo)
    run = checks.start("specbridge", sha, "Checking", "…")
    assert [r.status for r in checks.runs_for(sha, "specbridge")] == ["in_progress"]
    found = [Annotation("specs/a.yaml", n, 1, "failure", f"problem {n}") for n in range(1, 121)]

    checks.complete(run.id, "failure", "120 errors", "summary", found)

    [state] = [
        r
        for r in requests.get(f"{hub.url}/_admin/state", timeout=30).json()["repositories"]
        if r["full_name"] == repo
    ]
    [kept] = state["check_runs"]
    assert (kept["status"], kept["conclusion"]) == ("completed", "failure")
    assert [a["start_line"] for a in kept["annotations"]] == list(range(1, 121))
    assert [r.conclusion for r in checks.runs_for(sha, "specbridge")] == ["failure"]


def test_more_than_50_annotations_in_one_request_is_refused(
    hub: FakeHub, client: GitHubConnection, repo: str
) -> None:
    sha = RepositoryGateway(client, repo).commit_sha("main")
    annotation = Annotation("specs/a.yaml", 1, 1, "failure", "x").json()
    url = f"{hub.url}/repos/{repo}/check-runs"
    body = {
        "name": "specbridge",
        "head_sha": sha,
        "output": {"title": "t", "summary": "s", "annotations": [annotation] * 51},
    }
    created = requests.post(url, json=body, headers={"Authorization": "token t"}, timeout=30)
    assert created.status_code == 422
    run = requests.post(
        url, json={"name": "specbridge", "head_sha": sha}, headers={"Authorization": "token t"}
    ).json()
    patched = requests.patch(
        f"{url}/{run['id']}", json={"output": body["output"]}, headers={"Authorization": "token t"}
    )
    assert patched.status_code == 422
