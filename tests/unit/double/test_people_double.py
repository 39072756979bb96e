"""What people do on the double beside the bot: open and edit issues, add and
remove sub-issues, protect a branch (after which pushes to it are refused as
github.com refuses them, over git and through the contents API)."""

from __future__ import annotations

import base64
import os
import subprocess
from itertools import count
from pathlib import Path
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
GIT_ENV = {"PATH": os.environ["PATH"], "GIT_TERMINAL_PROMPT": "0", "HOME": "/nonexistent"}


@pytest.fixture
def repo(hub: FakeHub) -> str:
    name = f"pp{next(_names)}"
    admin(hub, "POST", "repos", owner="acme", name=name, files={"a.txt": "a\n"}).raise_for_status()
    return f"acme/{name}"


def _token(hub: FakeHub) -> str:
    answer = requests.post(f"{hub.url}/app/installations/1/access_tokens", json={}, timeout=30)
    return answer.json()["token"]


def _shaped(sent: list[tuple[str, dict[str, Any]]]) -> None:
    for event, payload in sent:
        assert webhook_errors(event, payload) == [], (event, payload["action"])


def test_a_person_opens_and_edits_an_issue(hub: FakeHub, repo: str) -> None:
    since = delivery_count(hub)

    opened = admin(hub, "POST", f"repos/{repo}/issues", user="mona", title="Idea", body="Do it")
    number = opened.json()["number"]
    edited = admin(
        hub, "POST", f"repos/{repo}/issues/{number}/edit", user="lisa", title="Better idea"
    )
    too_long = admin(hub, "POST", f"repos/{repo}/issues", user="mona", title="x" * 300)

    assert opened.status_code == 201 and edited.status_code == 200
    assert too_long.status_code == 422
    sent = deliveries(hub, since)
    _shaped(sent)
    assert [(p["action"], p["sender"]["login"]) for _, p in sent] == [
        ("opened", "mona"),
        ("edited", "lisa"),
    ]
    assert sent[0][1]["issue"]["user"]["login"] == "mona"
    assert sent[1][1]["changes"] == {"title": {"from": "Idea"}}
    assert sent[1][1]["issue"]["title"] == "Better idea"


def test_a_person_adds_and_removes_a_sub_issue(hub: FakeHub, repo: str) -> None:
    parent = admin(hub, "POST", f"repos/{repo}/issues", user="mona", title="Epic").json()
    child = admin(hub, "POST", f"repos/{repo}/issues", user="mona", title="Part").json()
    since = delivery_count(hub)
    path = f"repos/{repo}/issues/{parent['number']}/sub_issues"

    added = admin(hub, "POST", path, user="lisa", sub_issue_number=child["number"])
    twice = admin(hub, "POST", path, user="lisa", sub_issue_number=child["number"])
    listed = [i["number"] for i in repo_state(hub, repo)["issues"] if i["parent"]]
    removed = admin(hub, "DELETE", path, user="lisa", sub_issue_number=child["number"])

    assert (added.status_code, twice.status_code, removed.status_code) == (201, 422, 200)
    assert listed == [child["number"]]
    sent = deliveries(hub, since)
    _shaped(sent)
    assert [(e, p["action"]) for e, p in sent] == [
        ("sub_issues", "sub_issue_added"),
        ("sub_issues", "parent_issue_added"),
        ("sub_issues", "sub_issue_removed"),
        ("sub_issues", "parent_issue_removed"),
    ]
    assert {(p["parent_issue"]["number"], p["sub_issue"]["number"]) for _, p in sent} == {
        (parent["number"], child["number"])
    }
    assert [i for i in repo_state(hub, repo)["issues"] if i["parent"]] == []


