"""Tasks worked by an agent GitHub runs: dispatched, followed by their pull request,
asked for revisions in the agent's own way, taken back.

A profile with `hosted:` (a preset, bot/agents/hosted_presets.py) or `github:` runs
nothing here. When its ticket is ready the task is dispatched (the `dispatch_task` job):
Copilot, Claude or Codex assigned the issue (with a person's token,
bot/github/user_token.py, and the prompt a local agent would get in the assignment's
custom instructions), a label added, a comment posted, or a workflow dispatched with the
prompt as its input; the card goes to Analyzing. A review that requests changes, or
`/revise`, on its pull request queues a revision: the same job posts the agent's revise
comment (`@copilot …`, `/kiro fix …`) or dispatches the workflow again, and the new task
follows the pull request from then on. A workflow's run is followed by its
`workflow_run` events: one that fails fails the task with its link.

The task stays running, held by no worker (`dispatched_at` set: the reaper leaves it
alone), while the bot follows the pull request that closes the issue: a draft →
Building, ready for review → Testing, merged → the task succeeded (the issue's close
makes the ticket done), closed unmerged → the task failed, the card back in Backlog, the
label or assignment taken back and a comment. No pull request within the profile's `timeout` fails
the task the same way (`expire_dispatched_tasks`, a periodic chore).

Every card write is made under the card's lock, as a local run's are; the session
is committed before each call to GitHub.
"""

from __future__ import annotations

import json
import logging
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from github import GithubException
from requests import RequestException
from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from bot.agents.costs import kind_of
from bot.agents.credentials import failed_to_authenticate
from bot.agents.failure import clear_failed, show_failed
from bot.agents.profiles import AgentProfile, Dispatch, load_profiles
from bot.agents.prompt import INSTRUCTION_FILES, MAX_INSTRUCTION_CHARS, build_prompt
from bot.agents.run import MAX_ATTEMPTS, TaskJob
from bot.beats import heartbeat
from bot.github import BoardGateway, RepositoryGateway, github_client
from bot.github.auth import user_client
from bot.github.columns import show_on_board
from bot.github.connection import GraphQLError
from bot.github.hosted import (
    CopilotAssignment,
    CopilotRefused,
    HostedAgentGateway,
    cancel_workflow_run,
    closing_issues,
    dispatch_workflow,
)
from bot.github.text import MAX_BODY, cut, shown
from bot.github.user_token import renew_refused, user_token_missing
from bot.locks import Lease, LockBusy, LockLost, card_lock, exclusive
from bot.repositories import find_repository
from bot.settings import Settings, SettingsError, get_settings, web_url_for
from storage.db import session_scope
from storage.models import IssueState, Task, TaskStatus, Ticket, TicketPhase

log = logging.getLogger(__name__)

