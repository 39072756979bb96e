"""The review loop: a review that requests changes on an agent's pull request, or
`/revise` on its issue, queues the agent again on the same branch and pull
request with the reviewer's words; everything else runs nothing. Payloads and
GitHub's answers are checked against GitHub's published descriptions."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import responses
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.events import handlers
from bot.events.router import Event, router
from bot.github import RepositoryGateway, github_client
from bot.github.repository import ReviewComment
from bot.settings import Settings, load_settings
from storage.models import (
    CommandRun,
    Repository,
    Spec,
    SpecStatus,
    Task,
    TaskStatus,
    Ticket,
)
from tests.support import MOCK_API, github_payload
from tests.unit.conftest import HeldJob
from tests.unit.double.shapes import rest_errors, webhook_errors

API = MOCK_API
REPO = "Codertocat/Hello-World"
BRANCH = "specbridge/login/T-1"
PULL = 2
REVIEW_ID = 80
COMMENTS_URL = f"{API}/repos/{REPO}/pulls/{PULL}/reviews/{REVIEW_ID}/comments"
COMMENTS_TEMPLATE = "/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}/comments"
PROFILES = """\
default:
  command: my-agent "$SPECBRIDGE_TASK_FILE"
  max_revisions: 2
copilot:
  github: {assign: copilot}
fixer:
  github: {label: fix-me}
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
            "GITHUB_API_URL": API,
            "GITHUB_WRITE_INTERVAL": "0",
            "SPECBRIDGE_AGENTS": str(profiles),
        }
    )


@pytest.fixture
def ticket(session: Session) -> Ticket:
    """Issue #1, whose agent opened pull request #2 from specbridge/login/T-1."""
    repository = Repository(full_name=REPO)
    spec = Spec(
        repository=repository,
        key="login",
        path="specs/login.yaml",
        title="Login",
        phase="tasks",
        status=SpecStatus.PLANNED,
        tracking_issue_number=9,
    )
    ticket = Ticket(repository=repository, spec=spec, issue_number=1, issue_node_id="I_1")
    opened = Task(
        ticket=ticket,
        agent="default",
        status=TaskStatus.SUCCEEDED,
        branch=BRANCH,
        pull_request_number=PULL,
    )
    session.add_all([repository, spec, ticket, opened])
    session.commit()
    return ticket


def review_payload(
    state: str = "changes_requested",
    login: str = "Codertocat",
    association: str = "OWNER",
    branch: str = BRANCH,
    body: str = "Please handle the empty case.",
) -> dict[str, Any]:
    """`pull_request_review` submitted, built from GitHub's published pull request payload."""
    opened = github_payload("pull_request", "opened.payload.json")
    pull = opened["pull_request"]
    pull["head"]["ref"] = branch
    for side in ("head", "base"):
        pull[side]["repo"]["has_discussions"] = False
    user = copy.deepcopy(opened["sender"])
    user["login"] = login
    if login.endswith("[bot]"):
        user["type"] = "Bot"
    link = f"{pull['html_url']}#pullrequestreview-{REVIEW_ID}"
    review = {
        "id": REVIEW_ID,
        "node_id": f"PRR_{REVIEW_ID}",
        "user": user,
        "body": body,
        "commit_id": pull["head"]["sha"],
        "submitted_at": "2019-05-15T15:20:38Z",
        "updated_at": "2019-05-15T15:20:38Z",
        "state": state,
        "html_url": link,
        "pull_request_url": pull["url"],
        "author_association": association,
        "_links": {"html": {"href": link}, "pull_request": {"href": pull["url"]}},
    }
    payload = {
        "action": "submitted",
        "review": review,
        "pull_request": pull,
        "repository": opened["repository"],
        "installation": opened["installation"],
        "sender": user,
    }
    assert webhook_errors("pull_request_review", payload) == []
    return payload


