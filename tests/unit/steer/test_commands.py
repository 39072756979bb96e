"""Comment commands and card moves, fed GitHub's published payloads
(changed only in ids and bodies), with the exact requests they make."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import responses
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.agents.scheduler import queue_task
from bot.events import handlers
from bot.events.router import Event, router
from bot.settings import Settings, load_settings
from bot.steer import commands
from storage.models import (
    Approval,
    CommandRun,
    IssueState,
    Repository,
    Spec,
    SpecStatus,
    Task,
    TaskStatus,
    Ticket,
    TicketPhase,
)
from tests.support import MOCK_API, MOCK_GRAPHQL, github_payload
from tests.unit.conftest import HeldJob

API = MOCK_API
GRAPHQL = MOCK_GRAPHQL
REPO = "Codertocat/Hello-World"


@pytest.fixture
def ticket(session: Session) -> Ticket:
    repository = Repository(
        full_name=REPO, settings={"project": {"owner": "Octocoders", "number": 1}}
    )
    spec = Spec(
        repository=repository,
        key="login",
        path="specs/login.yaml",
        title="Login",
        phase="tasks",
        status=SpecStatus.PLANNED,
        tracking_issue_number=9,
    )
    ticket = Ticket(
        repository=repository,
        spec=spec,
        issue_number=1,
        approval=Approval.PENDING,
        issue_node_id="I_1",
        project_item_id="PVTI_lADOAWcTxs07G84AVqWu",
    )
    session.add_all([repository, spec, ticket])
    session.commit()
    return ticket


def comment(
    body: str, association: str = "OWNER", login: str = "Codertocat", comment_id: int = 7
) -> dict:  # type: ignore[type-arg]
    payload = github_payload("issue_comment", "created.payload.json")
    payload["comment"].update(body=body, author_association=association, id=comment_id)
    payload["comment"]["user"]["login"] = login
    return payload


def dispatch(session: Session, settings: Settings, event: str, payload: dict) -> None:  # type: ignore[type-arg]
    handlers.load()  # registered on the router, whichever test runs first in this process
    router.dispatch(Event(event, payload, "d", settings, session))


def test_parse_finds_commands_at_the_start_of_lines_only() -> None:
    body = "Looks good.\n/approve\nplease /retry later\n/block waiting for keys \n/Status"
    assert commands.parse(body) == [(2, "approve", ""), (4, "block", "waiting for keys")]


def test_a_command_after_an_html_comment_keeps_its_line_number() -> None:
    assert commands.parse("<!--\n/approve\n-->\n/status") == [(4, "status", "")]


@responses.activate
def test_an_owner_approves_a_ticket(
    session: Session, handler_settings: Settings, ticket: Ticket
) -> None:
    reaction = responses.post(
        f"{API}/repos/{REPO}/issues/comments/7/reactions", json={}, status=201
    )
    reply = responses.post(f"{API}/repos/{REPO}/issues/1/comments", json={}, status=201)
    dispatch(session, handler_settings, "issue_comment", comment("/approve"))
    assert json.loads(reaction.calls[0].request.body) == {"content": "eyes"}
    assert ticket.approval is Approval.APPROVED and ticket.approved_by == "Codertocat"
    body = json.loads(reply.calls[0].request.body)["body"]
    assert body.startswith("@Codertocat") and "Approved by @Codertocat" in body
    run = session.scalars(select(CommandRun)).one()
    assert (run.command, run.allowed, run.user_login, run.line) == (
        "approve",
        True,
        "Codertocat",
        1,
    )


@responses.activate
def test_a_command_that_needs_a_broken_profiles_file_gets_a_reply(
    session: Session, db: str, tmp_path: Path, ticket: Ticket
) -> None:
    """Not an error retried and then marked done in silence: the person hears why."""
    profiles = tmp_path / "agents.yaml"
    profiles.write_text("default: [unclosed\n")
    settings = load_settings(
        {
            "DATABASE_URL": db,
            "GITHUB_TOKEN": "t",
            "GITHUB_API_URL": API,
            "GITHUB_WRITE_INTERVAL": "0",
            "SPECBRIDGE_AGENTS": str(profiles),
        }
    )
    responses.post(f"{API}/repos/{REPO}/issues/comments/7/reactions", json={}, status=201)
    reply = responses.post(f"{API}/repos/{REPO}/issues/1/comments", json={}, status=201)
    ticket.approval = Approval.APPROVED
    session.commit()
    dispatch(session, settings, "issue_comment", comment("/retry"))
    body = json.loads(reply.calls[0].request.body)["body"]
    assert "`/retry` cannot run now: SPECBRIDGE_AGENTS: cannot read" in body


@responses.activate
def test_someone_without_write_access_is_refused(
    session: Session, handler_settings: Settings, ticket: Ticket
) -> None:
    responses.post(f"{API}/repos/{REPO}/issues/comments/7/reactions", json={}, status=201)
    permission = responses.get(
        f"{API}/repos/{REPO}/collaborators/stranger/permission",
        json={"permission": "read", "role_name": "read"},
    )
    reply = responses.post(f"{API}/repos/{REPO}/issues/1/comments", json={}, status=201)
    dispatch(
        session, handler_settings, "issue_comment", comment("/approve", "CONTRIBUTOR", "stranger")
    )
    assert permission.call_count == 1
    assert ticket.approval is Approval.PENDING
    assert "needs write access" in json.loads(reply.calls[0].request.body)["body"]
    run = session.scalars(select(CommandRun)).one()
    assert (run.allowed, run.refusal_reason) == (False, "needs write access to the repository")


@responses.activate
def test_a_redelivered_comment_runs_nothing_twice(
    session: Session, handler_settings: Settings, ticket: Ticket
) -> None:
    responses.post(f"{API}/repos/{REPO}/issues/comments/7/reactions", json={}, status=201)
    reply = responses.post(f"{API}/repos/{REPO}/issues/1/comments", json={}, status=201)
    dispatch(session, handler_settings, "issue_comment", comment("/block waiting for keys"))
    posted = json.loads(reply.calls[0].request.body)["body"]
    listed = responses.get(
        f"{API}/repos/{REPO}/issues/1/comments",
        json=[{"id": 70, "body": posted, "user": {"login": "specbridge[bot]", "type": "Bot"}}],
    )

    dispatch(session, handler_settings, "issue_comment", comment("/block waiting for keys"))

    assert reply.call_count == 1
    assert listed.call_count == 1  # its reply looked for, and found
    assert ticket.blocked and ticket.blocked_reason == "waiting for keys"


@responses.activate
def test_a_command_an_attempt_recorded_but_did_not_run_runs_on_the_next(
    session: Session, handler_settings: Settings, ticket: Ticket
) -> None:
    """The attempt failed after recording it (GitHub answered 502 meanwhile): the
    delivery's retry runs it and answers, once."""
    session.add(
        CommandRun(
            repository_id=ticket.repository_id,
            issue_number=1,
            comment_id=7,
            line=1,
            user_login="Codertocat",
            command="approve",
            arguments="",
            allowed=False,
        )
    )
    session.commit()
    reaction = responses.post(f"{API}/repos/{REPO}/issues/comments/7/reactions", json={})
    listed = responses.get(f"{API}/repos/{REPO}/issues/1/comments", json=[])
    reply = responses.post(f"{API}/repos/{REPO}/issues/1/comments", json={}, status=201)

    dispatch(session, handler_settings, "issue_comment", comment("/approve"))

    assert ticket.approval is Approval.APPROVED
    assert listed.call_count == 1 and reaction.call_count == 0  # seen before
    body = json.loads(reply.calls[0].request.body)["body"]
    assert "Approved by @Codertocat" in body
    assert body.endswith("<!-- specbridge: reply to comment 7 -->")
    run = session.scalars(select(CommandRun)).one()
    assert run.allowed and run.result is not None and "Approved" in run.result