# GitHub's closing keywords, an optional colon, then `#N` or `owner/repo#N`.
CLOSING = re.compile(
    r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?):?\s+(?:(?P<repo>[\w.-]+/[\w.-]+))?#(?P<number>\d+)\b",
    re.IGNORECASE,
)
# GitHub documents no limit of its own for an assignment's custom instructions: they are
# held to an issue body's (bot/github/text.py).
MAX_CUSTOM_INSTRUCTIONS = MAX_BODY
# "The maximum payload for inputs is 65,535 characters" (GitHub Actions docs, events that
# trigger workflows: workflow_dispatch).
MAX_WORKFLOW_INPUTS_CHARS = 65_535
# Ends a comment specbridge posts with a person's token to ask an agent for a revision:
# the comment is not read back as that person's commands (bot/events/handlers/issue_comment.py).
RELAYED = "\n\n<!-- specbridge: relayed -->"
CUT_NOTE = "\n\n… (cut to what GitHub takes: the issue has the rest)"
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
    running = and_(
        Task.id == task_id, Task.status == TaskStatus.RUNNING, Task.dispatched_at.is_(None)
    )
    return heartbeat(settings, Task, running, f"heartbeat-{task_id}")


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
                self._show_handed_over(lease)
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

    def _show_handed_over(self, lease: Lease) -> None:
        """The card to Analyzing (Building for a revision: the agent works on its pull
        request). Handed over already: a card write that fails is logged, not retried by
        handing the task over a second time."""
        phase = TicketPhase.BUILDING if self.task.revision else TicketPhase.ANALYZING
        try:
            _move(self.session, self.boards, self.ticket, phase, lease)
        except (GithubException, RequestException, LockLost) as error:
            self.session.rollback()
            log.warning(
                "card of %s#%s not moved to %s: %s", self.full_name, self.issue, phase, error
            )

    def _profile(self) -> AgentProfile:
        try:
            profile = load_profiles(self.settings).get(self.task.agent)
        except SettingsError as error:
            raise DispatchRefused(str(error)) from None
        if profile is None or profile.dispatch is None:
            raise DispatchRefused(f"no hosted agent profile named {self.task.agent!r}")
        dispatch = profile.dispatch
        if dispatch.assign and (missing := user_token_missing(self.settings)):
            raise DispatchRefused(
                f"GitHub lets only a person assign an issue to {dispatch.assign}: {missing}"
            )
        return profile

    def _hand_over(self, profile: AgentProfile) -> str:
        dispatch = profile.dispatch
        assert dispatch is not None
        if self.task.revision > 0:
            return self._ask_revision(profile, dispatch)
        if dispatch.workflow:
            return self._dispatch_workflow(profile, dispatch)
        if dispatch.label:
            self._speaker(dispatch).add_label(self.issue, dispatch.label)
            return f"label {dispatch.label}"
        if dispatch.comment:
            self._speaker(dispatch).comment_on_issue(self.issue, dispatch.comment)
            return "comment"
        return self._assign(profile, dispatch)

    def _assign(self, profile: AgentProfile, dispatch: Dispatch) -> str:
        if not self.issue_node_id:
            self.issue_node_id = self.repo.get_issue(self.issue).node_id
        gateway = HostedAgentGateway(user_client(self.settings), self.full_name)
        prompt = self._prompt(profile)
        assignment = CopilotAssignment(
            base_ref=dispatch.base or self.default_branch,
            custom_instructions=copilot_instructions(dispatch, self.issue, prompt),
            custom_agent=dispatch.custom_agent,
            model=dispatch.model,
        )
        login = dispatch.assignee or "copilot-swe-agent"
        try:
            gateway.assign_copilot(self.issue_node_id, assignment, login)
        except (CopilotRefused, GraphQLError) as refusal:
            raise DispatchRefused(f"GitHub did not assign {login}: {refusal}") from None
        except GithubException as error:
            # A person's token GitHub no longer takes: renewed, the queue tries again.
            if error.status == 401 and (lost := renew_refused(self.settings, gateway.connection)):
                raise DispatchRefused(f"GitHub did not assign {login}: {lost}") from None
            if error.status in (403, 404, 422):
                said = f"{error.status} {_said(error)}".rstrip()
                raise DispatchRefused(
                    f"GitHub did not assign {login}: {said}{_needs(dispatch)}"
                ) from None
            raise
        return f"{login} assigned"

    def _dispatch_workflow(self, profile: AgentProfile, dispatch: Dispatch) -> str:
        """A run of the profile's workflow, the prompt (with the review, on a revision) as
        its input; the run's id is kept, so its `workflow_run` events find the task."""
        assert dispatch.workflow is not None
        prompt = self._prompt(profile, self.task.review)
        inputs = workflow_inputs(dispatch, prompt, self.issue)
        ref = dispatch.base or self.default_branch
        try:
            run = dispatch_workflow(
                self.repo.connection, self.full_name, dispatch.workflow, ref, inputs
            )
        except GithubException as error:
            if error.status in (403, 404, 422):
                said = f"{error.status} {_said(error)}".rstrip()
                raise DispatchRefused(
                    f"GitHub did not run the workflow `{dispatch.workflow}`: {said}"
                    f"{_needs(dispatch)}"
                ) from None
            raise
        self.session.refresh(self.task)
        self.task.workflow_run_id = run.id if run else None
        self.session.commit()
        return f"workflow {dispatch.workflow} run {run.html_url if run else '(no details)'}"

    def _ask_revision(self, profile: AgentProfile, dispatch: Dispatch) -> str:
        """Pass a review (or a `/revise`) on to the agent in its own way: its revise
        comment on its pull request, or a new run of its workflow told the review."""
        if dispatch.workflow:
            said = self._dispatch_workflow(profile, dispatch)
        else:
            template = dispatch.revise_template
            if template is None:
                raise DispatchRefused(
                    f"the profile `{profile.name}` does not say how its agent is asked to revise "
                    '(a `revise:` template, e.g. "@claude {text}")'
                )
            number = self.task.pull_request_number
            assert number is not None
            # The review's mentions are not the agent's to make: nobody else is notified.
            request = template.replace("{text}", shown((self.task.review or "").strip()))
            body = cut(request, MAX_BODY - len(RELAYED)) + RELAYED
            self._speaker(dispatch).comment_on_issue(number, body)
            said = f"revision asked on #{number}"
        self._supersede()
        return said

    def _supersede(self) -> None:
        """The task that followed the pull request until now hands it over to this one."""
        for task in self.ticket.tasks:
            self.session.refresh(task)
            if (
                task.id != self.task.id
                and task.status is TaskStatus.RUNNING
                and task.dispatched_at is not None
                and task.pull_request_number == self.task.pull_request_number
            ):
                task.status, task.finished_at = TaskStatus.SUCCEEDED, datetime.now(UTC)
                task.summary = f"its pull request is revised by task {self.task.id}"
        # Followed from now on: its pull request's events find it in the same commit.
        self.task.dispatched_at = datetime.now(UTC)
        self.session.commit()

    def _speaker(self, dispatch: Dispatch) -> RepositoryGateway:
        """Who posts the agent's label or comment: the person whose token specbridge has
        (bot/github/user_token.py) where the agent answers people only (an assigned agent
        always has it: `_profile`), else the App (/readyz warns that such an agent may not
        answer it)."""
        if not dispatch.as_person:
            return self.repo
        missing = user_token_missing(self.settings)
        if missing is None:
            return RepositoryGateway(user_client(self.settings), self.full_name)
        log.warning(
            "%s: the agent of `hosted: %s` answers people only, and no person's token can "
            "be used (%s): posted as the App",
            self.full_name,
            dispatch.preset,
            missing,
        )
        return self.repo

    def _prompt(self, profile: AgentProfile, review: str | None = None) -> str:
        """What specbridge tells a local agent, for an agent that reads the issue only when
        started: the task, its requirements, its dependencies' pull requests, the
        repository's agent instructions (and, on a revision, the review)."""
        instructions = {}
        for path in INSTRUCTION_FILES:
            text = self.repo.read_file(path, self.default_branch)
            if text is not None:
                instructions[path] = text.decode(errors="replace")[:MAX_INSTRUCTION_CHARS]
        web = web_url_for(self.settings.github_api_url)
        self.session.refresh(self.ticket)
        prompt = build_prompt(
            self.ticket,
            f"{web}/{self.full_name}/issues/{self.issue}",
            profile.test,
            instructions,
            review=review,
            hosted=True,
        ).markdown
        self.session.commit()
        return prompt

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


