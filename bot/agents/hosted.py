"""Tasks worked by an agent GitHub runs: dispatched, followed by their pull request,
taken back.

A profile with `github:` runs nothing here. When its ticket is ready the task is
dispatched (the `dispatch_task` job): Copilot assigned the issue (with a person's
token, SPECBRIDGE_AGENT_USER_TOKEN), a label added, or a comment posted, and the
card goes to Analyzing. The task stays running, held by no worker (`dispatched_at`
set: the reaper leaves it alone), while the bot follows the pull
request that closes the issue: a draft → Building, ready for review → Testing,
merged → the task succeeded (the issue's close makes the ticket done), closed
unmerged → the task failed, the card back in Backlog, the label or assignment
taken back and a comment. No pull request within the profile's `timeout` fails
the task the same way (`expire_dispatched_tasks`, a periodic chore).

Every card write is made under the card's lock, as a local run's are; the session
is committed before each call to GitHub.
"""

from __future__ import annotations

import logging
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from github import GithubException
from requests import RequestException
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.agents.costs import kind_of
from bot.agents.credentials import failed_to_authenticate
from bot.agents.failure import clear_failed, show_failed
from bot.agents.profiles import AgentProfile, Dispatch, load_profiles
from bot.agents.run import MAX_ATTEMPTS, TaskJob
from bot.beats import beating
from bot.github import BoardGateway, RepositoryGateway, github_client
from bot.github.auth import user_client
from bot.github.columns import show_on_board
from bot.github.connection import GraphQLError
from bot.github.hosted import CopilotAssignment, CopilotRefused, HostedAgentGateway, closing_issues
from bot.locks import Lease, LockBusy, LockLost, card_lock, exclusive
from bot.repositories import find_repository
from bot.settings import Settings, SettingsError, get_settings
from storage.db import session_scope
from storage.models import IssueState, Task, TaskStatus, Ticket, TicketPhase

log = logging.getLogger(__name__)

# GitHub's closing keywords, an optional colon, then `#N` or `owner/repo#N`.
CLOSING = re.compile(
    r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?):?\s+(?:(?P<repo>[\w.-]+/[\w.-]+))?#(?P<number>\d+)\b",
    re.IGNORECASE,
)
# What the bot asks of every hosted agent, besides the issue itself.
HOSTED_DONE = (
    "Open one pull request for this issue and name it with a closing keyword in its "
    "description (`Fixes #{issue}`): specbridge follows that pull request. Do not change "
    "anything under `.github/workflows/`."
)


class DispatchRefused(Exception):
    """The task cannot be handed over: reported on the issue, never retried by the queue."""


# -- dispatch ---------------------------------------------------------------------------


def dispatch_task(task_id: int) -> None:
    """The job for one task of a hosted profile: hand its issue to the agent.

    While the job runs the task beats as a local run does (a worker that dies here
    has its task reaped and queued again); once handed over, `dispatched_at` says no
    worker holds it any more.
    """
    settings = get_settings()
    with session_scope(settings.database_url) as session:
        if not _claim(session, task_id):
            return  # cancelled, or already taken
        task = session.get_one(Task, task_id)
        if failed_to_authenticate(session, settings, task, MAX_ATTEMPTS):
            return
        with _heartbeats(settings, task_id):
            _Dispatch(session, settings, task).execute()


def _claim(session: Session, task_id: int) -> bool:
    now = datetime.now(UTC)
    claimed = session.execute(
        update(Task)
        .where(Task.id == task_id, Task.status == TaskStatus.QUEUED)
        .values(
            status=TaskStatus.RUNNING,
            attempts=Task.attempts + 1,
            started_at=now,
            heartbeat_at=now,
            dispatched_at=None,
        )
    ).rowcount
    session.commit()
    return claimed == 1