@responses.activate
def test_bots_are_ignored(session: Session, handler_settings: Settings, ticket: Ticket) -> None:
    payload = comment("/approve", login="specbridge[bot]")
    payload["comment"]["user"]["type"] = "Bot"
    dispatch(session, handler_settings, "issue_comment", payload)
    assert len(responses.calls) == 0
    assert session.scalars(select(CommandRun)).all() == []


@responses.activate
def test_an_unknown_command_names_the_nearest(
    session: Session, handler_settings: Settings, ticket: Ticket
) -> None:
    responses.post(f"{API}/repos/{REPO}/issues/comments/7/reactions", json={}, status=201)
    reply = responses.post(f"{API}/repos/{REPO}/issues/1/comments", json={}, status=201)
    dispatch(session, handler_settings, "issue_comment", comment("/aprove"))
    assert "Did you mean `/approve`?" in json.loads(reply.calls[0].request.body)["body"]


@responses.activate
@pytest.mark.parametrize("body", ["/lgtm", "/assign @octocat", "/cc @hubot", "/approve"])
def test_on_an_issue_specbridge_did_not_create_it_says_nothing(
    session: Session, handler_settings: Settings, ticket: Ticket, body: str
) -> None:
    payload = comment(body)
    payload["issue"]["number"] = 42  # a person's issue: no ticket, no tracking issue
    dispatch(session, handler_settings, "issue_comment", payload)
    assert len(responses.calls) == 0  # no reaction, no reply, no permission lookup
    assert session.scalars(select(CommandRun)).all() == []


