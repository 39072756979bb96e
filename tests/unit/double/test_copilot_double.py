"""Assigning an issue to the Copilot coding agent through the double, as GitHub
documents it (changelog 2025-12-03; docs "Asking GitHub Copilot to create a pull
request"): listed in suggestedActors where enabled, assigned with a user token
and the GraphQL-Features header, refused otherwise; then a test acts as Copilot."""

from __future__ import annotations

import base64
import json
import time
from itertools import count
from typing import Any

import pytest
import requests

from fakehub import FakeHub
from fakehub.copilot import FEATURE, MODEL_FEATURE
from fakehub.state import user
from tests.unit.double.shapes import (
    admin,
    deliveries,
    delivery_count,
    repo_state,
    rest_errors,
    webhook_errors,
)

_names = count()
SUGGESTED = """
query($owner: String!, $name: String!) {
  repository(owner: $owner, name: $name) {
    id
    suggestedActors(capabilities: [CAN_BE_ASSIGNED], first: 100) {
      totalCount
      nodes { login __typename ... on Bot { id } ... on User { id } }
    }
  }
}"""
REPLACE = """
mutation($issue: ID!, $actors: [ID!], $agent: AgentAssignmentInput) {
  replaceActorsForAssignable(input: {assignableId: $issue, actorIds: $actors,
                                     agentAssignment: $agent}) {
    assignable { ... on Issue { id assignees(first: 10) { nodes { login } } } }
  }
}"""
ADD = """
mutation($issue: ID!, $actors: [ID!]!, $agent: AgentAssignmentInput) {
  addAssigneesToAssignable(input: {assignableId: $issue, assigneeIds: $actors,
                                   agentAssignment: $agent}) {
    assignable { ... on Issue { assignees(first: 10) { nodes { login } } } }
  }
}"""


@pytest.fixture
def user_token(hub: FakeHub) -> str:
    return admin(hub, "POST", "tokens", user="mona").json()["token"]


@pytest.fixture
def installation_token(hub: FakeHub) -> str:
    response = requests.post(f"{hub.url}/app/installations/1/access_tokens", json={}, timeout=30)
    return response.json()["token"]


def _repo(hub: FakeHub, copilot: bool = True) -> str:
    name = f"cp{next(_names)}"
    admin(
        hub,
        "POST",
        "repos",
        owner="acme",
        name=name,
        copilot=copilot,
        collaborators={"mona": "write"},
        files={"app.py": "print(1)\n"},
    ).raise_for_status()
    admin(hub, "POST", f"repos/acme/{name}/commits", branch="develop", files={"d": "d"})
    return f"acme/{name}"


@pytest.fixture
def repo(hub: FakeHub) -> str:
    return _repo(hub)