def copilot_instructions(dispatch: Dispatch, issue: int, prompt: str = "") -> str:
    """What an assigned agent is told besides the issue: the profile's instructions, the
    bot's, then the prompt a local agent would get, cut to what GitHub takes."""
    parts = [dispatch.instructions or "", HOSTED_DONE.format(issue=issue), prompt]
    text = "\n\n".join(p.strip() for p in parts if p and p.strip())
    return cut(text, MAX_CUSTOM_INSTRUCTIONS, CUT_NOTE)


def relay_way(dispatch: Dispatch) -> str:
    """How a revision is asked of the agent, for a reply."""
    if dispatch.workflow:
        return f"a new run of `{dispatch.workflow}` told the request"
    template = dispatch.revise_template or "{text}"
    return f"a comment `{template.replace('{text}', '…')}` on its pull request"


def workflow_inputs(dispatch: Dispatch, prompt: str, issue: int) -> dict[str, str]:
    """The dispatch's inputs, the prompt cut so that all of them stay within GitHub's
    limit for a dispatch's inputs."""
    room = MAX_WORKFLOW_INPUTS_CHARS - _json_length(dispatch.workflow_inputs("", issue))
    if _json_length(prompt) > room:
        # JSON writes some characters longer (a newline as \\n): leave room for them.
        extra = _json_length(prompt) - len(prompt) + _json_length(CUT_NOTE) - len(CUT_NOTE)
        prompt = cut(prompt, max(0, room - extra), CUT_NOTE)
    return dispatch.workflow_inputs(prompt, issue)


