"""Tasks handed to agents GitHub runs: the exact requests of each hand-over and
take-back (with `responses`), the card and task as the agent's pull request
changes, the timeout, and the reaper leaving them alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import responses
from responses import matchers
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.agents import hosted, run
from bot.agents.hosted import (
    PullRequest,
    dispatch_task,
    expire_dispatched_tasks,
    finish_on_close,
    follow_pull_request,
    handed_over_labels,
    named_issues,
)
from bot.agents.prompt import INSTRUCTION_FILES
from bot.agents.reaper import reap_stale_tasks
from bot.github import Board, RepositoryGateway, github_client
from bot.github.failures import FAILED_LABEL
from bot.settings import Settings, load_settings
from bot.steer.steering import Steering
from storage.db import session_scope
from storage.models import (
    Installation,
    IssueState,
    Repository,
    Spec,
    SpecStatus,
    Task,
    TaskStatus,
    Ticket,
    TicketPhase,
)
from tests.support import MOCK_API, MOCK_GRAPHQL

PROFILES = """\
fixer:
  github: {label: fix-me}
  timeout: 600
claude-action:
  github: {comment: "@claude implement this issue as described"}
copilot:
  github: {assign: copilot, instructions: "Run the tests before you finish.", custom_agent: tester}
local:
  command: "true"
runner:
  hosted: workflow
  workflow: agent.yml
