"""The exact requests that hand an issue to an agent GitHub runs, checked with `responses`
and against GitHub's published descriptions (the GraphQL schema with the Copilot
fields of fakehub/schema-additions.graphql, the REST description)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
import responses
from graphql import parse, validate
from responses import matchers

from bot.github import RepositoryGateway, github_client
from bot.github.auth import GitHubAuthError, user_client
from bot.github.hosted import (
    ASSIGN,
    ASSIGNEES,
    CLOSING_ISSUES,
    SUGGESTED_ACTORS,
    UNASSIGN,
    CopilotAssignment,
    CopilotRefused,
    HostedAgentGateway,
    closing_issues,
)
from bot.settings import load_settings
from fakehub.fixtures import FIXTURES
from fakehub.graphql_api import github_schema
from tests.support import MOCK_API, MOCK_GRAPHQL

COPILOT_ID = "BOT_kgDOC9w8XQ"


def _settings(**extra: str):  # type: ignore[no-untyped-def]
    return load_settings(
        {
            "GITHUB_TOKEN": "t0ken",
            "GITHUB_API_URL": MOCK_API,
            "GITHUB_WRITE_INTERVAL": "0",
            "GITHUB_CONTENT_LIMITS": "none",
            **extra,
        }
    )


@pytest.fixture
def person():  # type: ignore[no-untyped-def]
    return user_client(_settings(SPECBRIDGE_AGENT_USER_TOKEN="ghp_person"))


def _graphql(body: dict[str, Any]) -> dict[str, Any]:
    return {"data": body}


def _sent() -> list[dict[str, Any]]:
    return [json.loads(call.request.body) for call in responses.calls]


@pytest.mark.parametrize(
    "document", [SUGGESTED_ACTORS, ASSIGN, ASSIGNEES, UNASSIGN, CLOSING_ISSUES]
)
def test_each_document_is_valid_against_githubs_schema(document: str) -> None:
    assert validate(github_schema(), parse(document)) == []


@cache
def _rest_description() -> dict[str, Any]:
    return json.loads((FIXTURES / "openapi" / "api.github.com.json").read_text())


def test_the_label_requests_are_githubs_operations() -> None:
    paths = _rest_description()["paths"]
    add = paths["/repos/{owner}/{repo}/issues/{issue_number}/labels"]["post"]
    assert "labels" in json.dumps(add["requestBody"])
    assert "delete" in paths["/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}"]


def test_the_user_connection_needs_the_token_and_sends_it(db: str) -> None:
    with pytest.raises(GitHubAuthError, match="SPECBRIDGE_AGENT_USER_TOKEN"):
        user_client(_settings(DATABASE_URL=db))
    settings = _settings(SPECBRIDGE_AGENT_USER_TOKEN="ghp_person")
    assert user_client(settings).token == "ghp_person"
    assert "ghp_person" not in repr(settings)


@responses.activate
def test_copilot_is_found_among_suggested_actors_and_assigned_with_the_feature_header(
    person,  # type: ignore[no-untyped-def]
) -> None:
    responses.post(
        MOCK_GRAPHQL,
        json=_graphql(
            {
                "repository": {
                    "id": "R_1",
                    "suggestedActors": {
                        "nodes": [
                            {"__typename": "Bot", "login": "copilot-swe-agent", "id": COPILOT_ID},
                            {"__typename": "User", "login": "octocat"},
                        ]
                    },
                }
            }
        ),
        match=[matchers.header_matcher({"Authorization": "token ghp_person"})],
    )
    responses.post(
        MOCK_GRAPHQL,
        json=_graphql({"m0": {"assignable": {"id": "I_7", "assignees": {"nodes": []}}}}),
        match=[
            matchers.header_matcher(
                {
                    "Authorization": "token ghp_person",
                    "GraphQL-Features": "issues_copilot_assignment_api_support",
                }
            )
        ],
    )
    HostedAgentGateway(person, "octo/app").assign_copilot(
        "I_7", CopilotAssignment(base_ref="main", custom_instructions="Run the tests.")
    )
    lookup, assign = _sent()
    assert lookup["variables"] == {"owner": "octo", "name": "app"}
    assert "suggestedActors(capabilities: [CAN_BE_ASSIGNED]" in lookup["query"]
    assert assign["variables"] == {
        "m0": {
            "assignableId": "I_7",
            "assigneeIds": [COPILOT_ID],
            "agentAssignment": {
                "targetRepositoryId": "R_1",
                "baseRef": "main",
                "customInstructions": "Run the tests.",
            },
        }
    }
    assert "addAssigneesToAssignable(input: $m0)" in assign["query"]


@responses.activate
def test_choosing_a_model_asks_for_its_feature_too(person) -> None:  # type: ignore[no-untyped-def]
    responses.post(
        MOCK_GRAPHQL,
        json=_graphql(
            {
                "repository": {
                    "id": "R_1",
                    "suggestedActors": {
                        "nodes": [{"__typename": "Bot", "login": "copilot-swe-agent", "id": "B"}]
                    },
                }
            }
        ),
    )
    responses.post(
        MOCK_GRAPHQL,
        json=_graphql({"m0": {"assignable": {"id": "I_7"}}}),
        match=[
            matchers.header_matcher(
                {
                    "GraphQL-Features": "issues_copilot_assignment_api_support,"
                    "coding_agent_model_selection"
                }
            )
        ],
    )
    HostedAgentGateway(person, "octo/app").assign_copilot(
        "I_7", CopilotAssignment(custom_agent="tester", model="gpt-5")
    )
    assert _sent()[1]["variables"]["m0"]["agentAssignment"] == {
        "targetRepositoryId": "R_1",
        "customAgent": "tester",
        "model": "gpt-5",
    }


@responses.activate
def test_copilot_missing_or_refused_says_why(person) -> None:  # type: ignore[no-untyped-def]
    gateway = HostedAgentGateway(person, "octo/app")
    responses.post(
        MOCK_GRAPHQL,
        json=_graphql({"repository": {"id": "R_1", "suggestedActors": {"nodes": []}}}),
    )
    with pytest.raises(CopilotRefused, match="enable the Copilot coding agent"):
        gateway.assign_copilot("I_7", CopilotAssignment())
    responses.replace(
        responses.POST,
        MOCK_GRAPHQL,
        json=_graphql(
            {
                "repository": {
                    "id": "R_1",
                    "suggestedActors": {"nodes": [{"login": "copilot-swe-agent", "id": "B"}]},
                }
            }
        ),
    )
    responses.post(
        MOCK_GRAPHQL,
        json={
            "data": {"m0": None},
            "errors": [
                {"path": ["m0"], "type": "UNPROCESSABLE", "message": "no branch dev in octo/app"}
            ],
        },
    )
    with pytest.raises(CopilotRefused, match="no branch dev"):
        gateway.assign_copilot("I_7", CopilotAssignment(base_ref="dev"))


@responses.activate
def test_unassigning_removes_copilot_only(person) -> None:  # type: ignore[no-untyped-def]
    responses.post(
        MOCK_GRAPHQL,
        json=_graphql(
            {
                "repository": {
                    "issue": {
                        "id": "I_7",
                        "assignees": {
                            "nodes": [
                                {"id": "U_1", "login": "octocat"},
                                {"id": COPILOT_ID, "login": "Copilot"},
                            ]
                        },
                    }
                }
            }
        ),
    )
    responses.post(MOCK_GRAPHQL, json=_graphql({"m0": {"assignable": {"id": "I_7"}}}))
    assert HostedAgentGateway(person, "octo/app").unassign_copilot(7) is True
    lookup, unassign = _sent()
    assert lookup["variables"] == {"owner": "octo", "name": "app", "number": 7}
    assert unassign["variables"] == {"m0": {"assignableId": "I_7", "assigneeIds": [COPILOT_ID]}}


@responses.activate
def test_unassigning_an_issue_copilot_does_not_hold_writes_nothing(person) -> None:  # type: ignore[no-untyped-def]
    responses.post(
        MOCK_GRAPHQL,
        json=_graphql({"repository": {"issue": {"id": "I_7", "assignees": {"nodes": []}}}}),
    )
    assert HostedAgentGateway(person, "octo/app").unassign_copilot(7) is False
    assert len(responses.calls) == 1


@responses.activate
def test_labels_are_added_and_removed_one_by_one() -> None:
    repo = RepositoryGateway(github_client(_settings(), None), "octo/app")
    responses.post(
        f"{MOCK_API}/repos/octo/app/issues/7/labels",
        json=[{"name": "fix-me"}],
        match=[matchers.json_params_matcher({"labels": ["fix-me"]})],
    )
    responses.delete(f"{MOCK_API}/repos/octo/app/issues/7/labels/fix%20me", json=[])
    responses.delete(
        f"{MOCK_API}/repos/octo/app/issues/8/labels/fix%20me",
        status=404,
        json={"message": "Label does not exist"},
    )
    repo.add_label(7, "fix-me")
    repo.remove_label(7, "fix me")
    repo.remove_label(8, "fix me")  # not there: nothing to do
    assert len(responses.calls) == 3


@responses.activate
def test_closing_issues_are_githubs_linked_issues_of_this_repository() -> None:
    responses.post(
        MOCK_GRAPHQL,
        json=_graphql(
            {
                "repository": {
                    "pullRequest": {
                        "closingIssuesReferences": {
                            "nodes": [
                                {"number": 7, "repository": {"nameWithOwner": "octo/app"}},
                                {"number": 9, "repository": {"nameWithOwner": "octo/other"}},
                            ]
                        }
                    }
                }
            }
        ),
    )
    assert closing_issues(github_client(_settings(), None), "octo/app", 12) == [7]
    assert _sent()[0]["variables"] == {"owner": "octo", "name": "app", "number": 12}