def review_comment(comment_id: int, path: str, line: int, body: str) -> dict[str, Any]:
    """One element of GET .../reviews/{id}/comments, as GitHub describes it."""
    url = f"{API}/repos/{REPO}/pulls/comments/{comment_id}"
    html = f"https://github.com/{REPO}/pull/{PULL}#discussion_r{comment_id}"
    pull_url = f"{API}/repos/{REPO}/pulls/{PULL}"
    user = github_payload("pull_request", "opened.payload.json")["sender"]
    return {
        "url": url,
        "pull_request_review_id": REVIEW_ID,
        "id": comment_id,
        "node_id": f"PRRC_{comment_id}",
        "diff_hunk": f"@@ -{line},1 +{line},1 @@\n+x",
        "path": path,
        "position": line,
        "original_position": line,
        "commit_id": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        "original_commit_id": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        "user": user,
        "body": body,
        "created_at": "2019-05-15T15:20:38Z",
        "updated_at": "2019-05-15T15:20:38Z",
        "html_url": html,
        "pull_request_url": pull_url,
        "author_association": "OWNER",
        "_links": {
            "self": {"href": url},
            "html": {"href": html},
            "pull_request": {"href": pull_url},
        },
        "line": line,
        "original_line": line,
        "side": "RIGHT",
        "subject_type": "line",
    }


def comment(body: str, association: str = "OWNER", login: str = "Codertocat") -> dict[str, Any]:
    payload = github_payload("issue_comment", "created.payload.json")
    payload["comment"].update(body=body, author_association=association, id=7)
    payload["comment"]["user"]["login"] = login
    return payload


def dispatch(session: Session, settings: Settings, event: str, payload: dict[str, Any]) -> None:
    router.dispatch(Event(event, payload, "d", settings, session))


def revisions(session: Session) -> list[Task]:
    return list(session.scalars(select(Task).where(Task.revision > 0).order_by(Task.id)))


def _reply(call: Any) -> str:
    return json.loads(call.request.body)["body"]


LINE_COMMENTS = [
    review_comment(501, "src/login.py", 3, "This raises on None."),
    review_comment(502, "src/login.py", 9, "Name it `password`,\nnot `pw`."),
]


@responses.activate
def test_a_review_that_requests_changes_queues_the_agent_on_the_same_pull_request(
    session: Session, settings: Settings, ticket: Ticket, held_jobs: list[HeldJob]
) -> None:
    assert rest_errors("GET", COMMENTS_TEMPLATE, LINE_COMMENTS) == []
    read = responses.get(COMMENTS_URL, json=LINE_COMMENTS)
    reply = responses.post(f"{API}/repos/{REPO}/issues/1/comments", json={}, status=201)

    dispatch(session, settings, "pull_request_review", review_payload())

    assert read.calls[0].request.params == {"per_page": "100", "page": "1"}
    [task] = revisions(session)
    assert (task.revision, task.branch, task.pull_request_number, task.status) == (
        1,
        BRANCH,
        PULL,
        TaskStatus.QUEUED,
    )
    assert task.agent == "default"
    assert task.review == (
        "@Codertocat requested changes in a review of #2:\n\n"
        "Please handle the empty case.\n\n"
        "Comments on the code:\n"
        "- `src/login.py` line 3: This raises on None.\n"
        "- `src/login.py` line 9: Name it `password`,\n  not `pw`."
    )
    assert [(job.name, job.args) for job in held_jobs] == [("run_task", (task.id,))]
    said = _reply(reply.calls[0])
    assert said.startswith("@Codertocat requested changes on #2.")
    assert f"Task {task.id} is queued" in said and "(revision 1 of 2)" in said
    run = session.scalars(select(CommandRun)).one()
    assert (run.command, run.comment_id, run.line, run.allowed, run.issue_number) == (
        "review",
        REVIEW_ID,
        0,
        True,
        1,
    )


@responses.activate
def test_a_redelivered_review_runs_nothing_twice(
    session: Session, settings: Settings, ticket: Ticket, held_jobs: list[HeldJob]
) -> None:
    read = responses.get(COMMENTS_URL, json=[])
    reply = responses.post(f"{API}/repos/{REPO}/issues/1/comments", json={}, status=201)
    dispatch(session, settings, "pull_request_review", review_payload())
    dispatch(session, settings, "pull_request_review", review_payload())
    assert len(revisions(session)) == 1 and len(held_jobs) == 1
    assert (read.call_count, reply.call_count) == (1, 1)
    assert "\n\nComments on the code" not in revisions(session)[0].review


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(lambda: review_payload(state="approved"), id="an approval"),
        pytest.param(lambda: review_payload(state="commented"), id="a plain comment"),
        pytest.param(lambda: review_payload(login="specbridge[bot]"), id="a bot's review"),
        pytest.param(lambda: review_payload(branch="feature/login"), id="a person's branch"),
        pytest.param(
            lambda: review_payload(branch="specbridge/login/T-9"), id="a branch no task has"
        ),
    ],
)
@responses.activate
def test_reviews_that_are_not_a_request_on_an_agents_pull_request_run_nothing(
    session: Session, settings: Settings, ticket: Ticket, held_jobs: list[HeldJob], payload: Any
) -> None:
    dispatch(session, settings, "pull_request_review", payload())
    assert len(responses.calls) == 0  # not a word to GitHub
    assert revisions(session) == [] and held_jobs == []
    assert session.scalars(select(CommandRun)).all() == []