def _graphql(
    hub: FakeHub, token: str, query: str, features: tuple[str, ...] = (FEATURE,), **variables: Any
) -> dict[str, Any]:
    headers = {"Authorization": f"bearer {token}"}
    if features:
        headers["GraphQL-Features"] = ",".join(features)
    response = requests.post(
        f"{hub.url}/graphql",
        json={"query": query, "variables": variables},
        headers=headers,
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


def _issue(hub: FakeHub, repo: str, token: str = "t") -> dict[str, Any]:
    response = requests.post(
        f"{hub.url}/repos/{repo}/issues",
        json={"title": "Add a greeting", "body": "Print hello"},
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


def _copilot_id(hub: FakeHub, repo: str, token: str) -> tuple[str, str]:
    owner, name = repo.split("/")
    data = _graphql(hub, token, SUGGESTED, owner=owner, name=name)["data"]["repository"]
    first = data["suggestedActors"]["nodes"][0]
    assert (first["login"], first["__typename"]) == ("copilot-swe-agent", "Bot")
    return first["id"], data["id"]


def _app_jwt() -> str:
    """An App JWT's shape (the double does not check its signature)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    claims = {"iat": int(time.time()) - 60, "exp": int(time.time()) + 540, "iss": "4242"}
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2ln"


def _assignments(hub: FakeHub, repo: str) -> list[dict[str, Any]]:
    return repo_state(hub, repo)["copilot_assignments"]


def test_copilot_is_suggested_only_where_enabled_and_to_a_person(
    hub: FakeHub, user_token: str, installation_token: str
) -> None:
    enabled, disabled = _repo(hub), _repo(hub, copilot=False)

    def logins(repo: str, token: str) -> list[str]:
        owner, name = repo.split("/")
        answer = _graphql(hub, token, SUGGESTED, owner=owner, name=name)
        return [n["login"] for n in answer["data"]["repository"]["suggestedActors"]["nodes"]]

    assert logins(enabled, user_token) == ["copilot-swe-agent", "mona"]
    assert logins(enabled, installation_token) == ["mona"]
    assert logins(disabled, user_token) == ["mona"]
    mismatches = requests.get(f"{hub.url}/_admin/state", timeout=30).json()["mismatches"]
    assert [m for m in mismatches if m["graphql"]] == []


def test_a_person_assigns_an_issue_to_copilot_with_a_base_and_instructions(
    hub: FakeHub, repo: str, user_token: str
) -> None:
    bot, repository = _copilot_id(hub, repo, user_token)
    issue = _issue(hub, repo)
    since = delivery_count(hub)

    answer = _graphql(
        hub,
        user_token,
        REPLACE,
        issue=issue["node_id"],
        actors=[bot],
        agent={
            "targetRepositoryId": repository,
            "baseRef": "develop",
            "customInstructions": "Keep it short",
            "customAgent": "",
        },
    )

    assert "errors" not in answer, answer
    assignees = answer["data"]["replaceActorsForAssignable"]["assignable"]["assignees"]
    assert [n["login"] for n in assignees["nodes"]] == ["Copilot"]
    sent = deliveries(hub, since)
    assert [(e, p["action"], p["assignee"]["login"]) for e, p in sent] == [
        ("issues", "assigned", "Copilot")
    ]
    assert webhook_errors("issues", sent[0][1]) == []
    assert sent[0][1]["assignee"]["type"] == "Bot"
    assert sent[0][1]["sender"]["login"] == "mona"
    shown = requests.get(
        f"{hub.url}/repos/{repo}/issues/{issue['number']}",
        headers={"Authorization": "token t"},
        timeout=30,
    ).json()
    assert [(a["login"], a["type"], a["id"]) for a in shown["assignees"]] == [
        ("Copilot", "Bot", 198982749)
    ]
    [kept] = _assignments(hub, repo)
    assert {k: kept[k] for k in ("issue", "accepted", "base_ref", "custom_instructions")} == {
        "issue": issue["number"],
        "accepted": True,
        "base_ref": "develop",
        "custom_instructions": "Keep it short",
    }
    assert (kept["target_repository"], kept["assigned_by"], kept["via"]) == (
        repo,
        "mona",
        "graphql",
    )
    [state_issue] = [i for i in repo_state(hub, repo)["issues"] if i["number"] == issue["number"]]
    assert state_issue["assignees"] == ["Copilot"]


def test_copilot_then_works_as_a_test_acts_it(hub: FakeHub, repo: str, user_token: str) -> None:
    """What a test does next, as Copilot: a branch from the base, a draft naming the issue."""
    bot, _ = _copilot_id(hub, repo, user_token)
    issue = _issue(hub, repo)
    _graphql(hub, user_token, ADD, issue=issue["node_id"], actors=[bot], agent={"baseRef": "main"})
    [assignment] = _assignments(hub, repo)
    branch = f"copilot/fix-{assignment['issue']}"
    admin(
        hub,
        "POST",
        f"repos/{repo}/commits",
        branch=branch,
        files={"app.py": "print('hello')\n"},
        user="Copilot",
    ).raise_for_status()
    pull = admin(
        hub,
        "POST",
        f"repos/{repo}/pulls",
        head=branch,
        base=assignment["base_ref"],
        title="Add a greeting",
        body=f"Fixes #{assignment['issue']}",
        draft=True,
        user="Copilot",
    ).json()
    admin(hub, "POST", f"repos/{repo}/pulls/{pull['number']}/ready", user="Copilot")
    admin(hub, "POST", f"repos/{repo}/pulls/{pull['number']}/merge", user="mona")

    [state_issue] = [i for i in repo_state(hub, repo)["issues"] if i["number"] == issue["number"]]
    assert state_issue["state"] == "closed"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("installation token", "user token"),
        ("app jwt", "user token"),
        ("no feature header", FEATURE),
        ("not enabled", "not enabled"),
        ("no such base", "no branch"),
        ("model without its feature", MODEL_FEATURE),
    ],
)
def test_github_refuses_to_assign_copilot(
    hub: FakeHub, user_token: str, installation_token: str, case: str, message: str
) -> None:
    enabled = _repo(hub)
    bot, _ = _copilot_id(hub, enabled, user_token)
    repo = _repo(hub, copilot=False) if case == "not enabled" else enabled
    issue = _issue(hub, repo)
    token = {"installation token": installation_token, "app jwt": _app_jwt()}.get(case, user_token)
    features = () if case == "no feature header" else (FEATURE,)
    agent = {
        "no such base": {"baseRef": "nope"},
        "model without its feature": {"model": "claude-sonnet-4.5"},
    }.get(case)
    since = delivery_count(hub)

    answer = _graphql(
        hub, token, REPLACE, features, issue=issue["node_id"], actors=[bot], agent=agent
    )

    [error] = answer["errors"]
    assert message in error["message"] and error["path"] == ["replaceActorsForAssignable"]
    assert deliveries(hub, since) == []
    [refused] = _assignments(hub, repo)
    assert refused["accepted"] is False and message in refused["reason"]
    [state_issue] = [i for i in repo_state(hub, repo)["issues"] if i["number"] == issue["number"]]
    assert state_issue["assignees"] == []


def test_a_model_is_chosen_with_both_features(hub: FakeHub, repo: str, user_token: str) -> None:
    bot, _ = _copilot_id(hub, repo, user_token)
    issue = _issue(hub, repo)

    answer = _graphql(
        hub,
        user_token,
        REPLACE,
        (FEATURE, MODEL_FEATURE),
        issue=issue["node_id"],
        actors=[bot],
        agent={"model": "claude-sonnet-4.5"},
    )

    assert "errors" not in answer
    assert _assignments(hub, repo)[0]["model"] == "claude-sonnet-4.5"


def test_create_and_update_issue_assign_copilot_too(
    hub: FakeHub, repo: str, user_token: str
) -> None:
    bot, repository = _copilot_id(hub, repo, user_token)
    created = _graphql(
        hub,
        user_token,
        """mutation($repo: ID!, $bot: ID!) {
          createIssue(input: {repositoryId: $repo, title: "T", assigneeIds: [$bot],
                              agentAssignment: {baseRef: "develop"}}) {
            issue { id number assignees(first: 5) { nodes { login } } }
          }
        }""",
        repo=repository,
        bot=bot,
    )["data"]["createIssue"]["issue"]
    other = _issue(hub, repo)
    updated = _graphql(
        hub,
        user_token,
        """mutation($id: ID!, $bot: ID!) {
          updateIssue(input: {id: $id, assigneeIds: [$bot],
                              agentAssignment: {customInstructions: "Go"}}) {
            issue { assignees(first: 5) { nodes { login } } }
          }
        }""",
        id=other["node_id"],
        bot=bot,
    )["data"]["updateIssue"]["issue"]

    assert [n["login"] for n in created["assignees"]["nodes"]] == ["Copilot"]
    assert [n["login"] for n in updated["assignees"]["nodes"]] == ["Copilot"]
    kept = _assignments(hub, repo)
    assert [(a["issue"], a["base_ref"], a["custom_instructions"]) for a in kept] == [
        (created["number"], "develop", ""),
        (other["number"], "main", "Go"),
    ]


def test_rest_assigns_copilot_with_a_user_token_and_leaves_it_out_otherwise(
    hub: FakeHub, repo: str, user_token: str, installation_token: str
) -> None:
    issue = _issue(hub, repo)
    body = {
        "assignees": ["copilot-swe-agent[bot]", "mona"],
        "agent_assignment": {
            "target_repo": repo,
            "base_branch": "develop",
            "custom_instructions": "Tests first",
            "custom_agent": "",
            "model": "",
        },
    }
    url = f"{hub.url}/repos/{repo}/issues/{issue['number']}/assignees"
    since = delivery_count(hub)

    as_app = requests.post(
        url, json=body, headers={"Authorization": f"token {installation_token}"}, timeout=30
    )
    as_person = requests.post(
        url, json=body, headers={"Authorization": f"token {user_token}"}, timeout=30
    )

    assert as_app.status_code == 201  # GitHub leaves out whom it cannot assign, silently
    assert [a["login"] for a in as_app.json()["assignees"]] == ["mona"]
    assert as_person.status_code == 201
    assert [a["login"] for a in as_person.json()["assignees"]] == ["mona", "Copilot"]
    template = "/repos/{owner}/{repo}/issues/{issue_number}/assignees"
    assert rest_errors("POST", template, as_person.json(), "201") == []
    sent = deliveries(hub, since)
    assert [(p["action"], p["assignee"]["login"], p["sender"]["login"]) for _, p in sent] == [
        ("assigned", "mona", "specbridge[bot]"),
        ("assigned", "Copilot", "mona"),
    ]
    refused, accepted = _assignments(hub, repo)
    assert (refused["accepted"], accepted["accepted"]) == (False, True)
    assert (accepted["base_ref"], accepted["custom_instructions"], accepted["via"]) == (
        "develop",
        "Tests first",
        "rest",
    )


def test_rest_creates_an_issue_assigned_to_copilot(
    hub: FakeHub, repo: str, user_token: str
) -> None:
    response = requests.post(
        f"{hub.url}/repos/{repo}/issues",
        json={
            "title": "T",
            "assignees": ["copilot-swe-agent[bot]"],
            "agent_assignment": {"base_branch": "develop"},
        },
        headers={"Authorization": f"token {user_token}"},
        timeout=30,
    )

    assert [a["login"] for a in response.json()["assignees"]] == ["Copilot"]
    assert _assignments(hub, repo)[0]["base_ref"] == "develop"


def test_unassigning_and_labels_through_rest_send_their_webhooks(
    hub: FakeHub, repo: str, user_token: str
) -> None:
    issue = _issue(hub, repo)
    base = f"{hub.url}/repos/{repo}/issues/{issue['number']}"
    headers = {"Authorization": f"token {user_token}"}
    requests.post(f"{base}/assignees", json={"assignees": ["mona"]}, headers=headers, timeout=30)
    since = delivery_count(hub)

    removed = requests.delete(
        f"{base}/assignees", json={"assignees": ["mona"]}, headers=headers, timeout=30
    )
    labelled = requests.post(
        f"{base}/labels", json={"labels": ["bug", "ready"]}, headers=headers, timeout=30
    )
    unlabelled = requests.delete(f"{base}/labels/bug", headers=headers, timeout=30)
    missing = requests.delete(f"{base}/labels/bug", headers=headers, timeout=30)

    assert removed.json()["assignees"] == []
    assert [label["name"] for label in labelled.json()] == ["bug", "ready"]
    assert [label["name"] for label in unlabelled.json()] == ["ready"]
    assert missing.status_code == 404
    sent = deliveries(hub, since)
    for event, payload in sent:
        assert webhook_errors(event, payload) == [], payload["action"]
    assert [p["action"] for _, p in sent] == ["unassigned", "labeled", "labeled", "unlabeled"]
    assert [p["label"]["name"] for _, p in sent[1:]] == ["bug", "ready", "bug"]
    [state_issue] = [i for i in repo_state(hub, repo)["issues"] if i["number"] == issue["number"]]
    assert (state_issue["labels"], state_issue["assignees"]) == (["ready"], [])
    mismatches = requests.get(f"{hub.url}/_admin/state", timeout=30).json()["mismatches"]
    assert [m for m in mismatches if repo in m["path"]] == []


def test_claude_and_codex_are_assignable_where_a_repository_enabled_them(
    hub: FakeHub, user_token: str
) -> None:
    name = f"cp{next(_names)}"
    admin(
        hub,
        "POST",
        "repos",
        owner="acme",
        name=name,
        agents=["copilot", "claude"],
        collaborators={"mona": "write"},
    ).raise_for_status()
    repo = f"acme/{name}"
    owner, short = repo.split("/")
    data = _graphql(hub, user_token, SUGGESTED, owner=owner, name=short)["data"]
    actors = data["repository"]["suggestedActors"]["nodes"]
    assert [a["login"] for a in actors][:2] == ["copilot-swe-agent", "claude"]
    claude = next(a for a in actors if a["login"] == "claude")
    assert claude["__typename"] == "Bot"

    issue = _issue(hub, repo)
    agent = {"targetRepositoryId": data["repository"]["id"], "customInstructions": "Be brief."}
    answer = _graphql(
        hub, user_token, ADD, issue=issue["node_id"], actors=[claude["id"]], agent=agent
    )
    assert "errors" not in answer
    issues = repo_state(hub, repo)["issues"]
    [state_issue] = [i for i in issues if i["number"] == issue["number"]]
    assert state_issue["assignees"] == ["claude"]
    [kept] = [a for a in _assignments(hub, repo) if a["accepted"]]
    assert (kept["agent"], kept["custom_instructions"]) == ("claude", "Be brief.")

    # Codex is not enabled here: not listed, and not assigned.
    assert "codex" not in [a["login"] for a in actors]
    codex = user("codex")["node_id"]
    refused = _graphql(hub, user_token, ADD, issue=issue["node_id"], actors=[codex], agent=agent)
    assert "codex is not available as an assignee" in refused["errors"][0]["message"]