@responses.activate
@pytest.mark.parametrize("body", ["/lgtm", "/assign @octocat", "/cc @hubot"])
def test_other_bots_commands_on_a_ticket_get_no_answer(
    session: Session, handler_settings: Settings, ticket: Ticket, body: str
) -> None:
    dispatch(session, handler_settings, "issue_comment", comment(body))
    assert len(responses.calls) == 0
    assert session.scalars(select(CommandRun)).all() == []


@responses.activate
@pytest.mark.parametrize(
    "body",
    [
        "How to approve:\n```\n/approve\n```",
        "~~~sh\n/approve\n~~~",
        "> /approve\nquoting the docs",
        "<!-- /approve -->",
        "Thanks!\n<!--\n/approve\n-->",
        "<!-- hidden until the end\n/approve",
    ],
)
def test_an_approve_in_a_code_block_a_quote_or_an_html_comment_changes_nothing(
    session: Session, handler_settings: Settings, ticket: Ticket, body: str
) -> None:
    dispatch(session, handler_settings, "issue_comment", comment(body))
    assert len(responses.calls) == 0
    assert ticket.approval is Approval.PENDING


@responses.activate
def test_help_says_what_each_command_does(
    session: Session, handler_settings: Settings, ticket: Ticket
) -> None:
    responses.post(f"{API}/repos/{REPO}/issues/comments/7/reactions", json={}, status=201)
    reply = responses.post(f"{API}/repos/{REPO}/issues/1/comments", json={}, status=201)
    dispatch(session, handler_settings, "issue_comment", comment("/help"))
    body = json.loads(reply.calls[0].request.body)["body"]
    listed = [line for line in body.splitlines() if line.startswith("- `/")]
    assert {line.split("`")[1].split()[0] for line in listed} >= {"/approve", "/retry", "/phase"}
    assert all(" — " in line and len(line.split(" — ")[1]) > 10 for line in listed)


def _issue_json(number: int) -> dict:  # type: ignore[type-arg]
    return {
        "number": number,
        "id": number,
        "node_id": f"I_{number}",
        "title": "t",
        "body": "",
        "state": "open",
        "state_reason": None,
        "labels": [],
    }


def _card_moved(column: str, by_permission: str = "write") -> None:
    responses.get(
        f"{API}/repos/{REPO}/collaborators/wolfy1339/permission",
        json={"permission": by_permission, "role_name": by_permission},
    )
    responses.post(
        GRAPHQL,
        json={
            "data": {
                "node": {"id": "PVTI_lADOAWcTxs07G84AVqWu", "fieldValueByName": {"name": column}}
            }
        },
    )


def _edited_payload() -> dict:  # type: ignore[type-arg]
    payload = github_payload("projects_v2_item", "edited.payload.json")
    payload["projects_v2_item"].update(content_type="Issue", content_node_id="I_1")
    return payload