def _needs(dispatch: Dispatch) -> str:
    """What the preset needs enabled on GitHub, to add to GitHub's refusal."""
    return f" (it needs {dispatch.spec.needs})" if dispatch.spec else ""


def _json_length(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False))


def _said(error: GithubException) -> str:
    return error.data.get("message", "") if isinstance(error.data, dict) else ""


# -- taking it back ---------------------------------------------------------------------


def withdraw(
    settings: Settings,
    repo: RepositoryGateway,
    issue: int,
    agent: str,
    workflow_run: int | None = None,
) -> str | None:
    """Take the issue back from the hosted agent of `agent`: its label removed, Copilot
    (or Claude, Codex) unassigned, its workflow's run (`workflow_run`) cancelled. What was
    done, for a reply; None when there was nothing to take back (a comment cannot be)."""
    try:
        profile = load_profiles(settings).get(agent)
    except SettingsError:
        return None
    dispatch = profile.dispatch if profile else None
    if dispatch is None:
        return None
    if dispatch.workflow and workflow_run:
        if cancel_workflow_run(repo.connection, repo.full_name, workflow_run):
            return f"its workflow run {workflow_run} is cancelled"
        return None
    if dispatch.label:
        repo.remove_label(issue, dispatch.label)
        return f"the label `{dispatch.label}` is removed"
    if dispatch.assign and user_token_missing(settings) is None:
        gateway = HostedAgentGateway(user_client(settings), repo.full_name)
        login = dispatch.assignee or "copilot-swe-agent"
        if gateway.unassign_copilot(issue, login):
            return f"{'Copilot' if dispatch.assign == 'copilot' else login} is unassigned"
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
    author: str = ""

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
            author=str((pull.get("user") or {}).get("login") or ""),
        )

    def opened_by(self, dispatch: Dispatch | None) -> bool:
        """Whether the agent of `dispatch` opened it, by its author or its branch's prefix
        (False where its preset knows neither)."""
        if dispatch is None:
            return False
        prefix = dispatch.branch_prefix
        return self.author in dispatch.authors or bool(prefix and self.head_ref.startswith(prefix))


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
    tasks = _followed(session, repository.id, pull, repo, _dispatches(settings))
    for task_id, issue in tasks:
        with exclusive(settings, card_lock(repo.full_name, issue)) as lease:
            _apply(session, settings, repo, boards, task_id, pull, lease)


def _dispatches(settings: Settings) -> dict[str, Dispatch | None]:
    try:
        return {name: p.dispatch for name, p in load_profiles(settings).items()}
    except SettingsError:
        return {}


