"""Tasks proposed from GitHub, fed GitHub's shapes: an issue a person adds under a spec's
tracking issue (`sub_issues` as the REST description's `x-webhooks` describes it),
`/add-task` on the tracking issue, a ticket taken out of it or closed as not planned.
Each becomes one pull request editing the spec file; every REST request is checked
against GitHub's REST description (shared/github-fixtures/openapi)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
import responses
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.events.router import Event, router
from bot.review import plan_report
from bot.settings import Settings
from bot.sync.plan import plan_files
from fakehub.openapi import github_rest
from storage.models import (
    Repository,
    Spec,
    SpecPhase,
    SpecStatus,
    SpecTask,
    TaskProposal,
    Ticket,
)
from tests.support import MOCK_API, github_payload
from tests.unit.double.shapes import webhook_errors

REPO = "Codertocat/Hello-World"
BASE = f"{MOCK_API}/repos/{REPO}"
PATH = "specs/launch.yaml"
SPEC = """\
id: launch
title: Launch
phase: tasks
tasks:
  - id: TSK-1
    title: Fuel the rocket
  - id: TSK-2
    title: Count down
    depends_on: [TSK-1]
"""
TRACKING = 9
# GitHub's closing keywords before an issue reference.
CLOSING = re.compile(r"\b(close[sd]?|fix(e[sd])?|resolve[sd]?):?\s+#\d", re.I)


@pytest.fixture
def spec(session: Session) -> Spec:
    repository = Repository(full_name=REPO, default_branch="main")
    spec = Spec(
        repository=repository,
        key="launch",
        path=PATH,
        title="Launch",
        phase=SpecPhase.TASKS,
        status=SpecStatus.PLANNED,
        tracking_issue_number=TRACKING,
        tracking_issue_node_id="I_9",
    )
    spec.tasks = [
        SpecTask(key="TSK-1", title="Fuel the rocket", position=0),
        SpecTask(key="TSK-2", title="Count down", position=1, depends_on=["TSK-1"]),
    ]
    session.add_all([repository, spec])
    session.flush()
    for number, task in ((10, spec.tasks[0]), (11, spec.tasks[1])):
        session.add(
            Ticket(
                repository=repository,
                spec=spec,
                spec_task=task,
                issue_number=number,
                issue_node_id=f"I_{number}",
            )
        )
    session.commit()
    return spec


def _issue(number: int, title: str = "Check the weather") -> dict[str, Any]:
    issue = github_payload("issues", "opened.payload.json")["issue"]
    issue.update(number=number, id=1000 + number, node_id=f"I_{number}", title=title)
    return issue


def sub_issue_event(action: str, child: int, parent: int = TRACKING, **sender: Any) -> dict:  # type: ignore[type-arg]
    base = github_payload("issues", "opened.payload.json")
    payload = {
        "action": action,
        "sub_issue_id": 1000 + child,
        "sub_issue": _issue(child),
        "sub_issue_repo": base["repository"],
        "parent_issue_id": 1000 + parent,
        "parent_issue": _issue(parent, "Spec: Launch"),
        "repository": base["repository"],
        "sender": {**base["sender"], "login": "mona", **sender},
    }
    assert webhook_errors("sub_issues", payload) == []
    return payload


def dispatch(session: Session, settings: Settings, event: str, payload: dict) -> None:  # type: ignore[type-arg]
    router.dispatch(Event(event, payload, "d", settings, session))


def github_answers(branch_exists: bool = False) -> dict[str, Any]:
    """The REST answers a proposal needs, as `responses` mocks."""
    content = base64.b64encode(SPEC.encode()).decode()
    main = {
        "name": "main",
        "commit": {"sha": "a" * 40, "commit": {"author": {"name": "mona"}, "message": "m"}},
        "protected": False,
    }
    responses.get(f"{BASE}/branches/main", json=main)
    responses.get(f"{BASE}/contents/{PATH}", json={"type": "file", "content": content, "sha": "b1"})
    return {
        "put": responses.put(f"{BASE}/contents/{PATH}", json={"commit": {"sha": "c" * 40}}),
        "ref": responses.post(f"{BASE}/git/refs", json={}, status=201),
        "pulls": responses.get(f"{BASE}/pulls", json=[]),
        "pull": responses.post(f"{BASE}/pulls", json={"number": 31}, status=201),
    }


def missing_branch(name: str) -> None:
    responses.get(f"{BASE}/branches/{name}", status=404, json={"message": "Branch not found"})


def every_request_is_githubs() -> None:
    for call in responses.calls:
        url = urlsplit(call.request.url)
        path = unquote(url.path.removeprefix("/api/v3"))
        body = json.loads(call.request.body) if call.request.body else None
        query = dict(parse_qsl(url.query))
        assert github_rest().check(call.request.method, path, query, body) is None, path


def put_text(put: Any) -> str:
    return base64.b64decode(json.loads(put.calls[0].request.body)["content"]).decode()


@responses.activate
def test_an_issue_added_under_the_tracking_issue_gets_a_pull_request_adding_its_task(
    session: Session, handler_settings: Settings, spec: Spec
) -> None:
    calls = github_answers()
    missing_branch("specbridge/add-task/launch/issue-12")
    said = responses.post(f"{BASE}/issues/12/comments", json={}, status=201)

    dispatch(session, handler_settings, "sub_issues", sub_issue_event("sub_issue_added", 12))

    ref = json.loads(calls["ref"].calls[0].request.body)
    assert ref == {"ref": "refs/heads/specbridge/add-task/launch/issue-12", "sha": "a" * 40}
    put = json.loads(calls["put"].calls[0].request.body)
    assert (put["branch"], put["sha"]) == ("specbridge/add-task/launch/issue-12", "b1")
    assert put_text(calls["put"]) == SPEC + (
        '  - id: TSK-3\n    title: "Check the weather"\n    description: "Proposed in #12."\n'
    )
    pull = json.loads(calls["pull"].calls[0].request.body)
    assert (pull["head"], pull["base"]) == ("specbridge/add-task/launch/issue-12", "main")
    assert "Merging it makes #12 the task's issue" in pull["body"]
    # No closing keyword: merging it must not close the issue it adopts.
    assert CLOSING.search(pull["body"]) is None
    assert "#31" in json.loads(said.calls[0].request.body)["body"]
    proposal = session.scalars(select(TaskProposal)).one()
    assert (proposal.kind, proposal.task_key, proposal.issue_number, proposal.state) == (
        "add",
        "TSK-3",
        12,
        "open",
    )
    assert proposal.issue_node_id == "I_12" and proposal.pull_request_number == 31
    every_request_is_githubs()

    # Delivered again: the proposal is found, nothing more is asked of GitHub.
    count = len(responses.calls)
    dispatch(session, handler_settings, "sub_issues", sub_issue_event("sub_issue_added", 12))
    assert len(responses.calls) == count


@responses.activate
def test_the_bots_own_links_and_links_elsewhere_do_nothing(
    session: Session, handler_settings: Settings, spec: Spec
) -> None:
    bot = {"login": "specbridge[bot]", "type": "Bot"}
    dispatch(session, handler_settings, "sub_issues", sub_issue_event("sub_issue_added", 12, **bot))
    dispatch(session, handler_settings, "sub_issues", sub_issue_event("sub_issue_added", 12, 40))
    # A ticket already (specbridge's own issue, moved by a person between its parents).
    dispatch(session, handler_settings, "sub_issues", sub_issue_event("sub_issue_added", 11))
    assert len(responses.calls) == 0
    assert session.scalars(select(TaskProposal)).all() == []


@responses.activate
def test_a_ticket_taken_out_of_the_tracking_issue_gets_a_pull_request_removing_its_task(
    session: Session, handler_settings: Settings, spec: Spec
) -> None:
    calls = github_answers()
    missing_branch("specbridge/remove-task/launch/TSK-1")
    said = responses.post(f"{BASE}/issues/10/comments", json={}, status=201)

    dispatch(session, handler_settings, "sub_issues", sub_issue_event("sub_issue_removed", 10))

    assert put_text(calls["put"]) == (
        "id: launch\ntitle: Launch\nphase: tasks\ntasks:\n"
        "  - id: TSK-2\n    title: Count down\n    depends_on: []\n"
    )
    pull = json.loads(calls["pull"].calls[0].request.body)
    assert pull["title"] == f"Remove task TSK-1 from {PATH}"
    # No closing keyword: merged, GitHub would close the issue as completed.
    assert CLOSING.search(pull["body"]) is None
    assert "@mona took #10 out of #9" in pull["body"]
    assert (
        "Close that pull request to keep the task" in json.loads(said.calls[0].request.body)["body"]
    )
    proposal = session.scalars(select(TaskProposal)).one()
    assert (proposal.kind, proposal.task_key, proposal.issue_number) == ("remove", "TSK-1", 10)
    every_request_is_githubs()


@responses.activate
def test_a_ticket_a_person_closes_as_not_planned_gets_its_removal_proposed(
    session: Session, handler_settings: Settings, spec: Spec
) -> None:
    calls = github_answers()
    missing_branch("specbridge/remove-task/launch/TSK-2")
    issue = _issue(11, "TSK-2: Count down")
    issue.update(state="closed", state_reason="not_planned")
    responses.get(f"{BASE}/issues/11", json=issue)  # the state handler reads it back
    said = responses.post(f"{BASE}/issues/11/comments", json={}, status=201)
    payload = github_payload("issues", "opened.payload.json")
    payload.update(action="closed", issue=issue)

    dispatch(session, handler_settings, "issues", payload)

    assert "TSK-2" not in put_text(calls["put"])
    assert "closed #11 as not planned" in json.loads(calls["pull"].calls[0].request.body)["body"]
    assert "closed this issue as not planned" in json.loads(said.calls[0].request.body)["body"]
    every_request_is_githubs()


@responses.activate
def test_the_bots_own_close_as_not_planned_proposes_nothing(
    session: Session, handler_settings: Settings, spec: Spec
) -> None:
    issue = _issue(11, "TSK-2: Count down")
    issue.update(state="closed", state_reason="not_planned")
    responses.get(f"{BASE}/issues/11", json=issue)
    payload = github_payload("issues", "opened.payload.json")
    payload.update(action="closed", issue=issue, sender={"login": "specbridge[bot]", "type": "Bot"})
    dispatch(session, handler_settings, "issues", payload)
    assert [c.request.method for c in responses.calls] == ["GET"]


def add_task_comment(body: str, association: str) -> dict:  # type: ignore[type-arg]
    payload = github_payload("issue_comment", "created.payload.json")
    payload["issue"]["number"] = TRACKING
    payload["repository"]["default_branch"] = "main"
    payload["comment"].update(body=body, author_association=association, id=77)
    payload["comment"]["user"]["login"] = "lisa"
    return payload


@responses.activate
def test_add_task_needs_write_access_and_is_checked_before_anything(
    session: Session, handler_settings: Settings, spec: Spec
) -> None:
    responses.post(f"{BASE}/issues/comments/77/reactions", json={}, status=201)
    responses.get(
        f"{BASE}/collaborators/lisa/permission", json={"permission": "read", "role_name": "read"}
    )
    reply = responses.post(f"{BASE}/issues/{TRACKING}/comments", json={}, status=201)
    dispatch(session, handler_settings, "issue_comment", add_task_comment("/add-task X", "NONE"))
    assert "needs write access" in json.loads(reply.calls[0].request.body)["body"]
    assert not any("/contents/" in c.request.url for c in responses.calls)


@responses.activate
def test_add_task_by_a_writer_opens_a_pull_request_adding_the_task(
    session: Session, handler_settings: Settings, spec: Spec
) -> None:
    calls = github_answers()
    missing_branch("specbridge/add-task/launch/TSK-3")
    responses.post(f"{BASE}/issues/comments/77/reactions", json={}, status=201)
    reply = responses.post(f"{BASE}/issues/{TRACKING}/comments", json={}, status=201)
    body = "/add-task Check   the weather"
    dispatch(session, handler_settings, "issue_comment", add_task_comment(body, "OWNER"))
    assert put_text(calls["put"]).endswith(
        '  - id: TSK-3\n    title: "Check the weather"\n    description: "Proposed in #9."\n'
    )
    assert "#31 adds the task `TSK-3`" in json.loads(reply.calls[0].request.body)["body"]
    proposal = session.scalars(select(TaskProposal)).one()
    assert (proposal.task_key, proposal.issue_number, proposal.requested_by) == (
        "TSK-3",
        None,
        "lisa",
    )
    every_request_is_githubs()


@responses.activate
def test_a_proposals_pull_request_closed_unmerged_drops_it_and_a_merged_removal_is_done(
    session: Session, handler_settings: Settings, spec: Spec
) -> None:
    for kind, key in (("add", "TSK-3"), ("remove", "TSK-1")):
        session.add(
            TaskProposal(
                repository_id=spec.repository_id,
                spec=spec,
                kind=kind,
                task_key=key,
                issue_number=12,
                issue_node_id="I_12",
                branch=f"specbridge/{kind}-task/launch/{key}",
                requested_by="mona",
            )
        )
    session.commit()

    def closed(branch: str, merged: bool) -> dict:  # type: ignore[type-arg]
        payload = github_payload("pull_request", "closed.payload.json")
        payload["pull_request"]["head"]["ref"] = branch
        payload["pull_request"]["merged"] = merged
        return payload

    for branch, merged in (("add-task/launch/TSK-3", False), ("remove-task/launch/TSK-1", True)):
        dispatch(session, handler_settings, "pull_request", closed(f"specbridge/{branch}", merged))
    states = {p.kind: p.state for p in session.scalars(select(TaskProposal))}
    assert states == {"add": "dropped", "remove": "merged"}
    assert len(responses.calls) == 0


def test_the_plan_of_a_proposed_task_says_it_adopts_the_issue_instead_of_opening_one(
    session: Session, spec: Spec
) -> None:
    session.add(
        TaskProposal(
            repository_id=spec.repository_id,
            spec=spec,
            kind="add",
            task_key="TSK-3",
            issue_number=12,
            issue_node_id="I_12",
            branch="specbridge/add-task/launch/TSK-3",
            requested_by="mona",
        )
    )
    session.commit()
    added = SPEC + "  - id: TSK-3\n    title: Check the weather\n    depends_on: [TSK-2]\n"
    plan = plan_files(session, spec.repository_id, {PATH: added.encode()})

    (diff,) = plan.diffs
    assert diff.open == []
    assert [(task.id, number) for task, number in diff.adopt] == [("TSK-3", 12)]
    assert plan_report.title(plan) == (
        "Valid; the merge opens 0, adopts 1, changes 0 and closes 0 issues"
    )
    text = plan_report.summary(plan, "Plan")
    assert "- **Adopts** 1 issue proposed on GitHub" in text
    assert "  - #12 `TSK-3` Check the weather" in text
    assert "**Opens**" not in text
