"""Sub-issues the double will not link, answered in github.com's words.

What github.com answers (see fakehub/README.md for the sources):
- REST 422, `message` "An error occurred while adding the sub-issue to the
  parent issue. <reasons>", no `errors`;
- GraphQL `addSubIssue`: `data.addSubIssue` null and an error of type
  VALIDATION, "Failed to add sub-issue #<child> to parent #<parent>. <reasons>";
- <reasons>: the rules broken, joined as Rails' to_sentence joins them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from fakehub import FakeHub
from fakehub.state import Issue

REST_PREFIX = "An error occurred while adding the sub-issue to the parent issue. "
DUPLICATE = "Issue may not contain duplicate sub-issues"
ONE_PARENT = "Sub issue may only have one parent"
FULL = "Parent cannot have more than 100 sub-issues"
TOO_DEEP = (
    "You can\u2019t add more than 7 layers of sub-issues. "
    "To add a sub-issue, remove a parent issue at any level."
)
MUTATION = """mutation($parent: ID!, $child: ID!, $replace: Boolean) {
  addSubIssue(input: {issueId: $parent, subIssueId: $child, replaceParent: $replace}) {
    issue { number }
    subIssue { number }
  }
}"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    hub = FakeHub(None, "", tmp_path_factory.mktemp("hub"))
    hub.limits.update({"content_per_minute": 100_000, "content_per_hour": 100_000})
    hub.start()
    yield hub
    hub.stop()


_names = iter(range(1000))


@pytest.fixture
def new_issue(hub: FakeHub) -> Any:
    """Issues of one fresh repository."""
    name = f"r{next(_names)}"
    requests.post(
        f"{hub.url}/_admin/repos", json={"owner": "acme", "name": name}, timeout=30
    ).raise_for_status()
    repo = hub.state.repo("acme", name)

    def make(title: str = "issue") -> Issue:
        with hub.state.lock:
            return hub.create_issue(repo, title, None, "t")

    return make


def rest_add(hub: FakeHub, parent: Issue, child: Issue, **extra: Any) -> requests.Response:
    return requests.post(
        f"{hub.url}/repos/{parent.repo.full_name}/issues/{parent.number}/sub_issues",
        json={"sub_issue_id": child.id, **extra},
        headers={"Authorization": "token t"},
        timeout=30,
    )


def graphql_add(hub: FakeHub, parent: Issue, child: Issue, replace: bool | None = None) -> Any:
    variables = {"parent": parent.node_id, "child": child.node_id, "replace": replace}
    return requests.post(
        f"{hub.url}/graphql",
        json={"query": MUTATION, "variables": variables},
        headers={"Authorization": "bearer t"},
        timeout=30,
    ).json()


def assert_refused(answer: requests.Response, reasons: str) -> None:
    assert answer.status_code == 422
    assert answer.json() == {
        "message": REST_PREFIX + reasons,
        "documentation_url": "https://docs.github.com/rest/issues/sub-issues#add-sub-issue",
        "status": "422",
    }


def graphql_refusal(answer: dict[str, Any]) -> tuple[str, str]:
    assert answer["data"] == {"addSubIssue": None}
    [error] = answer["errors"]
    assert error["path"] == ["addSubIssue"]
    return error["type"], error["message"]


def test_a_child_already_under_this_parent_is_a_duplicate(hub: FakeHub, new_issue: Any) -> None:
    parent, child = new_issue("parent"), new_issue("child")
    assert rest_add(hub, parent, child).status_code == 201

    assert_refused(rest_add(hub, parent, child), f"{DUPLICATE} and {ONE_PARENT}")
    assert_refused(rest_add(hub, parent, child, replace_parent=True), DUPLICATE)
    assert graphql_refusal(graphql_add(hub, parent, child)) == (
        "VALIDATION",
        f"Failed to add sub-issue #{child.number} to parent #{parent.number}. "
        f"{DUPLICATE} and {ONE_PARENT}",
    )
    assert graphql_refusal(graphql_add(hub, parent, child, replace=True)) == (
        "VALIDATION",
        f"Failed to add sub-issue #{child.number} to parent #{parent.number}. {DUPLICATE}",
    )
    assert parent.sub_issues == [child.number]