def _heartbeats(settings: Settings, task_id: int) -> AbstractContextManager[None]:
    def beat() -> None:
        with session_scope(settings.database_url) as session:
            session.execute(
                update(Task)
                .where(
                    Task.id == task_id,
                    Task.status == TaskStatus.RUNNING,
                    Task.dispatched_at.is_(None),
                )
                .values(heartbeat_at=datetime.now(UTC))
            )

    return beating(settings.task_heartbeat_seconds, beat, f"heartbeat-{task_id}")


class _Dispatch(TaskJob):
    def __init__(self, session: Session, settings: Settings, task: Task) -> None:
        self.issue_node_id = task.ticket.issue_node_id
        super().__init__(session, settings, task)

    def execute(self) -> None:
        try:
            clear_failed(self.session, self.settings, self.boards, self.repo, self.ticket)
            profile = self._profile()
            with exclusive(self.settings, card_lock(self.full_name, self.issue)) as lease:
                if _status(self.settings, self.task.id) is not TaskStatus.RUNNING:
                    return  # cancelled before it was handed over: nothing to take back
                lease.check()
                said = self._hand_over(profile)
                self.session.refresh(self.task)
                self.task.dispatched_at = datetime.now(UTC)
                self.task.preset, self.task.model = kind_of(profile), profile.dispatch.model
                self.session.commit()
                self._show_analyzing(lease)
            log.info(
                "task %s for %s#%s dispatched to %s (%s)",
                self.task.id,
                self.full_name,
                self.issue,
                profile.name,
                said,
            )
        except DispatchRefused as refusal:
            self._fail(str(refusal))
        except (GithubException, RequestException, LockBusy, LockLost) as error:
            if self.task.attempts >= MAX_ATTEMPTS:
                self._fail(f"GitHub kept failing: {error}")
                return
            self.task.status = TaskStatus.QUEUED  # the queue retries the job with backoff
            self.session.commit()
            raise

    def _show_analyzing(self, lease: Lease) -> None:
        """The card to Analyzing. Handed over already: a card write that fails is
        logged, not retried by handing the task over a second time."""
        try:
            _move(self.session, self.boards, self.ticket, TicketPhase.ANALYZING, lease)
        except (GithubException, RequestException, LockLost) as error:
            self.session.rollback()
            log.warning(
                "card of %s#%s not moved to Analyzing: %s", self.full_name, self.issue, error
            )

    def _profile(self) -> AgentProfile:
        try:
            profile = load_profiles(self.settings).get(self.task.agent)
        except SettingsError as error:
            raise DispatchRefused(str(error)) from None
        if profile is None or profile.dispatch is None:
            raise DispatchRefused(f"no hosted agent profile named {self.task.agent!r}")
        if profile.dispatch.assign and not self.settings.agent_user_token:
            raise DispatchRefused(
                "GitHub lets only a person assign an issue to Copilot, and "
                "SPECBRIDGE_AGENT_USER_TOKEN (a token of someone with a Copilot seat and "
                "write access here) is not set; the operator sets it"
            )
        return profile

    def _hand_over(self, profile: AgentProfile) -> str:
        dispatch = profile.dispatch
        assert dispatch is not None
        if dispatch.label:
            self.repo.add_label(self.issue, dispatch.label)
            return f"label {dispatch.label}"
        if dispatch.comment:
            self.repo.comment_on_issue(self.issue, dispatch.comment)
            return "comment"
        if not self.issue_node_id:
            self.issue_node_id = self.repo.get_issue(self.issue).node_id
        gateway = HostedAgentGateway(user_client(self.settings), self.full_name)
        assignment = CopilotAssignment(
            base_ref=dispatch.base or self.default_branch,
            custom_instructions=copilot_instructions(dispatch, self.issue),
            custom_agent=dispatch.custom_agent,
            model=dispatch.model,
        )
        try:
            gateway.assign_copilot(self.issue_node_id, assignment)
        except (CopilotRefused, GraphQLError) as refusal:
            raise DispatchRefused(f"GitHub did not assign Copilot: {refusal}") from None
        except GithubException as error:
            if error.status in (401, 403, 404, 422):
                said = error.data.get("message", "") if isinstance(error.data, dict) else ""
                raise DispatchRefused(
                    f"GitHub did not assign Copilot: {error.status} {said}".rstrip()
                ) from None
            raise
        return "Copilot assigned"

    def _fail(self, reason: str) -> None:
        self.session.refresh(self.task)
        if self.task.status is TaskStatus.CANCELLED:
            return
        self.task.status = TaskStatus.FAILED
        self.task.error = reason
        self.task.finished_at = datetime.now(UTC)
        self.session.commit()
        log.warning(
            "task %s for %s#%s not dispatched: %s", self.task.id, self.full_name, self.issue, reason
        )
        self.repo.comment_on_issue(
            self.issue,
            f"This task could not be handed to the agent `{self.task.agent}`: {reason}. "
            "Comment `/retry` to try again.",
        )
        show_failed(self.session, self.settings, self.boards, self.repo, self.ticket, reason)


