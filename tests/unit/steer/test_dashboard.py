"""The tracking issue's boxes: ticked by a writer they act once; a reader's tick is undone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses
from sqlalchemy.orm import Session

from bot.github import RepositoryGateway, github_client
from bot.github.text import MAX_BODY
from bot.settings import Settings, load_settings
from bot.steer.dashboard import CUT_NOTE, act_on_edit, newly_ticked
from bot.steer.steering import Steering
from bot.sync import render
from storage.models import (
    Approval,
    IssueState,
    Repository,
    Spec,
    SpecStatus,
    SpecTask,
    Task,
    TaskStatus,
    Ticket,
)
from tests.support import MOCK_API
from tests.unit.conftest import HeldJob

FULL_NAME = "acme/rocket"
TRACKING = 10


@pytest.fixture
def settings(db: str, tmp_path: Path, held_jobs: list[HeldJob]) -> Settings:
    agents = tmp_path / "agents.yaml"
    agents.write_text("default:\n  command: make\n")
    return load_settings(
        {
            "DATABASE_URL": db,
            "GITHUB_TOKEN": "t",
            "GITHUB_API_URL": MOCK_API,
            "GITHUB_WRITE_INTERVAL": "0",
            "SPECBRIDGE_AGENTS": str(agents),
        }
    )


@pytest.fixture
def spec(session: Session) -> Spec:
    """#1 failed, #2 failed, #3 waits for approval, #4 ran and opened #20."""
    repository = Repository(full_name=FULL_NAME)
    spec = Spec(
        repository=repository,
        key="rocket",
        path="specs/rocket.yaml",
        title="Rocket",
        phase="tasks",
        status=SpecStatus.PLANNED,
        tracking_issue_number=TRACKING,
        agent="default",
    )
    tickets = []
    for number in (1, 2, 3, 4):
        task = SpecTask(spec=spec, key=f"T-{number}", title=f"T-{number}", position=number)
        tickets.append(
            Ticket(repository=repository, spec=spec, spec_task=task, issue_number=number)
        )
    one, two, three, four = tickets
    for ticket in (one, two):
        ticket.failure = "the command exited with status 3"
        session.add(Task(ticket=ticket, agent="default", status=TaskStatus.FAILED))
    three.approval = Approval.PENDING
    session.add(
        Task(ticket=four, agent="default", status=TaskStatus.SUCCEEDED, pull_request_number=20)
    )
    session.add(spec)
    session.commit()
    return spec


def ticked(body: str, *names: str) -> str:
    for name in names:
        body = body.replace(
            f"- [ ] <!-- specbridge-action: {name} -->", f"- [x] <!-- specbridge-action: {name} -->"
        )
    return body


def edit(
    session: Session, settings: Settings, spec: Spec, user: str, before: str, after: str
) -> list[str]:
    repo = RepositoryGateway(github_client(settings, None), FULL_NAME)
    return act_on_edit(session, settings, repo, None, spec, user, before, after)  # type: ignore[arg-type]


def permission(user: str, role: str) -> None:
    responses.get(
        f"{MOCK_API}/repos/{FULL_NAME}/collaborators/{user}/permission",
        json={"permission": role, "role_name": role, "user": {"login": user}},
    )


def test_the_tracking_issue_has_the_boxes_and_the_tasks_by_state(spec: Spec) -> None:
    body = render.tracking_body(spec, spec.tickets)

    approve = "Approve every task waiting for approval (1)"
    assert f"- [ ] <!-- specbridge-action: approve-waiting --> {approve}" in body
    assert "- [ ] <!-- specbridge-action: retry-failed --> Retry every failed task (2)" in body
    assert "<!-- specbridge-action: pause -->" in body and "action: resume" not in body
    assert "- **failed** (2): #1 T-1, #2 T-2" in body
    assert "- **waiting for approval** (1): #3 T-3" in body
    assert "- **in review** (1): #4 T-4 (#20)" in body


def test_only_boxes_going_from_unticked_to_ticked_act() -> None:
    body = "- [ ] <!-- specbridge-action: pause -->\n- [x] <!-- specbridge-action: retry-failed -->"

    assert newly_ticked(body, ticked(body, "pause")) == ["pause"]
    assert newly_ticked(ticked(body, "pause"), body) == []  # edited back
    assert newly_ticked(body, body.replace("- [ ]", "- [X]") + "\nmy own notes") == ["pause"]


