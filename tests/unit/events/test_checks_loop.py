"""The repository's checks on an agent's pull request, fed GitHub's own published
`check_run` and `check_suite` payloads, with the exact requests they lead to (every one
checked against GitHub's REST description's answers where the double is not there)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import responses
from responses import matchers
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.events import handlers
from bot.events.router import Event, router
from bot.settings import Settings, load_settings
from storage.models import (
    CheckVerdict,
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

REPO = "Codertocat/Hello-World"
API = f"{MOCK_API}/repos/{REPO}"
SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"  # the head in GitHub's published payloads
PULL = 2
PROFILES = """\
default:
  command: my-agent "$SPECBRIDGE_TASK_FILE"
  reviewers: [octocat]
"""


@pytest.fixture
def settings(db: str, held_jobs: list[HeldJob], tmp_path: Path) -> Settings:
    handlers.load()
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(PROFILES)
    return load_settings(
        {
            "DATABASE_URL": db,
            "GITHUB_TOKEN": "t",
            "GITHUB_API_URL": MOCK_API,
            "GITHUB_WRITE_INTERVAL": "0",
            "GITHUB_APP_SLUG": "specbridge",
            "SPECBRIDGE_AGENTS": str(profiles),
        }
    )


@pytest.fixture
def ticket(session: Session) -> Ticket:
    """Issue #1, whose agent opened pull request #2, in Testing."""
    repository = Repository(full_name=REPO)
    spec = Spec(
        repository=repository,
        key="login",
        path="specs/login.yaml",
        title="Login",
        phase="tasks",
        status=SpecStatus.PLANNED,
    )
    ticket = Ticket(repository=repository, spec=spec, issue_number=1, phase=TicketPhase.TESTING)
    task = Task(
        ticket=ticket,
        agent="default",
        status=TaskStatus.SUCCEEDED,
        branch="specbridge/login/T-1",
        pull_request_number=PULL,
    )
    session.add_all([repository, spec, ticket, task])
    session.commit()
    return ticket


def _pull(draft: bool = True) -> dict[str, Any]:
    return {
        "number": PULL,
        "node_id": "PR_2",
        "state": "open",
        "draft": draft,
        "head": {"sha": SHA, "ref": "specbridge/login/T-1"},
        "base": {"sha": "f95f852", "ref": "master"},
    }


def _github_says(conclusion: str) -> None:
    """GitHub's answers about the head: one Actions run, no status, no protection."""
    responses.get(f"{API}/pulls/{PULL}", json=_pull())
    responses.get(
        f"{API}/commits/{SHA}/check-runs",
        json={
            "total_count": 1,
            "check_runs": [
                {
                    "id": 128620228,
                    "name": "Octocoders-linter",
                    "status": "completed",
                    "conclusion": conclusion,
                    "app": {"slug": "github-actions"},
                    "output": {"title": "Lint", "summary": "1 issue", "text": "E1 bad"},
                }
            ],
        },
    )
    responses.get(f"{API}/commits/{SHA}/status", json={"state": "pending", "statuses": []})
    responses.get(f"{API}/branches/master", json={"name": "master", "protected": False})


def dispatch(session: Session, settings: Settings, event: str, payload: dict[str, Any]) -> None:
    router.dispatch(Event(event, payload, "d", settings, session))


@responses.activate
def test_a_published_check_run_completed_passing_marks_the_draft_ready_once(
    session: Session, settings: Settings, ticket: Ticket
) -> None:
    _github_says("success")
    ready = responses.post(
        MOCK_GRAPHQL,
        json={"data": {"markPullRequestReadyForReview": {"pullRequest": {"isDraft": False}}}},
    )
    asked = responses.post(
        f"{API}/pulls/{PULL}/requested_reviewers",
        status=201,
        json={},
        match=[matchers.json_params_matcher({"reviewers": ["octocat"], "team_reviewers": []})],
    )
    responses.get(
        f"{API}/pulls/{PULL}/requested_reviewers",
        json={"users": [{"login": "octocat"}], "teams": [{"slug": "core"}]},
    )
    said = responses.post(f"{API}/issues/1/comments", status=201, json={})

    completed = github_payload("check_run", "completed.payload.json")
    assert not router.wanted("check_run", {**completed, "check_run": {"pull_requests": []}})
    dispatch(session, settings, "check_run", completed)
    assert ready.call_count == asked.call_count == said.call_count == 1
    assert json.loads(said.calls[0].request.body)["body"] == (
        "The repository's checks passed on #2 (`Octocoders-linter`): it is marked ready for "
        "review, and @octocat, @Codertocat/core are asked to review it."
    )
    # The suite's completion, the same news: nothing more is written.
    dispatch(
        session, settings, "check_suite", github_payload("check_suite", "completed.payload.json")
    )
    assert said.call_count == 1 and ready.call_count == 1
    verdicts = session.scalars(select(CheckVerdict.verdict)).all()
    assert verdicts == ["passed"]


@responses.activate
def test_a_published_check_suite_completed_failing_runs_the_agent_again(
    session: Session, settings: Settings, ticket: Ticket, held_jobs: list[HeldJob]
) -> None:
    _github_says("failure")
    responses.get(
        f"{API}/check-runs/128620228/annotations",
        json=[
            {
                "path": "README.md",
                "start_line": 2,
                "end_line": 2,
                "annotation_level": "failure",
                "message": "Spell it right",
                "title": None,
            }
        ],
        match=[matchers.query_param_matcher({"per_page": "50", "page": "1"})],
    )
    said = responses.post(f"{API}/issues/1/comments", status=201, json={})
    dispatch(
        session, settings, "check_suite", github_payload("check_suite", "completed.payload.json")
    )

    revision = session.scalars(select(Task).where(Task.revision == 1)).one()
    assert revision.fixes_checks and revision.branch == "specbridge/login/T-1"
    assert "### `Octocoders-linter` (check run): failure" in (revision.review or "")
    assert "E1 bad" in (revision.review or "")
    assert "- `README.md` line 2 (failure): Spell it right" in (revision.review or "")
    assert [job.name for job in held_jobs] == ["refresh_tracking", "run_task"]
    assert session.get_one(Ticket, ticket.id).phase is TicketPhase.BUILDING
    body = json.loads(said.calls[0].request.body)["body"]
    assert body.startswith("The repository's checks failed on #2: `Octocoders-linter`.")
    assert "(revision 1 of 3)" in body