def copilot_instructions(dispatch: Dispatch, issue: int) -> str:
    """What Copilot is told besides the issue: the profile's instructions, then the bot's."""
    parts = [dispatch.instructions or "", HOSTED_DONE.format(issue=issue)]
    return "\n\n".join(p.strip() for p in parts if p and p.strip())


# -- taking it back ---------------------------------------------------------------------


def withdraw(settings: Settings, repo: RepositoryGateway, issue: int, agent: str) -> str | None:
    """Take the issue back from the hosted agent of `agent`: its label removed, Copilot
    unassigned. What was done, for a reply; None when there was nothing to take back
    (a comment cannot be)."""
    try:
        profile = load_profiles(settings).get(agent)
    except SettingsError:
        return None
    dispatch = profile.dispatch if profile else None
    if dispatch is None:
        return None
    if dispatch.label:
        repo.remove_label(issue, dispatch.label)
        return f"the label `{dispatch.label}` is removed"
    if dispatch.assign and settings.agent_user_token:
        gateway = HostedAgentGateway(user_client(settings), repo.full_name)
        if gateway.unassign_copilot(issue):
            return "Copilot is unassigned"
    return None


def handed_over_labels(settings: Settings, ticket: Ticket) -> list[str]:
    """The labels that hand the ticket to a hosted agent now: kept when the issue's
    labels are written again (a spec edit), so the agent is not taken off it."""
    live = [t.agent for t in ticket.tasks if t.status is TaskStatus.RUNNING and t.dispatched_at]
    if not live:
        return []
    try:
        profiles = load_profiles(settings)
    except SettingsError:
        return []
    found = [profiles[a].dispatch for a in live if a in profiles]
    return [d.label for d in found if d is not None and d.label]


def finish_on_close(ticket: Ticket) -> list[Task]:
    """The issue closed as completed: a task handed to a hosted agent is done (its pull
    request merged, or a person closed it). The caller commits."""
    if ticket.state is IssueState.OPEN or ticket.state_reason != "completed":
        return []
    done = [t for t in ticket.tasks if t.status is TaskStatus.RUNNING and t.dispatched_at]
    for task in done:
        task.status = TaskStatus.SUCCEEDED
        task.finished_at = task.finished_at or datetime.now(UTC)
    return done


# -- following the pull request ---------------------------------------------------------


@dataclass(frozen=True)
class PullRequest:
    """What a `pull_request` event says of its pull request."""

    number: int
    action: str
    draft: bool
    merged: bool
    state: str
    body: str
    head_ref: str

    @classmethod
    def from_payload(cls, action: str, pull: dict[str, Any]) -> PullRequest:
        return cls(
            number=int(pull["number"]),
            action=action,
            draft=bool(pull.get("draft")),
            merged=bool(pull.get("merged")),
            state=str(pull.get("state") or "open"),
            body=str(pull.get("body") or ""),
            head_ref=str((pull.get("head") or {}).get("ref") or ""),
        )