@responses.activate
def test_a_review_of_a_pull_request_from_a_fork_runs_nothing(
    session: Session, settings: Settings, ticket: Ticket, held_jobs: list[HeldJob]
) -> None:
    payload = review_payload()
    payload["pull_request"]["head"]["repo"]["full_name"] = "someone/Hello-World"
    dispatch(session, settings, "pull_request_review", payload)
    assert len(responses.calls) == 0 and revisions(session) == []


@responses.activate
def test_past_max_revisions_a_comment_says_so_and_nothing_runs(
    session: Session, settings: Settings, ticket: Ticket, held_jobs: list[HeldJob]
) -> None:
    for revision in (1, 2):
        session.add(
            Task(
                ticket=ticket,
                agent="default",
                status=TaskStatus.SUCCEEDED,
                branch=BRANCH,
                pull_request_number=PULL,
                revision=revision,
            )
        )
    session.commit()
    responses.get(COMMENTS_URL, json=[])
    reply = responses.post(f"{API}/repos/{REPO}/issues/1/comments", json={}, status=201)
    dispatch(session, settings, "pull_request_review", review_payload())
    assert held_jobs == [] and len(revisions(session)) == 2
    assert (
        "Nothing runs: #2 was revised 2 times already, the most the profile `default` allows "
        "(`max_revisions: 2`)." in _reply(reply.calls[0])
    )
    run = session.scalars(select(CommandRun)).one()
    assert run.result is not None and run.result.startswith("Nothing runs")


@responses.activate
def test_a_review_while_the_agent_is_still_at_work_runs_nothing(
    session: Session, settings: Settings, ticket: Ticket, held_jobs: list[HeldJob]
) -> None:
    session.add(
        Task(
            ticket=ticket,
            agent="default",
            status=TaskStatus.RUNNING,
            branch=BRANCH,
            pull_request_number=PULL,
            revision=1,
        )
    )
    session.commit()
    responses.get(COMMENTS_URL, json=[])
    reply = responses.post(f"{API}/repos/{REPO}/issues/1/comments", json={}, status=201)
    dispatch(session, settings, "pull_request_review", review_payload())
    assert held_jobs == [] and len(revisions(session)) == 1
    assert "Nothing runs: a task is already queued or running for it." in _reply(reply.calls[0])


@responses.activate
def test_a_reviewer_without_write_access_runs_nothing(
    session: Session, settings: Settings, ticket: Ticket, held_jobs: list[HeldJob]
) -> None:
    permission = responses.get(
        f"{API}/repos/{REPO}/collaborators/stranger/permission",
        json={"permission": "read", "role_name": "read"},
    )
    reply = responses.post(f"{API}/repos/{REPO}/issues/1/comments", json={}, status=201)
    dispatch(
        session,
        settings,
        "pull_request_review",
        review_payload(login="stranger", association="CONTRIBUTOR"),
    )
    assert permission.call_count == 1
    assert held_jobs == [] and revisions(session) == []
    assert "needs write access" in _reply(reply.calls[0])
    run = session.scalars(select(CommandRun)).one()
    assert (run.allowed, run.refusal_reason) == (False, "needs write access to the repository")


# -- /revise on the issue -----------------------------------------------------------


def _command_mocks(pull_state: str = "open", merged: bool = False) -> Any:
    responses.post(f"{API}/repos/{REPO}/issues/comments/7/reactions", json={}, status=201)
    pull = github_payload("pull_request", "opened.payload.json")["pull_request"]
    pull.update(number=PULL, state=pull_state, merged=merged)
    responses.get(f"{API}/repos/{REPO}/pulls/{PULL}", json=pull)
    return responses.post(f"{API}/repos/{REPO}/issues/1/comments", json={}, status=201)


