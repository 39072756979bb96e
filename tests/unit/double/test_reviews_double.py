"""The double's pull requests as a hosted agent makes them (a draft, marked ready,
closed or merged) and the reviews people leave on them: state kept, webhooks
shaped like GitHub's, REST answers shaped by GitHub's description."""

from __future__ import annotations

import base64
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


@pytest.fixture
def repo(hub: FakeHub) -> str:
    name = f"pr{next(_names)}"
    admin(
        hub,
        "POST",
        "repos",
        owner="acme",
        name=name,
        files={"app.py": "print('hello')\n", "README.md": "# app\n"},
    ).raise_for_status()
    return f"acme/{name}"


def _get(hub: FakeHub, path: str, **params: Any) -> requests.Response:
    return requests.get(
        f"{hub.url}/{path}", params=params, headers={"Authorization": "token t"}, timeout=30
    )


def _issue(hub: FakeHub, repo: str, title: str) -> int:
    response = requests.post(
        f"{hub.url}/repos/{repo}/issues",
        json={"title": title},
        headers={"Authorization": "token t"},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["number"]


def _agent_pull(hub: FakeHub, repo: str, body: str, branch: str = "copilot/fix-it") -> dict:  # type: ignore[type-arg]
    """What Copilot does: a branch with a commit, then a draft pull request naming the issue."""
    admin(
        hub,
        "POST",
        f"repos/{repo}/commits",
        branch=branch,
        files={"app.py": "print('hello')\nprint('fixed')\n"},
        user="Copilot",
    ).raise_for_status()
    response = admin(
        hub,
        "POST",
        f"repos/{repo}/pulls",
        head=branch,
        base="main",
        title="Fix it",
        body=body,
        draft=True,
        user="Copilot",
    )
    response.raise_for_status()
    return response.json()


def _all_shaped(sent: list[tuple[str, dict[str, Any]]]) -> None:
    for event, payload in sent:
        assert webhook_errors(event, payload) == [], (event, payload.get("action"))


def test_a_draft_is_marked_ready_then_merged_and_closes_the_issue_it_fixes(
    hub: FakeHub, repo: str
) -> None:
    number = _issue(hub, repo, "Broken")
    other = _issue(hub, repo, "Also broken")
    since = delivery_count(hub)
    pull = _agent_pull(hub, repo, f"Fixes #{number}\n\nresolves: #{other}")
    shown = _get(hub, f"repos/{repo}/pulls/{pull['number']}").json()
    assert (shown["draft"], shown["state"], shown["merged"]) == (True, "open", False)
    assert shown["body"].startswith(f"Fixes #{number}")
    assert shown["user"]["login"] == "Copilot" and shown["user"]["type"] == "Bot"
    assert rest_errors("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", shown) == []

    admin(hub, "POST", f"repos/{repo}/pulls/{pull['number']}/ready", user="Copilot")
    merged = admin(hub, "POST", f"repos/{repo}/pulls/{pull['number']}/merge", user="mona")
    again = admin(hub, "POST", f"repos/{repo}/pulls/{pull['number']}/merge", user="mona")

    assert merged.status_code == 200
    assert again.status_code == 405  # GitHub: "Pull Request is not mergeable"
    sent = deliveries(hub, since)
    _all_shaped(sent)
    pulls = [(p["action"], p["pull_request"]) for e, p in sent if e == "pull_request"]
    assert [a for a, _ in pulls] == ["opened", "ready_for_review", "closed"]
    assert pulls[0][1]["draft"] is True and pulls[1][1]["draft"] is False
    closed = pulls[2][1]
    assert (closed["merged"], closed["state"], closed["merged_by"]["login"]) == (
        True,
        "closed",
        "mona",
    )
    assert closed["merge_commit_sha"] == merged.json()["merge_commit_sha"]
    issues = [(p["action"], p["issue"]["number"]) for e, p in sent if e == "issues"]
    assert issues == [("closed", number), ("closed", other)]
    shown = _get(hub, f"repos/{repo}/pulls/{pull['number']}").json()
    assert (shown["state"], shown["merged"], shown["draft"]) == ("closed", True, False)


def test_a_person_merging_a_draft_marks_it_ready_first(hub: FakeHub, repo: str) -> None:
    pull = _agent_pull(hub, repo, "")
    since = delivery_count(hub)

    admin(hub, "POST", f"repos/{repo}/pulls/{pull['number']}/merge", user="mona")

    sent = deliveries(hub, since)
    _all_shaped(sent)
    assert [p["action"] for e, p in sent if e == "pull_request"] == ["ready_for_review", "closed"]


def test_a_pull_request_closed_without_merging_closes_no_issue(hub: FakeHub, repo: str) -> None:
    number = _issue(hub, repo, "Broken")
    pull = _agent_pull(hub, repo, f"Closes #{number}")
    since = delivery_count(hub)

    closed = admin(hub, "POST", f"repos/{repo}/pulls/{pull['number']}/close", user="mona")
    again = admin(hub, "POST", f"repos/{repo}/pulls/{pull['number']}/close", user="mona")

    assert closed.status_code == 200 and again.status_code == 422
    sent = deliveries(hub, since)
    _all_shaped(sent)
    assert [(e, p["action"], p["pull_request"]["merged"]) for e, p in sent] == [
        ("pull_request", "closed", False)
    ]
    [issue] = [i for i in repo_state(hub, repo)["issues"] if i["number"] == number]
    assert issue["state"] == "open"


def test_a_merge_into_another_branch_closes_nothing(hub: FakeHub, repo: str) -> None:
    number = _issue(hub, repo, "Broken")
    admin(hub, "POST", f"repos/{repo}/commits", branch="release", files={"r": "r"})
    admin(hub, "POST", f"repos/{repo}/commits", branch="topic", files={"t": "t"})
    pull = admin(
        hub,
        "POST",
        f"repos/{repo}/pulls",
        head="topic",
        base="release",
        title="t",
        body=f"Fixes #{number}",
    ).json()

    admin(hub, "POST", f"repos/{repo}/pulls/{pull['number']}/merge")

    [issue] = [i for i in repo_state(hub, repo)["issues"] if i["number"] == number]
    assert issue["state"] == "open"


def test_a_review_with_line_comments_is_kept_sent_and_listed(hub: FakeHub, repo: str) -> None:
    pull = _agent_pull(hub, repo, "Fixes nothing")
    head = _get(hub, f"repos/{repo}/pulls/{pull['number']}").json()["head"]["sha"]
    since = delivery_count(hub)

    answer = admin(
        hub,
        "POST",
        f"repos/{repo}/pulls/{pull['number']}/reviews",
        user="mona",
        event="REQUEST_CHANGES",
        body="Please print something else",
        comments=[
            {"path": "app.py", "line": 2, "body": "Not 'fixed'"},
            {"path": "app.py", "line": 1, "body": "Keep this"},
        ],
    )
    approval = admin(
        hub, "POST", f"repos/{repo}/pulls/{pull['number']}/reviews", user="lisa", event="APPROVE"
    )

    assert answer.status_code == 201 and approval.status_code == 201
    sent = deliveries(hub, since)
    _all_shaped(sent)
    assert [(e, p["action"]) for e, p in sent] == [
        ("pull_request_review", "submitted"),
        ("pull_request_review_comment", "created"),
        ("pull_request_review_comment", "created"),
        ("pull_request_review", "submitted"),
    ]
    review = sent[0][1]["review"]
    assert (review["state"], review["commit_id"], review["user"]["login"]) == (
        "changes_requested",
        head,
        "mona",
    )
    assert [p["comment"]["line"] for e, p in sent[1:3]] == [2, 1]
    assert sent[3][1]["review"]["state"] == "approved"

    reviews = _get(hub, f"repos/{repo}/pulls/{pull['number']}/reviews").json()
    assert rest_errors("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews", reviews) == []
    assert [(r["state"], r["commit_id"]) for r in reviews] == [
        ("CHANGES_REQUESTED", head),
        ("APPROVED", head),
    ]
    of_review = _get(
        hub, f"repos/{repo}/pulls/{pull['number']}/reviews/{reviews[0]['id']}/comments"
    ).json()
    template = "/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}/comments"
    assert rest_errors("GET", template, of_review) == []
    assert [(c["path"], c["line"], c["body"]) for c in of_review] == [
        ("app.py", 2, "Not 'fixed'"),
        ("app.py", 1, "Keep this"),
    ]
    every = _get(hub, f"repos/{repo}/pulls/{pull['number']}/comments").json()
    assert rest_errors("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/comments", every) == []
    assert [c["id"] for c in every] == [c["id"] for c in of_review]
    assert _get(hub, f"repos/{repo}/pulls/{pull['number']}/reviews/1/comments").status_code == 404


@pytest.mark.parametrize(
    ("review", "message"),
    [
        ({"event": "APPROVE", "user": "Copilot"}, "your own pull request"),
        ({"event": "COMMENT", "user": "mona"}, "Body is required"),
        ({"event": "LGTM", "user": "mona", "body": "x"}, "event must be"),
        (
            {"event": "COMMENT", "user": "mona", "comments": [{"path": "README.md", "line": 1}]},
            "Path could not be resolved",
        ),
        (
            {"event": "COMMENT", "user": "mona", "comments": [{"path": "app.py", "line": 9}]},
            "Line could not be resolved",
        ),
    ],
)
def test_a_review_github_would_refuse_is_refused(
    hub: FakeHub, repo: str, review: dict[str, Any], message: str
) -> None:
    pull = _agent_pull(hub, repo, "")
    since = delivery_count(hub)

    answer = admin(hub, "POST", f"repos/{repo}/pulls/{pull['number']}/reviews", **review)

    assert answer.status_code == 422 and message in answer.json()["error"]
    assert deliveries(hub, since) == []


def test_branches_refs_and_contents_at_a_ref(hub: FakeHub, repo: str) -> None:
    first = _get(hub, f"repos/{repo}/branches/main").json()
    pushed = admin(
        hub, "POST", f"repos/{repo}/commits", branch="copilot/x", files={"app.py": "new\n"}
    ).json()

    branch = _get(hub, f"repos/{repo}/branches/copilot/x").json()
    ref = _get(hub, f"repos/{repo}/git/ref/heads/copilot/x").json()
    at_branch = _get(hub, f"repos/{repo}/contents/app.py", ref="copilot/x").json()
    at_sha = _get(hub, f"repos/{repo}/contents/app.py", ref=first["commit"]["sha"]).json()

    assert rest_errors("GET", "/repos/{owner}/{repo}/branches/{branch}", branch) == []
    assert rest_errors("GET", "/repos/{owner}/{repo}/git/ref/{ref}", ref) == []
    assert branch["commit"]["sha"] == ref["object"]["sha"] == pushed["sha"]
    assert [p["sha"] for p in branch["commit"]["parents"]] == [first["commit"]["sha"]]
    assert (branch["name"], ref["ref"]) == ("copilot/x", "refs/heads/copilot/x")
    assert base64.b64decode(at_branch["content"]) == b"new\n"
    assert base64.b64decode(at_sha["content"]) == b"print('hello')\n"
    assert _get(hub, f"repos/{repo}/branches/nope").status_code == 404
    assert _get(hub, f"repos/{repo}/git/ref/heads/nope").status_code == 404
    mismatches = requests.get(f"{hub.url}/_admin/state", timeout=30).json()["mismatches"]
    assert [m for m in mismatches if repo in m["path"]] == []


def test_pull_requests_through_rest_have_githubs_shape(hub: FakeHub, repo: str) -> None:
    admin(hub, "POST", f"repos/{repo}/commits", branch="agent/x", files={"x": "x"})
    created = requests.post(
        f"{hub.url}/repos/{repo}/pulls",
        json={"head": "agent/x", "base": "main", "title": "X", "body": "Closes #1", "draft": True},
        headers={"Authorization": "token t"},
        timeout=30,
    )
    listed = _get(hub, f"repos/{repo}/pulls", head="acme:agent/x").json()

    assert created.status_code == 201
    assert rest_errors("POST", "/repos/{owner}/{repo}/pulls", created.json(), "201") == []
    assert rest_errors("GET", "/repos/{owner}/{repo}/pulls", listed) == []
    assert [(p["number"], p["draft"], p["user"]["login"]) for p in listed] == [
        (created.json()["number"], True, "specbridge[bot]")
    ]