def named_issues(body: str, full_name: str) -> list[int]:
    """The issues of `full_name` a pull request's body closes with a keyword."""
    numbers = []
    for match in CLOSING.finditer(body or ""):
        if match["repo"] and match["repo"].lower() != full_name.lower():
            continue
        numbers.append(int(match["number"]))
    return list(dict.fromkeys(numbers))


def follow_pull_request(
    session: Session,
    settings: Settings,
    repo: RepositoryGateway,
    boards: BoardGateway,
    pull: PullRequest,
) -> None:
    """Move the cards of the hosted tasks this pull request works, and end their tasks."""
    repository = find_repository(session, repo.full_name)
    if repository is None:
        return
    tasks = _followed(session, repository.id, pull, repo)
    for task_id, issue in tasks:
        with exclusive(settings, card_lock(repo.full_name, issue)) as lease:
            _apply(session, settings, repo, boards, task_id, pull, lease)


def _followed(
    session: Session, repository_id: int, pull: PullRequest, repo: RepositoryGateway
) -> list[tuple[int, int]]:
    """(task id, issue) of the hosted tasks the pull request belongs to: linked to it
    already, or live and waiting for a pull request that closes their issue."""
    hosted = (
        select(Task.id, Ticket.issue_number, Task.pull_request_number, Task.status)
        .join(Task.ticket)
        .where(Ticket.repository_id == repository_id, Task.dispatched_at.is_not(None))
    )
    linked = session.execute(hosted.where(Task.pull_request_number == pull.number)).all()
    waiting = session.execute(
        hosted.where(Task.status == TaskStatus.RUNNING, Task.pull_request_number.is_(None))
    ).all()
    session.commit()
    found = {row.id: row.issue_number for row in linked}
    if waiting:
        issues = set(named_issues(pull.body, repo.full_name))
        if not issues:
            issues = set(_linked_issues(repo, pull.number))
        found |= {row.id: row.issue_number for row in waiting if row.issue_number in issues}
    return sorted(found.items())


def _linked_issues(repo: RepositoryGateway, number: int) -> list[int]:
    """The issues GitHub links to the pull request, when its body names none."""
    try:
        return closing_issues(repo.connection, repo.full_name, number)
    except (GithubException, GraphQLError, RequestException) as error:
        log.warning("cannot read the issues #%s of %s closes: %s", number, repo.full_name, error)
        return []


def _apply(
    session: Session,
    settings: Settings,
    repo: RepositoryGateway,
    boards: BoardGateway,
    task_id: int,
    pull: PullRequest,
    lease: Lease,
) -> None:
    task = session.get_one(Task, task_id)
    session.refresh(task)
    ticket = task.ticket
    session.refresh(ticket)
    live = task.status is TaskStatus.RUNNING
    if not live or (task.pull_request_number not in (None, pull.number)):
        session.commit()
        return
    task.pull_request_number = pull.number
    task.branch = task.branch or pull.head_ref or None
    if pull.merged:
        task.status, task.finished_at = TaskStatus.SUCCEEDED, datetime.now(UTC)
        session.commit()
        return  # the issue closes with the merge: the ticket is done then
    if pull.state == "closed":
        agent, issue = task.agent, ticket.issue_number
        task.status, task.finished_at = TaskStatus.FAILED, datetime.now(UTC)
        task.error = f"its pull request #{pull.number} was closed without merging"
        session.commit()
        taken = withdraw(settings, repo, issue, agent)
        repo.comment_on_issue(
            issue,
            f"#{pull.number} was closed without merging, so the task of the agent `{agent}` "
            f"failed{_also(taken)}. Comment `/retry` to hand it over again.",
        )
        show_failed(session, settings, boards, repo, ticket, task.error, lease)
        return
    if ticket.state is not IssueState.OPEN:
        session.commit()
        return
    _move(
        session, boards, ticket, TicketPhase.BUILDING if pull.draft else TicketPhase.TESTING, lease
    )


def _also(taken: str | None) -> str:
    return f"; {taken}" if taken else ""