@responses.activate
def test_revise_queues_the_agent_with_the_text(
    session: Session, settings: Settings, ticket: Ticket, held_jobs: list[HeldJob]
) -> None:
    reply = _command_mocks()
    dispatch(session, settings, "issue_comment", comment("/revise reject an empty password too"))
    [task] = revisions(session)
    assert (task.revision, task.branch, task.pull_request_number) == (1, BRANCH, PULL)
    assert task.review == (
        "@Codertocat asked on issue #1 (`/revise`):\n\nreject an empty password too"
    )
    assert [(job.name, job.args) for job in held_jobs] == [("run_task", (task.id,))]
    said = _reply(reply.calls[0])
    assert f"Task {task.id} is queued: the agent `default` revises #2" in said
    assert "(revision 1 of 2)" in said


@pytest.mark.parametrize(
    ("body", "state", "merged", "expected"),
    [
        ("/revise", "open", False, "`/revise` needs what to change"),
        ("/revise x", "closed", False, "Nothing runs: #2 is closed."),
        ("/revise x", "closed", True, "Nothing runs: #2 is merged."),
    ],
)
@responses.activate
def test_revise_says_why_nothing_runs(
    session: Session,
    settings: Settings,
    ticket: Ticket,
    held_jobs: list[HeldJob],
    body: str,
    state: str,
    merged: bool,
    expected: str,
) -> None:
    reply = _command_mocks(state, merged)
    dispatch(session, settings, "issue_comment", comment(body))
    assert revisions(session) == [] and held_jobs == []
    assert expected in _reply(reply.calls[0])


@responses.activate
def test_revise_before_any_pull_request_or_for_a_label_agent_with_no_revise_runs_nothing(
    session: Session, settings: Settings, ticket: Ticket, held_jobs: list[HeldJob]
) -> None:
    reply = _command_mocks()
    ticket.agent_override = "fixer"
    session.commit()
    dispatch(session, settings, "issue_comment", comment("/revise x"))
    said = _reply(reply.calls[0])
    assert "Nothing runs: the agent `fixer` works on GitHub" in said
    assert "a `revise:` template" in said

    for task in ticket.tasks:
        task.pull_request_number = None
    ticket.agent_override = None
    session.commit()
    payload = comment("/revise y")
    payload["comment"]["id"] = 8
    responses.post(f"{API}/repos/{REPO}/issues/comments/8/reactions", json={}, status=201)
    dispatch(session, settings, "issue_comment", payload)
    assert "Nothing runs: no agent has opened a pull request for it yet." in _reply(reply.calls[1])
    assert revisions(session) == [] and held_jobs == []


@responses.activate
def test_revise_for_copilot_queues_its_hand_over_counted_as_a_revision(
    session: Session, settings: Settings, ticket: Ticket, held_jobs: list[HeldJob]
) -> None:
    reply = _command_mocks()
    ticket.agent_override = "copilot"
    session.commit()
    dispatch(session, settings, "issue_comment", comment("/revise reject an empty password"))
    [task] = revisions(session)
    assert (task.revision, task.pull_request_number, task.agent) == (1, PULL, "copilot")
    # Handed over by the short job of agents GitHub runs: an `@copilot` comment.
    assert [(job.name, job.args) for job in held_jobs] == [("dispatch_task", (task.id,))]
    said = _reply(reply.calls[0])
    assert "asked to revise #2 in its own way, a comment `@copilot …`" in said
    assert "(revision 1 of 3)" in said


@responses.activate
def test_revise_needs_write_access(
    session: Session, settings: Settings, ticket: Ticket, held_jobs: list[HeldJob]
) -> None:
    reply = _command_mocks()
    responses.get(
        f"{API}/repos/{REPO}/collaborators/stranger/permission",
        json={"permission": "read", "role_name": "read"},
    )
    dispatch(session, settings, "issue_comment", comment("/revise x", "NONE", "stranger"))
    assert revisions(session) == [] and held_jobs == []
    assert "`/revise` needs write access" in _reply(reply.calls[0])


def on_the_pull_request(payload: dict[str, Any]) -> dict[str, Any]:
    """The comment as GitHub sends it from the pull request's conversation: the issue a
    pull request also is, with `issue.pull_request` set."""
    payload["issue"].update(
        number=PULL,
        pull_request={
            "url": f"{API}/repos/{REPO}/pulls/{PULL}",
            "html_url": f"https://github.com/{REPO}/pull/{PULL}",
            "diff_url": f"https://github.com/{REPO}/pull/{PULL}.diff",
            "patch_url": f"https://github.com/{REPO}/pull/{PULL}.patch",
            "merged_at": None,
        },
    )
    assert webhook_errors("issue_comment", payload) == []
    return payload