@responses.activate
def test_retry_all_failed_retries_exactly_the_failed_ones_once(
    session: Session, settings: Settings, spec: Spec, held_jobs: list[HeldJob]
) -> None:
    permission("mona", "write")
    comments = responses.post(
        f"{MOCK_API}/repos/{FULL_NAME}/issues/{TRACKING}/comments", json={"id": 1}, status=201
    )
    body = render.tracking_body(spec, spec.tickets)

    edit(session, settings, spec, "mona", body, ticked(body, "retry-failed"))
    edit(session, settings, spec, "mona", body, ticked(body, "retry-failed"))  # redelivered

    # Both run again; they name no files, so the fleet starts one, the other waits its turn.
    again = session.query(Task).filter(Task.status.in_((TaskStatus.QUEUED, TaskStatus.WAITING)))
    assert sorted(t.ticket.issue_number for t in again) == [1, 2]
    assert len([j for j in held_jobs if j.name == "run_task"]) == 1
    said = [json.loads(c.request.body)["body"] for c in comments.calls]
    assert said[0].startswith("@mona: retried 2 failed task(s).")
    assert said[1] == "@mona: no failed task is left to retry."
    assert spec.tracking_issue_hash is None  # written again, unticked


@responses.activate
def test_approve_all_waiting_and_pause_then_resume(
    session: Session, settings: Settings, spec: Spec, held_jobs: list[HeldJob]
) -> None:
    permission("mona", "admin")
    responses.post(
        f"{MOCK_API}/repos/{FULL_NAME}/issues/{TRACKING}/comments", json={"id": 1}, status=201
    )
    body = render.tracking_body(spec, spec.tickets)

    said = edit(session, settings, spec, "mona", body, ticked(body, "pause"))
    said += edit(session, settings, spec, "mona", body, ticked(body, "approve-waiting"))

    assert said == [
        "@mona: paused this spec: no new agent run starts (runs going finish). Tick 'Resume' "
        "to go on.",
        "@mona: approved 1 task(s): #3.",
    ]
    three = next(t for t in spec.tickets if t.issue_number == 3)
    assert three.approval is Approval.APPROVED and not three.tasks  # paused: nothing starts
    assert spec.paused
    body = render.tracking_body(spec, spec.tickets)
    assert "<!-- specbridge-action: resume --> Resume this spec: **paused**" in body

    said = edit(session, settings, spec, "mona", body, ticked(body, "resume"))

    assert said == ["@mona: resumed this spec: 1 task(s) go on."]
    assert [t.status for t in three.tasks] == [TaskStatus.QUEUED]


@responses.activate
def test_a_readers_tick_is_undone_with_a_reply_naming_their_access(
    session: Session, settings: Settings, spec: Spec, held_jobs: list[HeldJob]
) -> None:
    permission("reader", "read")
    comments = responses.post(
        f"{MOCK_API}/repos/{FULL_NAME}/issues/{TRACKING}/comments", json={"id": 1}, status=201
    )
    body = render.tracking_body(spec, spec.tickets)

    edit(session, settings, spec, "reader", body, ticked(body, "retry-failed"))

    assert held_jobs == [j for j in held_jobs if j.name != "run_task"]
    [reply] = [json.loads(c.request.body)["body"] for c in comments.calls]
    assert reply == (
        "@reader ticked 'retry every failed task', which needs write access to this "
        "repository, and @reader has read access: the box is unticked, nothing changed."
    )
    assert spec.tracking_issue_hash is None
    assert all(t.state is IssueState.OPEN for t in spec.tickets)


@responses.activate
def test_a_spec_of_1000_tasks_stays_within_githubs_limit_on_a_body(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GitHub refuses a body or comment over 65,536 characters: the tracking issue of
    1,000 long-titled tasks, and the reply to retrying them all, are cut to fit."""
    said = "Nothing is queued: the agent `default` has no room before its budget's next day."
    # What each retry says, without queueing 1,000 runs (their lines make the reply long).
    monkeypatch.setattr(Steering, "start", lambda steering, ticket: said)
    repository = Repository(full_name=FULL_NAME)
    spec = Spec(
        repository=repository,
        key="big",
        path="specs/big.yaml",
        title="Big",
        phase="tasks",
        status=SpecStatus.PLANNED,
        tracking_issue_number=TRACKING,
        agent="default",
    )
    for number in range(1, 1001):
        task = SpecTask(spec=spec, key=f"T-{number}", title="t" * 250, position=number)
        ticket = Ticket(repository=repository, spec=spec, spec_task=task, issue_number=number)
        ticket.failure = "the command exited with status 3"
        session.add(Task(ticket=ticket, agent="default", status=TaskStatus.FAILED))
    session.add(spec)
    session.commit()
    permission("mona", "write")
    comments = responses.post(
        f"{MOCK_API}/repos/{FULL_NAME}/issues/{TRACKING}/comments", json={"id": 1}, status=201
    )

    body = render.tracking_body(spec, spec.tickets)
    assert len(body) <= MAX_BODY
    assert "Retry every failed task (1000)" in body
    edit(session, settings, spec, "mona", body, ticked(body, "retry-failed"))

    [reply] = [json.loads(c.request.body)["body"] for c in comments.calls]
    assert len(reply) <= MAX_BODY
    assert reply.startswith("@mona: retried 1000 failed task(s).")
    assert f"- #1: {said}" in reply
    assert reply.endswith(CUT_NOTE)