@responses.activate
def test_a_card_moved_to_done_closes_the_issue(
    session: Session, handler_settings: Settings, ticket: Ticket
) -> None:
    _card_moved("Done")
    close = responses.patch(
        f"{API}/repos/{REPO}/issues/1",
        json={
            "number": 1,
            "id": 1,
            "node_id": "I_1",
            "title": "t",
            "body": "",
            "state": "closed",
            "state_reason": "completed",
            "labels": [],
        },
    )
    completion = responses.post(f"{API}/repos/{REPO}/issues/9/comments", json={}, status=201)
    close_tracking = responses.patch(
        f"{API}/repos/{REPO}/issues/9", json={**_issue_json(9), "state": "closed"}
    )
    dispatch(session, handler_settings, "projects_v2_item", _edited_payload())
    assert json.loads(close.calls[0].request.body) == {
        "state": "closed",
        "state_reason": "completed",
    }
    assert ticket.phase is TicketPhase.DONE
    # Applied at once: the bot's own close comes back as an event it does not act on.
    assert (ticket.state, ticket.state_reason) == (IssueState.CLOSED, "completed")
    # It was the spec's only ticket: the tracking issue closes with a word why.
    assert "complete" in json.loads(completion.calls[0].request.body)["body"]
    assert json.loads(close_tracking.calls[0].request.body)["state"] == "closed"


@responses.activate
def test_a_card_moved_to_analyzing_approves_a_gated_ticket(
    session: Session, handler_settings: Settings, ticket: Ticket
) -> None:
    _card_moved("Analyzing")
    said = responses.post(f"{API}/repos/{REPO}/issues/1/comments", json={}, status=201)
    dispatch(session, handler_settings, "projects_v2_item", _edited_payload())
    assert ticket.phase is TicketPhase.ANALYZING
    assert ticket.approval is Approval.APPROVED
    assert ticket.approved_by == "wolfy1339"
    # No profile works it here (no profiles file): the issue says so, not the card alone.
    body = json.loads(said.calls[0].request.body)["body"]
    assert "nothing starts yet: no agent profile named `default` is configured" in body


@responses.activate
@pytest.mark.parametrize(("column", "permission"), [("Done", "read"), ("Analyzing", "triage")])
def test_a_card_moved_by_someone_without_write_access_changes_nothing(
    session: Session, handler_settings: Settings, ticket: Ticket, column: str, permission: str
) -> None:
    _card_moved(column, by_permission=permission)
    said = responses.post(f"{API}/repos/{REPO}/issues/1/comments", json={}, status=201)
    dispatch(session, handler_settings, "projects_v2_item", _edited_payload())
    assert (ticket.phase, ticket.state, ticket.approval) == (
        TicketPhase.BACKLOG,
        IssueState.OPEN,
        Approval.PENDING,
    )
    assert not ticket.tasks
    body = json.loads(said.calls[0].request.body)["body"]
    assert f"needs write access to this repository, and @wolfy1339 has {permission}" in body
    assert "The card is back in backlog." in body


@responses.activate
def test_the_bots_own_moves_are_not_acted_on(
    session: Session, handler_settings: Settings, ticket: Ticket
) -> None:
    payload = _edited_payload()
    payload["sender"].update(login="specbridge[bot]", type="Bot")
    dispatch(session, handler_settings, "projects_v2_item", payload)
    assert len(responses.calls) == 0
    assert ticket.phase is TicketPhase.BACKLOG


@pytest.fixture
def agent_settings(handler_settings: Settings, tmp_path: Path) -> Settings:
    """Handler settings with the agent profile `default`."""
    profiles = tmp_path / "agents.yaml"
    profiles.write_text("default:\n  command: make\n")
    return dataclasses.replace(handler_settings, agents_file=profiles)


@responses.activate
def test_retry_queues_again_a_task_whose_job_was_lost(
    session: Session, agent_settings: Settings, ticket: Ticket, held_jobs: list[HeldJob]
) -> None:
    """The embedded server was killed, or Redis restarted empty: the Task says queued,
    but no job will run it. `/retry` queues its run again instead of refusing."""
    ticket.approval = Approval.APPROVED
    lost = Task(
        ticket=ticket,
        agent="default",
        status=TaskStatus.QUEUED,
        rq_job_id="task-lost",
        queued_at=datetime.now(UTC) - timedelta(minutes=5),
    )
    session.add(lost)
    session.commit()
    responses.post(f"{API}/repos/{REPO}/issues/comments/7/reactions", json={}, status=201)
    reply = responses.post(f"{API}/repos/{REPO}/issues/1/comments", json={}, status=201)

    dispatch(session, agent_settings, "issue_comment", comment("/retry"))

    body = json.loads(reply.calls[0].request.body)["body"]
    assert f"Task {lost.id} was queued, but its job was lost" in body
    assert [(job.name, job.args) for job in held_jobs] == [("run_task", (lost.id,))]
    assert held_jobs[0].job_id == lost.rq_job_id == f"task-{lost.id}-0"
    assert session.scalars(select(Task)).all() == [lost]  # the same Task, not a new one