def _git(*args: str, cwd: Path, token: str) -> subprocess.CompletedProcess[str]:
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    env = GIT_ENV | {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_a_push_to_a_protected_branch_is_refused_as_github_refuses_it(
    hub: FakeHub, repo: str, tmp_path: Path
) -> None:
    token = _token(hub)
    checkout = tmp_path / "checkout"
    _git("clone", "-q", f"{hub.url}/{repo}.git", str(checkout), cwd=tmp_path, token=token)
    (checkout / "b.txt").write_text("b\n")
    identity = ["-c", "user.name=a", "-c", "user.email=a@example.com"]
    _git("add", ".", cwd=checkout, token=token)
    _git(*identity, "commit", "-qm", "b", cwd=checkout, token=token)
    before = repo_state(hub, repo)
    main = requests.get(f"{hub.url}/repos/{repo}/branches/main", timeout=30).json()
    assert main["protected"] is False

    admin(hub, "POST", f"repos/{repo}/protect", branch="main").raise_for_status()
    since = delivery_count(hub)
    refused = _git("push", "origin", "HEAD:main", cwd=checkout, token=token)
    to_topic = _git("push", "origin", "HEAD:topic", cwd=checkout, token=token)

    assert refused.returncode != 0
    assert "GH006: Protected branch update failed for refs/heads/main." in refused.stderr
    assert "Changes must be made through a pull request." in refused.stderr
    assert "(protected branch hook declined)" in refused.stderr
    assert to_topic.returncode == 0, to_topic.stderr
    shown = requests.get(f"{hub.url}/repos/{repo}/branches/main", timeout=30).json()
    assert shown["protected"] is True
    assert shown["commit"]["sha"] == main["commit"]["sha"]  # nothing of the push was kept
    assert [(e, p.get("ref")) for e, p in deliveries(hub, since) if e == "push"] == [
        ("push", "refs/heads/topic")
    ]
    assert repo_state(hub, repo)["protected_branches"] == ["main"]
    assert before["protected_branches"] == []


def test_the_contents_api_writes_a_branch_unless_it_is_protected(hub: FakeHub, repo: str) -> None:
    token = _token(hub)
    headers = {"Authorization": f"token {token}"}
    url = f"{hub.url}/repos/{repo}/contents/notes/c.txt"
    content = base64.b64encode(b"c\n").decode()
    admin(hub, "POST", f"repos/{repo}/commits", branch="topic", files={"t": "t"})
    since = delivery_count(hub)

    created = requests.put(
        url, json={"message": "Add c", "content": content}, headers=headers, timeout=30
    )
    read = requests.get(url, headers=headers, timeout=30).json()
    no_sha = requests.put(
        url, json={"message": "Again", "content": content}, headers=headers, timeout=30
    )
    updated = requests.put(
        url,
        json={
            "message": "Change c",
            "content": base64.b64encode(b"cc\n").decode(),
            "sha": read["sha"],
        },
        headers=headers,
        timeout=30,
    )
    admin(hub, "POST", f"repos/{repo}/protect", branch="main").raise_for_status()
    protected = requests.put(
        url,
        json={"message": "Nope", "content": content, "sha": updated.json()["content"]["sha"]},
        headers=headers,
        timeout=30,
    )
    on_topic = requests.put(
        url,
        json={"message": "Ok", "content": content, "branch": "topic"},
        headers=headers,
        timeout=30,
    )

    template = "/repos/{owner}/{repo}/contents/{path}"
    assert created.status_code == 201
    assert rest_errors("PUT", template, created.json(), "201") == []
    assert read["sha"] == created.json()["content"]["sha"]
    assert no_sha.status_code == 422
    assert updated.status_code == 200
    assert rest_errors("PUT", template, updated.json(), "200") == []
    assert protected.status_code == 409
    assert protected.json()["message"] == "Changes must be made through a pull request."
    assert on_topic.status_code == 201
    pushes = [p for e, p in deliveries(hub, since) if e == "push"]
    assert [(p["ref"], p["head_commit"]["message"]) for p in pushes] == [
        ("refs/heads/main", "Add c"),
        ("refs/heads/main", "Change c"),
        ("refs/heads/topic", "Ok"),
    ]
    assert pushes[0]["pusher"]["name"] == "specbridge[bot]"