"""
ISSUE = f"{MOCK_API}/repos/acme/rocket/issues/2"


class Cards:
    """The board: the columns each card was put in."""

    def __init__(self) -> None:
        self.moves: list[str] = []

    def find_board(self, owner: str, number: int) -> Board:
        columns = ("Backlog", "Analyzing", "Building", "Testing", "Done")
        return Board("PVT_1", "PVTSSF_1", {name: f"option-{name}" for name in columns})

    def set_status(self, board: Board, item_ids: list[str], column: str) -> None:
        self.moves.append(column)


def _settings(db: str, tmp_path: Path, **extra: str) -> Settings:
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(PROFILES)
    return load_settings(
        {
            "DATABASE_URL": db,
            "GITHUB_TOKEN": "t",
            "GITHUB_API_URL": MOCK_API,
            "GITHUB_WRITE_INTERVAL": "0",
            "GITHUB_CONTENT_LIMITS": "none",
            "SPECBRIDGE_AGENTS": str(profiles),
            **extra,
        }
    )


@pytest.fixture
def settings(db: str, tmp_path: Path) -> Settings:
    return _settings(db, tmp_path)


@pytest.fixture
def cards(monkeypatch: pytest.MonkeyPatch) -> Cards:
    board = Cards()
    for module in (hosted, run):  # run: the board of a TaskJob
        monkeypatch.setattr(module, "BoardGateway", lambda connection: board)
    return board


def _task(  # type: ignore[no-untyped-def]
    session: Session,
    agent: str,
    status: TaskStatus = TaskStatus.QUEUED,
    phase: TicketPhase = TicketPhase.BACKLOG,
    **fields,
) -> int:
    repository = Repository(
        full_name="acme/rocket",
        default_branch="trunk",
        settings={"project": {"owner": "acme", "number": 1}},
        installation=Installation(github_id=7, account_login="acme"),
    )
    spec = Spec(
        repository=repository,
        key="rocket",
        path="specs/rocket.yaml",
        title="Rocket",
        phase="tasks",
        status=SpecStatus.PLANNED,
    )
    ticket = Ticket(
        repository=repository,
        spec=spec,
        issue_number=2,
        issue_node_id="I_2",
        project_item_id="PVTI_2",
        phase=phase,
    )
    task = Task(ticket=ticket, agent=agent, status=status, **fields)
    session.add_all([repository, spec, ticket, task])
    session.commit()
    return task.id


def _state(settings: Settings) -> tuple[TaskStatus, TicketPhase, Task]:
    with session_scope(settings.database_url) as session:
        task = session.scalars(select(Task)).one()
        session.expunge(task)
        return task.status, session.scalars(select(Ticket.phase)).one(), task


def _dispatch(settings: Settings, monkeypatch: pytest.MonkeyPatch, task_id: int) -> None:
    monkeypatch.setattr(hosted, "get_settings", lambda: settings)
    dispatch_task(task_id)


def _no_instructions() -> None:
    """The repository has no instructions for agents (AGENTS.md, ...)."""
    for path in INSTRUCTION_FILES:
        responses.get(
            f"{MOCK_API}/repos/acme/rocket/contents/{path}",
            status=404,
            json={"message": "Not Found"},
        )


def _sent(index: int) -> dict:  # type: ignore[type-arg]
    return json.loads(responses.calls[index].request.body)


# -- handing over ------------------------------------------------------------------------


@responses.activate
def test_a_label_profile_adds_its_label_and_the_card_goes_to_analyzing(
    settings: Settings, session: Session, cards: Cards, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id = _task(session, "fixer")
    responses.post(
        f"{ISSUE}/labels",
        json=[{"name": "fix-me"}],
        match=[matchers.json_params_matcher({"labels": ["fix-me"]})],
    )
    _dispatch(settings, monkeypatch, task_id)
    status, phase, task = _state(settings)
    assert (status, phase, cards.moves) == (
        TaskStatus.RUNNING,
        TicketPhase.ANALYZING,
        ["Analyzing"],
    )
    assert task.dispatched_at is not None and task.attempts == 1
    assert len(responses.calls) == 1


@responses.activate
def test_a_comment_profile_posts_its_comment(
    settings: Settings, session: Session, cards: Cards, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id = _task(session, "claude-action")
    responses.post(
        f"{ISSUE}/comments",
        json={"id": 1},
        match=[matchers.json_params_matcher({"body": "@claude implement this issue as described"})],
    )
    _dispatch(settings, monkeypatch, task_id)
    assert _state(settings)[:2] == (TaskStatus.RUNNING, TicketPhase.ANALYZING)


@responses.activate
def test_copilot_without_a_persons_token_is_refused_with_a_comment(
    settings: Settings, session: Session, cards: Cards, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id = _task(session, "copilot")
    responses.post(f"{ISSUE}/comments", json={"id": 1})
    responses.post(f"{ISSUE}/labels", json=[{"name": FAILED_LABEL}])
    _dispatch(settings, monkeypatch, task_id)
    status, phase, task = _state(settings)
    # Shown failed: the card in the column before Building, the label on the issue.
    assert (status, phase, cards.moves) == (TaskStatus.FAILED, TicketPhase.ANALYZING, ["Analyzing"])
    assert "SPECBRIDGE_AGENT_USER_TOKEN" in (task.error or "")
    said = _sent(0)["body"]
    assert "SPECBRIDGE_AGENT_USER_TOKEN" in said and "`/retry`" in said
    assert _sent(1) == {"labels": [FAILED_LABEL]}
    assert len(responses.calls) == 2  # nothing asked of GitHub's GraphQL


@responses.activate
def test_copilot_is_assigned_with_the_persons_token_the_base_and_the_instructions(
    db: str, tmp_path: Path, session: Session, cards: Cards, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(db, tmp_path, SPECBRIDGE_AGENT_USER_TOKEN="ghp_person")
    task_id = _task(session, "copilot")
    person = [matchers.header_matcher({"Authorization": "token ghp_person"})]
    responses.post(
        MOCK_GRAPHQL,
        json={
            "data": {
                "repository": {
                    "id": "R_1",
                    "suggestedActors": {"nodes": [{"login": "copilot-swe-agent", "id": "BOT_1"}]},
                }
            }
        },
        match=person,
    )
    _no_instructions()
    responses.post(
        MOCK_GRAPHQL,
        json={"data": {"m0": {"assignable": {"id": "I_2"}}}},
        match=[
            *person,
            matchers.header_matcher({"GraphQL-Features": "issues_copilot_assignment_api_support"}),
        ],
    )
    _dispatch(settings, monkeypatch, task_id)
    assert _state(settings)[:2] == (TaskStatus.RUNNING, TicketPhase.ANALYZING)
    assignment = _sent(4)["variables"]["m0"]
    assert assignment["assignableId"] == "I_2" and assignment["assigneeIds"] == ["BOT_1"]
    agent = assignment["agentAssignment"]
    assert (agent["targetRepositoryId"], agent["baseRef"]) == ("R_1", "trunk")  # the default
    assert agent["customAgent"] == "tester"
    assert agent["customInstructions"].startswith("Run the tests before you finish.\n\n")
    assert "`Fixes #2`" in agent["customInstructions"]
    # The prompt a local agent gets goes along: Copilot reads the issue only when assigned.
    assert (
        "This is issue https://ghe.example:8443/acme/rocket/issues/2"
        in (agent["customInstructions"])
    )


@responses.activate
def test_github_refusing_copilot_fails_the_task_with_its_reason(
    db: str, tmp_path: Path, session: Session, cards: Cards, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(db, tmp_path, SPECBRIDGE_AGENT_USER_TOKEN="ghp_person")
    task_id = _task(session, "copilot")
    responses.post(
        MOCK_GRAPHQL,
        json={"data": {"repository": {"id": "R_1", "suggestedActors": {"nodes": []}}}},
    )
    _no_instructions()
    responses.post(f"{ISSUE}/comments", json={"id": 1})
    responses.post(f"{ISSUE}/labels", json=[{"name": FAILED_LABEL}])
    _dispatch(settings, monkeypatch, task_id)
    assert _state(settings)[:2] == (TaskStatus.FAILED, TicketPhase.ANALYZING)
    assert "enable the Copilot coding agent" in _sent(4)["body"]
    assert _sent(5) == {"labels": [FAILED_LABEL]}


@responses.activate
def test_a_workflow_github_will_not_run_fails_the_task_with_its_words(
    settings: Settings, session: Session, cards: Cards, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id = _task(session, "runner")
    _no_instructions()
    dispatches = f"{MOCK_API}/repos/acme/rocket/actions/workflows/agent.yml/dispatches"
    responses.post(
        dispatches, status=422, json={"message": 'Unexpected inputs provided: ["prompt"]'}
    )
    responses.post(f"{ISSUE}/comments", json={"id": 1})
    responses.post(f"{ISSUE}/labels", json=[{"name": FAILED_LABEL}])
    _dispatch(settings, monkeypatch, task_id)
    assert _state(settings)[0] is TaskStatus.FAILED
    sent = _sent(3)
    assert sent["ref"] == "trunk" and sent["return_run_details"] is True
    assert "This is issue" in sent["inputs"]["prompt"]
    said = _sent(4)["body"]
    assert (
        'GitHub did not run the workflow `agent.yml`: 422 Unexpected inputs provided: ["prompt"]'
        in said
    )
    assert "it needs a workflow with `on: workflow_dispatch`" in said


@responses.activate
def test_a_task_cancelled_before_its_hand_over_is_not_handed_over(
    settings: Settings, session: Session, cards: Cards, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id = _task(session, "fixer", TaskStatus.CANCELLED)
    _dispatch(settings, monkeypatch, task_id)
    assert len(responses.calls) == 0 and cards.moves == []


# -- taking back -------------------------------------------------------------------------


@responses.activate
def test_cancel_takes_the_label_back(settings: Settings, session: Session) -> None:
    _task(session, "fixer", TaskStatus.RUNNING, dispatched_at=datetime.now(UTC))
    responses.delete(f"{ISSUE}/labels/fix-me", json=[])
    cards = Cards()
    repo = RepositoryGateway(github_client(settings, 7), "acme/rocket")
    with session_scope(settings.database_url) as scoped:
        ticket = scoped.scalars(select(Ticket)).one()
        reply = Steering(scoped, settings, repo, cards).cancel(ticket, "maintainer")  # type: ignore[arg-type]
    assert reply.endswith("back in the backlog; the label `fix-me` is removed.")
    assert _state(settings)[0] is TaskStatus.CANCELLED
    assert len(responses.calls) == 1


@responses.activate
def test_no_pull_request_within_the_timeout_fails_the_task_once(
    settings: Settings, session: Session, cards: Cards
) -> None:
    _task(
        session,
        "fixer",
        TaskStatus.RUNNING,
        TicketPhase.ANALYZING,
        dispatched_at=datetime.now(UTC) - timedelta(seconds=601),
    )
    responses.delete(f"{ISSUE}/labels/fix-me", json=[])
    responses.post(f"{ISSUE}/comments", json={"id": 1})
    responses.post(f"{ISSUE}/labels", json=[{"name": FAILED_LABEL}])
    assert expire_dispatched_tasks(settings) == 1
    assert expire_dispatched_tasks(settings) == 0
    status, phase, task = _state(settings)
    # Failed: the column before Building, where the card is already; the label on.
    assert (status, phase, cards.moves) == (TaskStatus.FAILED, TicketPhase.ANALYZING, [])
    assert _sent(2) == {"labels": [FAILED_LABEL]}
    assert task.error == "no pull request within 600s"
    said = _sent(1)["body"]
    assert "no pull request" in said and "600s" in said and "label `fix-me` is removed" in said


@responses.activate
def test_a_task_within_its_timeout_or_with_a_pull_request_is_left_waiting(
    settings: Settings, session: Session
) -> None:
    _task(session, "fixer", TaskStatus.RUNNING, dispatched_at=datetime.now(UTC))
    assert expire_dispatched_tasks(settings) == 0
    with session_scope(settings.database_url) as scoped:
        task = scoped.scalars(select(Task)).one()
        task.dispatched_at = datetime.now(UTC) - timedelta(days=1)
        task.pull_request_number = 9
    assert expire_dispatched_tasks(settings) == 0
    assert len(responses.calls) == 0


def test_the_reaper_leaves_a_handed_over_task_alone(settings: Settings, session: Session) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    _task(session, "fixer", TaskStatus.RUNNING, dispatched_at=long_ago, heartbeat_at=long_ago)
    assert reap_stale_tasks(settings) == 0
    assert _state(settings)[0] is TaskStatus.RUNNING


# -- following the pull request ----------------------------------------------------------


def test_closing_keywords_name_issues_of_this_repository_only() -> None:
    body = (
        "Fixes #2, closes: acme/rocket#3 and Resolved #4.\nfixes other/repo#5; prefixes #6; see #7"
    )
    assert named_issues(body, "acme/rocket") == [2, 3, 4]


def _pull(
    action: str, draft: bool = False, merged: bool = False, state: str = "open"
) -> PullRequest:
    return PullRequest(12, action, draft, merged, state, "Fixes #2", "copilot/fix-2")


def _follow(settings: Settings, cards: Cards, pull: PullRequest) -> None:
    repo = RepositoryGateway(github_client(settings, 7), "acme/rocket")
    with session_scope(settings.database_url) as scoped:
        follow_pull_request(scoped, settings, repo, cards, pull)  # type: ignore[arg-type]


@responses.activate
def test_the_card_follows_the_draft_then_ready_then_merged_pull_request(
    settings: Settings, session: Session
) -> None:
    _task(session, "fixer", TaskStatus.RUNNING, dispatched_at=datetime.now(UTC))
    cards = Cards()
    _follow(settings, cards, _pull("opened", draft=True))
    status, phase, task = _state(settings)
    assert (status, phase, task.pull_request_number, task.branch) == (
        TaskStatus.RUNNING,
        TicketPhase.BUILDING,
        12,
        "copilot/fix-2",
    )
    _follow(settings, cards, _pull("ready_for_review"))
    assert _state(settings)[1] is TicketPhase.TESTING
    _follow(settings, cards, _pull("closed", merged=True, state="closed"))
    assert _state(settings)[:2] == (TaskStatus.SUCCEEDED, TicketPhase.TESTING)
    assert cards.moves == ["Building", "Testing"]
    assert len(responses.calls) == 0  # the body named the issue: nothing asked of GitHub


@responses.activate
def test_a_pull_request_closed_unmerged_sends_the_card_back_and_takes_the_label(
    settings: Settings, session: Session
) -> None:
    _task(
        session,
        "fixer",
        TaskStatus.RUNNING,
        TicketPhase.TESTING,
        dispatched_at=datetime.now(UTC),
        pull_request_number=12,
    )
    responses.delete(f"{ISSUE}/labels/fix-me", json=[])
    responses.post(f"{ISSUE}/comments", json={"id": 1})
    responses.post(f"{ISSUE}/labels", json=[{"name": FAILED_LABEL}])
    cards = Cards()
    _follow(settings, cards, _pull("closed", state="closed"))
    status, phase, task = _state(settings)
    assert (status, phase, cards.moves) == (TaskStatus.FAILED, TicketPhase.ANALYZING, ["Analyzing"])
    assert _sent(2) == {"labels": [FAILED_LABEL]}
    assert task.error == "its pull request #12 was closed without merging"
    said = _sent(1)["body"]
    assert "#12 was closed without merging" in said and "the label `fix-me` is removed" in said


@responses.activate
def test_a_pull_request_naming_no_issue_is_matched_by_githubs_links(
    settings: Settings, session: Session
) -> None:
    _task(session, "fixer", TaskStatus.RUNNING, dispatched_at=datetime.now(UTC))
    responses.post(
        MOCK_GRAPHQL,
        json={
            "data": {
                "repository": {
                    "pullRequest": {
                        "closingIssuesReferences": {
                            "nodes": [{"number": 2, "repository": {"nameWithOwner": "acme/rocket"}}]
                        }
                    }
                }
            }
        },
    )
    cards = Cards()
    pull = PullRequest(12, "opened", True, False, "open", "Work in progress", "copilot/fix-2")
    _follow(settings, cards, pull)
    assert _state(settings)[1] is TicketPhase.BUILDING


@responses.activate
def test_an_agents_first_draft_naming_no_issue_is_its_by_author(
    settings: Settings, session: Session
) -> None:
    _task(session, "copilot", TaskStatus.RUNNING, dispatched_at=datetime.now(UTC))
    no_links = {"data": {"repository": {"pullRequest": {"closingIssuesReferences": {"nodes": []}}}}}
    responses.post(MOCK_GRAPHQL, json=no_links)
    responses.post(MOCK_GRAPHQL, json=no_links)
    cards = Cards()
    # Someone else's pull request naming no issue is nobody's.
    _follow(settings, cards, PullRequest(11, "opened", True, False, "open", "WIP", "x", "mona"))
    assert _state(settings)[2].pull_request_number is None and cards.moves == []
    # Copilot's first draft says "[WIP]" only: its author says whose it is.
    draft = PullRequest(12, "opened", True, False, "open", "[WIP]", "copilot/fix", "Copilot")
    _follow(settings, cards, draft)
    assert _state(settings)[1] is TicketPhase.BUILDING
    assert _state(settings)[2].pull_request_number == 12


@responses.activate
def test_other_pull_requests_and_finished_tasks_are_not_followed(
    settings: Settings, session: Session
) -> None:
    _task(session, "fixer", TaskStatus.CANCELLED, dispatched_at=datetime.now(UTC))
    cards = Cards()
    _follow(settings, cards, _pull("opened"))
    with session_scope(settings.database_url) as scoped:
        scoped.scalars(select(Task)).one().status = TaskStatus.RUNNING
        scoped.scalars(select(Task)).one().pull_request_number = 11  # another pull request's
    _follow(settings, cards, _pull("opened"))
    assert cards.moves == [] and len(responses.calls) == 0


def test_a_closed_issue_ends_a_handed_over_task_and_keeps_its_label_until_then(
    settings: Settings, session: Session
) -> None:
    _task(session, "fixer", TaskStatus.RUNNING, dispatched_at=datetime.now(UTC))
    ticket = session.scalars(select(Ticket)).one()
    assert handed_over_labels(settings, ticket) == ["fix-me"]
    ticket.state, ticket.state_reason = IssueState.CLOSED, "completed"
    assert [t.status for t in finish_on_close(ticket)] == [TaskStatus.SUCCEEDED]
    assert handed_over_labels(settings, ticket) == []