@responses.activate
def test_revise_on_the_agents_pull_request_queues_it_and_replies_there(
    session: Session, settings: Settings, ticket: Ticket, held_jobs: list[HeldJob]
) -> None:
    _command_mocks()
    on_pull = responses.post(f"{API}/repos/{REPO}/issues/{PULL}/comments", json={}, status=201)
    payload = on_the_pull_request(comment("/revise name the variable `password`"))
    dispatch(session, settings, "issue_comment", payload)
    [task] = revisions(session)
    assert (task.revision, task.branch, task.pull_request_number) == (1, BRANCH, PULL)
    assert task.review == (
        "@Codertocat asked on pull request #2 (`/revise`):\n\nname the variable `password`"
    )
    said = _reply(on_pull.calls[0])
    assert said.startswith("@Codertocat") and "revises #2" in said
    # Delivered again: nothing runs twice, and the reply, found on the pull request, stays one.
    responses.get(
        f"{API}/repos/{REPO}/issues/{PULL}/comments",
        json=[{"id": 70, "body": said, "user": {"login": "specbridge[bot]", "type": "Bot"}}],
    )
    dispatch(session, settings, "issue_comment", payload)
    assert len(revisions(session)) == 1 and on_pull.call_count == 1

    # A ticket's command on the pull request is told where it works.
    retry = on_the_pull_request(comment("/retry"))
    retry["comment"]["id"] = 8
    responses.post(f"{API}/repos/{REPO}/issues/comments/8/reactions", json={}, status=201)
    dispatch(session, settings, "issue_comment", retry)
    assert (
        "`/retry` works on a task's issue, not here. `/help` lists the commands that work here."
        in _reply(on_pull.calls[1])
    )


@responses.activate
def test_a_comment_on_a_pull_request_no_agent_opened_says_nothing(
    session: Session, settings: Settings, ticket: Ticket
) -> None:
    payload = on_the_pull_request(comment("/revise x"))
    payload["issue"]["number"] = 99
    dispatch(session, settings, "issue_comment", payload)
    assert len(responses.calls) == 0


@responses.activate
def test_help_on_a_ticket_names_revise(
    session: Session, settings: Settings, ticket: Ticket
) -> None:
    reply = _command_mocks()
    dispatch(session, settings, "issue_comment", comment("/help"))
    assert "- `/revise <what to change>` — run the agent again" in _reply(reply.calls[0])


@responses.activate
def test_the_gateway_reads_every_page_of_a_reviews_comments(settings: Settings) -> None:
    first = [review_comment(1000 + n, "a.py", 1, f"c{n}") for n in range(100)]
    file_level = review_comment(2000, "b.py", 1, "whole file")
    file_level.update(line=None, original_line=None, subject_type="file")
    responses.get(COMMENTS_URL, json=first)
    responses.get(COMMENTS_URL, json=[file_level])
    repo = RepositoryGateway(github_client(settings, None), REPO)
    found = repo.review_comments(PULL, REVIEW_ID)
    assert len(found) == 101
    assert found[0] == ReviewComment("a.py", 1, "c0")
    assert found[-1] == ReviewComment("b.py", None, "whole file")
    assert [c.request.params["page"] for c in responses.calls] == ["1", "2"]


@responses.activate
def test_retry_after_a_failed_revision_runs_that_revision_again_on_the_branch(
    session: Session, settings: Settings, ticket: Ticket, held_jobs: list[HeldJob]
) -> None:
    session.add(
        Task(
            ticket=ticket,
            agent="default",
            status=TaskStatus.FAILED,
            branch=BRANCH,
            pull_request_number=PULL,
            revision=1,
            review="@Codertocat asked: rename it",
        )
    )
    session.commit()
    reply = _command_mocks()
    dispatch(session, settings, "issue_comment", comment("/retry"))
    _failed, again = revisions(session)
    assert (again.revision, again.branch, again.pull_request_number, again.review) == (
        1,
        BRANCH,
        PULL,
        "@Codertocat asked: rename it",
    )
    assert again.status is TaskStatus.QUEUED
    assert [(job.name, job.args) for job in held_jobs] == [("run_task", (again.id,))]
    assert "tries revision 1 of #2 again" in _reply(reply.calls[0])