def _followed(
    session: Session,
    repository_id: int,
    pull: PullRequest,
    repo: RepositoryGateway,
    dispatches: dict[str, Dispatch | None],
) -> list[tuple[int, int]]:
    """(task id, issue) of the hosted tasks the pull request belongs to: linked to it
    already, or live and waiting for a pull request that closes their issue (a closing
    keyword, or GitHub's link); one that names no issue, by its agent's author or branch."""
    hosted = (
        select(Task.id, Ticket.issue_number, Task.pull_request_number, Task.status, Task.agent)
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
        if not issues:
            # It names no issue yet (an agent's first draft): its agent's, by its author
            # or branch, when that agent waits on one issue only.
            mine = [row for row in waiting if pull.opened_by(dispatches.get(row.agent))]
            if len(mine) == 1:
                found[mine[0].id] = mine[0].issue_number
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
    workflow_run: int | None


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
                    repository.installation_github_id,
                    task.ticket.issue_number,
                    task.workflow_run_id,
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
        taken = withdraw(settings, repo, expired.issue, expired.agent, expired.workflow_run)
        repo.comment_on_issue(
            expired.issue,
            f"The agent `{expired.agent}` opened no pull request for this issue within its "
            f"{expired.timeout}s timeout, so the task failed{_also(taken)}. Comment `/retry` "
            "to hand it over again.",
        )
        reason = f"the agent `{expired.agent}` opened no pull request within {expired.timeout}s"
        show_failed(session, settings, BoardGateway(connection), repo, ticket, reason, lease)
    return 1


# -- following a workflow's run ---------------------------------------------------------

# Conclusions of a workflow run that mean its agent did not do the work.
RUN_FAILED = frozenset({"failure", "cancelled", "timed_out", "startup_failure", "action_required"})


@dataclass(frozen=True)
class WorkflowRunEvent:
    """What a `workflow_run` event says of the run a `hosted: workflow` task dispatched."""

    id: int
    action: str
    conclusion: str | None
    html_url: str

    @classmethod
    def from_payload(cls, action: str, run: dict[str, Any]) -> WorkflowRunEvent:
        return cls(
            id=int(run["id"]),
            action=action,
            conclusion=run.get("conclusion"),
            html_url=str(run.get("html_url") or ""),
        )


def follow_workflow_run(
    session: Session,
    settings: Settings,
    repo: RepositoryGateway,
    boards: BoardGateway,
    run: WorkflowRunEvent,
) -> None:
    """The run of a task's workflow started: its card to Building. It failed (or was
    cancelled, or timed out): the task fails with the run's link. It succeeded: its pull
    request says the rest."""
    repository = find_repository(session, repo.full_name)
    if repository is None:
        return
    found = session.execute(
        select(Task.id, Ticket.issue_number)
        .join(Task.ticket)
        .where(Ticket.repository_id == repository.id, Task.workflow_run_id == run.id)
    ).first()
    session.commit()
    if found is None:
        return  # a run specbridge did not dispatch
    if run.action == "in_progress" or (run.action == "completed" and run.conclusion in RUN_FAILED):
        with exclusive(settings, card_lock(repo.full_name, found.issue_number)) as lease:
            _apply_run(session, settings, repo, boards, found.id, run, lease)


def _apply_run(
    session: Session,
    settings: Settings,
    repo: RepositoryGateway,
    boards: BoardGateway,
    task_id: int,
    run: WorkflowRunEvent,
    lease: Lease,
) -> None:
    task = session.get_one(Task, task_id)
    session.refresh(task)
    ticket = task.ticket
    session.refresh(ticket)
    if task.status is not TaskStatus.RUNNING or ticket.state is not IssueState.OPEN:
        session.commit()
        return
    if run.action == "in_progress":
        _move(session, boards, ticket, TicketPhase.BUILDING, lease)
        return
    agent, issue = task.agent, ticket.issue_number
    reason = f"its workflow run {run.html_url} ended: {run.conclusion}"
    task.status, task.finished_at, task.error = TaskStatus.FAILED, datetime.now(UTC), reason
    session.commit()
    repo.comment_on_issue(
        issue,
        f"The workflow run of the agent `{agent}` ended `{run.conclusion}` ({run.html_url}), "
        "so its task failed. Comment `/retry` to run it again.",
    )
    show_failed(session, settings, boards, repo, ticket, reason, lease)