def test_a_child_of_another_parent_moves_only_with_replace_parent(
    hub: FakeHub, new_issue: Any
) -> None:
    old, new, child, sibling = (new_issue(t) for t in ("old", "new", "child", "sibling"))
    rest_add(hub, old, child)
    rest_add(hub, new, sibling)

    assert_refused(rest_add(hub, new, child), ONE_PARENT)
    assert_refused(rest_add(hub, new, child, replace_parent=False), ONE_PARENT)
    assert graphql_refusal(graphql_add(hub, new, child, replace=False)) == (
        "VALIDATION",
        f"Failed to add sub-issue #{child.number} to parent #{new.number}. {ONE_PARENT}",
    )
    assert (old.sub_issues, new.sub_issues) == ([child.number], [sibling.number])

    moved = rest_add(hub, new, child, replace_parent=True)
    assert moved.status_code == 201
    assert moved.json()["number"] == new.number
    assert (old.sub_issues, new.sub_issues) == ([], [sibling.number, child.number])
    assert child.parent == new.number

    answer = graphql_add(hub, old, child, replace=True)  # and back, through GraphQL
    assert "errors" not in answer
    assert answer["data"]["addSubIssue"]["subIssue"] == {"number": child.number}
    assert (old.sub_issues, new.sub_issues) == ([child.number], [sibling.number])


def test_a_parent_holds_100_sub_issues_closed_ones_included(hub: FakeHub, new_issue: Any) -> None:
    parent = new_issue("parent")
    children = [new_issue(f"child {n}") for n in range(101)]
    for child in children[:100]:
        assert rest_add(hub, parent, child).status_code == 201
    for child in children[:60]:
        with hub.state.lock:
            hub.set_issue_state(child, "closed", "completed", "octocat")
    last = children[100]

    assert_refused(rest_add(hub, parent, last), FULL)
    assert graphql_refusal(graphql_add(hub, parent, last)) == (
        "VALIDATION",
        f"Failed to add sub-issue #{last.number} to parent #{parent.number}. {FULL}",
    )
    assert_refused(rest_add(hub, parent, children[0]), f"{DUPLICATE}, {ONE_PARENT}, and {FULL}")

    other = new_issue("other parent")
    rest_add(hub, other, last)
    assert_refused(rest_add(hub, parent, last, replace_parent=True), FULL)
    assert last.parent == other.number  # a refused move leaves it where it was
    assert len(parent.sub_issues) == 100


def test_eight_levels_at_most(hub: FakeHub, new_issue: Any) -> None:
    chain = [new_issue(f"level {n}") for n in range(1, 10)]
    for upper, lower in itertools.pairwise(chain[:8]):
        assert rest_add(hub, upper, lower).status_code == 201

    assert_refused(rest_add(hub, chain[7], chain[8]), TOO_DEEP)
    assert graphql_refusal(graphql_add(hub, chain[7], chain[8])) == (
        "VALIDATION",
        f"Failed to add sub-issue #{chain[8].number} to parent #{chain[7].number}. {TOO_DEEP}",
    )
    top = new_issue("above the top")
    assert_refused(rest_add(hub, top, chain[0]), TOO_DEEP)
    assert chain[8].parent is None and top.sub_issues == []


def test_an_issue_cannot_be_its_own_parent_or_ancestor(hub: FakeHub, new_issue: Any) -> None:
    grand, parent, child = new_issue("grand"), new_issue("parent"), new_issue("child")
    rest_add(hub, grand, parent)
    rest_add(hub, parent, child)

    lone = new_issue("lone")
    assert_refused(rest_add(hub, lone, lone), "Sub issue cannot be the same as the parent issue")
    assert_refused(rest_add(hub, child, grand), "Sub issue may not create a circular dependency.")
    assert (grand.parent, child.sub_issues, lone.sub_issues) == (None, [], [])


def test_refusals_are_not_mismatches(hub: FakeHub) -> None:
    state = requests.get(f"{hub.url}/_admin/state", timeout=30).json()
    assert state["mismatches"] == []
