"""The exact requests the gateway makes, checked with `responses`."""

from __future__ import annotations

import base64
import json

import pytest
import responses
from responses import matchers

from bot.github import BoardGateway, RepositoryGateway, github_client
from bot.github.issues import IssueWriter
from bot.github.projects import Board, BoardNotFound
from bot.settings import load_settings

API = "https://ghe.example:8443/api/v3"
GRAPHQL = "https://ghe.example:8443/api/graphql"


def _issue(number: int, **fields):  # type: ignore[no-untyped-def]
    return {
        "number": number,
        "id": 1000 + number,
        "node_id": f"I_{number}",
        "title": "t",
        "body": "b",
        "state": "open",
        "state_reason": None,
        "labels": [{"name": "specbridge"}],
        **fields,
    }


@pytest.fixture
def client():  # type: ignore[no-untyped-def]
    settings = load_settings(
        {
            "GITHUB_TOKEN": "t0ken",
            "GITHUB_API_URL": API,
            "GITHUB_WRITE_INTERVAL": "0",
            "GITHUB_CONTENT_LIMITS": "none",
        }
    )
    return github_client(settings, None)


@responses.activate
def test_create_issue_posts_title_body_and_labels(client) -> None:  # type: ignore[no-untyped-def]
    responses.post(
        f"{API}/repos/octo/app/issues",
        json=_issue(7),
        status=201,
        match=[
            matchers.json_params_matcher(
                {"title": "TSK-1: Store tokens", "body": "text", "labels": ["specbridge"]}
            ),
            matchers.header_matcher({"Authorization": "token t0ken"}),
        ],
    )
    issue = RepositoryGateway(client, "octo/app").create_issue(
        "TSK-1: Store tokens", "text", ["specbridge"]
    )
    assert (issue.number, issue.id, issue.node_id) == (7, 1007, "I_7")


@responses.activate
def test_read_file_decodes_content_and_maps_404_to_none(client) -> None:  # type: ignore[no-untyped-def]
    responses.get(
        f"{API}/repos/octo/app/contents/specs/login.yaml",
        json={"type": "file", "encoding": "base64", "content": base64.b64encode(b"id: x").decode()},
        match=[matchers.query_param_matcher({"ref": "abc"})],
    )
    responses.get(
        f"{API}/repos/octo/app/contents/specs/gone.yaml", status=404, json={"message": "Not Found"}
    )
    repo = RepositoryGateway(client, "octo/app")
    assert repo.read_file("specs/login.yaml", "abc") == b"id: x"
    assert repo.read_file("specs/gone.yaml", "abc") is None


@responses.activate
def test_issues_with_label_pages_through_every_issue(client) -> None:  # type: ignore[no-untyped-def]
    first = [_issue(n) for n in range(1, 101)]
    responses.get(
        f"{API}/repos/octo/app/issues",
        json=first,
        match=[
            matchers.query_param_matcher(
                {"state": "all", "labels": "specbridge", "per_page": "100", "page": "1"}
            )
        ],
    )
    responses.get(
        f"{API}/repos/octo/app/issues",
        json=[_issue(101), {**_issue(102), "pull_request": {}}],
        match=[
            matchers.query_param_matcher(
                {"state": "all", "labels": "specbridge", "per_page": "100", "page": "2"}
            )
        ],
    )
    issues = RepositoryGateway(client, "octo/app").issues_with_label("specbridge")
    assert [i.number for i in issues] == list(range(1, 102))


@responses.activate
def test_find_board_falls_back_from_organization_to_user(client) -> None:  # type: ignore[no-untyped-def]
    responses.post(
        GRAPHQL,
        json={
            "data": {"organization": None},
            "errors": [{"type": "NOT_FOUND", "message": "no org"}],
        },
    )
    responses.post(
        GRAPHQL,
        json={
            "data": {
                "user": {
                    "projectV2": {
                        "id": "PVT_1",
                        "field": {"id": "F_1", "options": [{"id": "o1", "name": "Backlog"}]},
                    }
                }
            }
        },
    )
    board = BoardGateway(client).find_board("octocat", 3)
    assert board == Board("PVT_1", "F_1", {"Backlog": "o1"})
    assert json.loads(responses.calls[1].request.body)["variables"] == {
        "login": "octocat",
        "number": 3,
    }
    with pytest.raises(BoardNotFound, match="no option 'Done'"):
        board.option_id("Done")


@responses.activate
def test_board_and_sub_issue_writes_are_batched_under_aliases(client) -> None:  # type: ignore[no-untyped-def]
    responses.post(
        GRAPHQL,
        json={"data": {"m0": {"subIssue": {"id": "I_1"}}, "m1": {"subIssue": {"id": "I_2"}}}},
    )
    responses.post(
        GRAPHQL,
        json={"data": {"add0": {"item": {"id": "PVTI_a"}}, "add1": {"item": {"id": "PVTI_b"}}}},
    )
    responses.post(GRAPHQL, json={"data": {"set0": {}, "set1": {}}})
    board = Board("PVT_1", "F_1", {"Backlog": "o1"})

    linked = IssueWriter(client, "octo/app").add_sub_issues(
        [("1", "I_T", "I_1", False), ("2", "I_T", "I_2", False)]
    )
    items = BoardGateway(client).add_to_board(board, ["I_1", "I_2"])
    BoardGateway(client).set_status(board, [i for i in items if i], "Backlog")

    assert sorted(linked.done) == ["1", "2"]
    assert items == ["PVTI_a", "PVTI_b"]
    assert len(responses.calls) == 3
    link_request = json.loads(responses.calls[0].request.body)
    assert link_request["query"].count("addSubIssue") == 2
    assert link_request["variables"] == {
        "m0": {"issueId": "I_T", "subIssueId": "I_1", "replaceParent": False},
        "m1": {"issueId": "I_T", "subIssueId": "I_2", "replaceParent": False},
    }
    board_request = json.loads(responses.calls[1].request.body)
    assert board_request["query"].count("addProjectV2ItemById") == 2
    assert board_request["variables"] == {"project": "PVT_1", "c0": "I_1", "c1": "I_2"}