@responses.activate
def test_retry_leaves_a_queued_task_whose_job_waits(
    session: Session, agent_settings: Settings, ticket: Ticket, held_jobs: list[HeldJob]
) -> None:
    ticket.approval = Approval.APPROVED
    session.commit()
    responses.post(f"{API}/repos/{REPO}/issues/comments/7/reactions", json={}, status=201)
    reply = responses.post(f"{API}/repos/{REPO}/issues/1/comments", json={}, status=201)
    queue_task(session, agent_settings, ticket)
    session.execute(update(Task).values(queued_at=datetime.now(UTC) - timedelta(minutes=5)))
    session.commit()

    dispatch(session, agent_settings, "issue_comment", comment("/retry"))

    assert "a task is already queued or running" in json.loads(reply.calls[0].request.body)["body"]
    assert len(held_jobs) == 1


@responses.activate
def test_status_after_the_agent_succeeded_says_its_work_waits_not_ready_to_run(
    session: Session, db: str, tmp_path: Path, ticket: Ticket
) -> None:
    profiles = tmp_path / "agents.yaml"
    profiles.write_text("default:\n  command: make\n  sandbox: none\n")
    settings = load_settings(
        {
            "DATABASE_URL": db,
            "GITHUB_TOKEN": "t",
            "GITHUB_API_URL": API,
            "GITHUB_WRITE_INTERVAL": "0",
            "SPECBRIDGE_AGENTS": str(profiles),
        }
    )
    ticket.approval = Approval.APPROVED
    session.add(
        Task(ticket=ticket, agent="default", status=TaskStatus.SUCCEEDED, pull_request_number=21)
    )
    session.commit()
    responses.post(f"{API}/repos/{REPO}/issues/comments/7/reactions", json={}, status=201)
    reply = responses.post(f"{API}/repos/{REPO}/issues/1/comments", json={}, status=201)

    dispatch(session, settings, "issue_comment", comment("/status"))

    body = json.loads(reply.calls[0].request.body)["body"]
    assert "the agent's run succeeded: #21 waits for review and merge" in body
    assert "ready to run" not in body


@responses.activate
def test_attempt_runs_each_named_agent_on_a_branch_of_its_own(
    session: Session,
    handler_settings: Settings,
    ticket: Ticket,
    held_jobs: list[HeldJob],
    tmp_path: Path,
) -> None:
    profiles = tmp_path / "agents.yaml"
    profiles.write_text("default:\n  command: make\nother:\n  command: make\n")
    settings = dataclasses.replace(handler_settings, agents_file=profiles)
    ticket.approval = Approval.APPROVED
    session.commit()
    responses.post(f"{API}/repos/{REPO}/issues/comments/7/reactions", json={}, status=201)
    reply = responses.post(f"{API}/repos/{REPO}/issues/1/comments", json={}, status=201)

    dispatch(session, settings, "issue_comment", comment("/attempt default other"))

    body = json.loads(reply.calls[0].request.body)["body"]
    assert "2 attempts, each on its own branch and draft pull request" in body
    tasks = session.scalars(select(Task).order_by(Task.id)).all()
    assert [(t.agent, t.attempt_number, t.status) for t in tasks] == [
        ("default", 1, TaskStatus.QUEUED),
        ("other", 2, TaskStatus.QUEUED),
    ]
    assert len(held_jobs) == 2

    dispatch(session, settings, "issue_comment", comment("/attempt default nobody", comment_id=8))
    assert (
        "Nothing runs: no agent profile named `nobody`"
        in json.loads(reply.calls[1].request.body)["body"]
    )