def _move(
    session: Session, boards: BoardGateway, ticket: Ticket, phase: TicketPhase, lease: Lease
) -> None:
    """Set the ticket's phase and show it on its card; the caller holds the card's lock."""
    session.refresh(ticket, ["phase"])
    ticket.repository  # noqa: B018 - loaded before the commit, read by show_on_board
    if ticket.phase is phase:
        session.commit()
        return
    shown_as, ticket.phase = ticket.phase, phase
    session.commit()
    lease.check()
    show_on_board(boards, ticket, shown_as)


def _status(settings: Settings, task_id: int) -> TaskStatus | None:
    with session_scope(settings.database_url) as session:
        return session.scalar(select(Task.status).where(Task.id == task_id))


# -- no pull request in time ------------------------------------------------------------


@dataclass(frozen=True)
class _Expired:
    task_id: int
    agent: str
    timeout: int
    full_name: str
    installation: int | None
    issue: int


def expire_dispatched_tasks(settings: Settings) -> int:
    """Fail the hosted tasks that saw no pull request within their profile's timeout:
    the label or assignment taken back, the card in Backlog, a comment. A periodic chore;
    safe in any number of processes at once (one UPDATE decides who reports)."""
    try:
        profiles = load_profiles(settings)
    except SettingsError:
        return 0
    now = datetime.now(UTC)
    expired: list[_Expired] = []
    with session_scope(settings.database_url) as session:
        waiting = session.scalars(
            select(Task).where(
                Task.status == TaskStatus.RUNNING,
                Task.dispatched_at.is_not(None),
                Task.pull_request_number.is_(None),
            )
        ).all()
        for task in waiting:
            profile = profiles.get(task.agent)
            timeout = profile.timeout if profile else 0
            assert task.dispatched_at is not None
            dispatched = task.dispatched_at
            if dispatched.tzinfo is None:  # SQLite keeps no zone
                dispatched = dispatched.replace(tzinfo=UTC)
            if dispatched + timedelta(seconds=timeout) > now:
                continue
            repository = task.ticket.repository
            expired.append(
                _Expired(
                    task.id,
                    task.agent,
                    timeout,
                    repository.full_name,
                    repository.installation.github_id if repository.installation else None,
                    task.ticket.issue_number,
                )
            )
    reported = 0
    for task in expired:
        try:
            reported += _expire(settings, task)
        except Exception:  # the next round tries again; one issue must not stop the rest
            log.warning("could not expire task %s on #%s", task.task_id, task.issue, exc_info=True)
    return reported


def _expire(settings: Settings, expired: _Expired) -> int:
    connection = github_client(settings, expired.installation)
    repo = RepositoryGateway(connection, expired.full_name)
    with (
        exclusive(settings, card_lock(expired.full_name, expired.issue)) as lease,
        session_scope(settings.database_url) as session,
    ):
        won = session.execute(
            update(Task)
            .where(
                Task.id == expired.task_id,
                Task.status == TaskStatus.RUNNING,
                Task.pull_request_number.is_(None),
            )
            .values(
                status=TaskStatus.FAILED,
                finished_at=datetime.now(UTC),
                error=f"no pull request within {expired.timeout}s",
            )
        ).rowcount
        session.commit()
        if won != 1:
            return 0
        ticket = session.get_one(Task, expired.task_id).ticket
        ticket.repository  # noqa: B018 - loaded before the commit, read by show_failed
        session.commit()
        taken = withdraw(settings, repo, expired.issue, expired.agent)
        repo.comment_on_issue(
            expired.issue,
            f"The agent `{expired.agent}` opened no pull request for this issue within its "
            f"{expired.timeout}s timeout, so the task failed{_also(taken)}. Comment `/retry` "
            "to hand it over again.",
        )
        reason = f"the agent `{expired.agent}` opened no pull request within {expired.timeout}s"
        show_failed(session, settings, BoardGateway(connection), repo, ticket, reason, lease)
    return 1
