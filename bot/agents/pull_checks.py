"""The repository's checks close the loop on an agent's pull request.

Every check run and commit status on the head of a pull request an agent opened (a
local run's, or a hosted agent's once it is ready for review) is read back as GitHub
has it; the checks that count are those the base branch's protection requires, or,
when it names none, every check but specbridge's own (bot/agents/check_verdict.py).
Then, once per head commit:

- some still run → the card is in Testing;
- all done, one failed → the card back to Building and, when the profile says
  `fix_checks` (presets do unless told not to), the agent runs again on the same
  branch told each failing check's name, summary, the last lines of its output and its
  annotations (file and line), as a revision counted toward `max_revisions`; otherwise
  the issue says which failed, for people to fix or `/revise`;
- all passed → a local agent's draft is marked ready for review (of several attempts,
  the first to pass only, and none with `pick: manual`: bot/agents/attempts.py), the
  profile's `reviewers:` are asked (GitHub asks the code owners itself), and the issue
  says so once.

A run in progress owns its card: nothing here moves it, and the run looks at the
checks again when it ends (`follow_after_run`). Each verdict is recorded
(CheckVerdict) before or with what it leads to, under the card's lock, so a second
delivery of the same news acts on nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.agents.attempts import attempts_of, stays_draft
from bot.agents.check_verdict import Verdict, read_verdict
from bot.agents.profiles import AgentProfile, load_profiles
from bot.agents.scheduler import LIVE, not_revisable_because, queue_revision
from bot.github import BoardGateway, RepositoryGateway, github_client
from bot.github.columns import show_on_board
from bot.github.pull_requests import CheckResult, PullHead, PullRequestGateway
from bot.hooks import on_agent_pushed, on_run_ended, ticket_changed
from bot.locks import Lease, card_lock, exclusive, spec_lock
from bot.queue import INTERACTIVE, enqueue
from bot.repositories import find_repository
from bot.settings import Settings, SettingsError, get_settings
from storage.db import session_scope
from storage.models import CheckVerdict, IssueState, Task, Ticket, TicketPhase

log = logging.getLogger(__name__)

MENTION = re.compile(r"@(?=[A-Za-z0-9])")
# What an agent is told of a failing check's output: its last lines.
OUTPUT_LINES = 60
OUTPUT_CHARS = 6000
SUMMARY_CHARS = 2000
# After a run, the checks of its push are read again this soon (they may have finished
# while the run was still recording itself).
AFTER_RUN_DELAY = 2


# -- following -------------------------------------------------------------------------


def follow_checks(
    session: Session,
    settings: Settings,
    repo: RepositoryGateway,
    boards: BoardGateway,
    pull_numbers: Sequence[int],
    head_sha: str | None,
) -> None:
    """News of checks on `head_sha` (None: the pull request's head now) of these pull
    requests: those an agent opened are looked at again."""
    repository = find_repository(session, repo.full_name)
    if repository is None or not pull_numbers:
        session.commit()
        return
    agent_pulls = session.execute(
        select(Task.pull_request_number, Task.ticket_id)
        .join(Task.ticket)
        .where(
            Ticket.repository_id == repository.id,
            Task.pull_request_number.in_(list(pull_numbers)),
            Task.branch.is_not(None),
        )
        .distinct()
    ).all()
    session.commit()
    for number, ticket_id in agent_pulls:
        _Follow(session, settings, repo, boards, ticket_id, number).run(head_sha)


def pulls_of_branches(session: Session, full_name: str, branches: Sequence[str]) -> list[int]:
    """The agents' pull requests whose head branch is one of these (a `status` event
    names branches, not pull requests)."""
    repository = find_repository(session, full_name)
    if repository is None or not branches:
        return []
    found = session.scalars(
        select(Task.pull_request_number)
        .join(Task.ticket)
        .where(
            Ticket.repository_id == repository.id,
            Task.branch.in_(list(branches)),
            Task.pull_request_number.is_not(None),
        )
        .distinct()
    ).all()
    return [n for n in found if n is not None]


@on_agent_pushed
def follow_after_run(settings: Settings, ticket_id: int, pull_number: int) -> None:
    """A run pushed to its pull request: its checks are read again in a moment (they may
    have finished while it was still at work). Best effort: the checks' own events come."""
    try:
        enqueue(
            settings,
            INTERACTIVE,
            look_again,
            ticket_id,
            pull_number,
            job_id=f"checks-{ticket_id}-{pull_number}",
            delay=AFTER_RUN_DELAY,
        )
    except Exception:  # the queue is away: the checks' own events still come
        log.warning("could not queue a look at the checks of #%s", pull_number, exc_info=True)


@on_run_ended
def look_at_the_other_attempts(settings: Settings, task_id: int) -> None:
    """One of several attempts ended: once no run of its ticket is live, the other
    attempts' checks are read again (news of them while a run went was left to it: a run
    owns the card), so the first of them to pass is marked ready."""
    with session_scope(settings.database_url) as session:
        task = session.get_one(Task, task_id)
        ticket_id, ticket = task.ticket_id, task.ticket
        if not task.attempt_number or any(t.status in LIVE for t in ticket.tasks):
            return
        others = [t.pull_request_number for t in attempts_of(ticket) if t.id != task.id]
    for number in others:
        if number is not None:
            follow_after_run(settings, ticket_id, number)


def look_again(ticket_id: int, pull_number: int) -> None:
    """The queue job of follow_after_run."""
    settings = get_settings()
    with session_scope(settings.database_url) as session:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            return
        repository = ticket.repository
        installation = repository.installation_github_id
        full_name = repository.full_name
        session.commit()
        connection = github_client(settings, installation)
        repo = RepositoryGateway(connection, full_name)
        _Follow(session, settings, repo, BoardGateway(connection), ticket_id, pull_number).run(None)


class _Follow:
    """One agent's pull request, looked at again."""

    def __init__(
        self,
        session: Session,
        settings: Settings,
        repo: RepositoryGateway,
        boards: BoardGateway,
        ticket_id: int,
        number: int,
    ) -> None:
        self.session = session
        self.settings = settings
        self.repo = repo
        self.boards = boards
        self.ticket_id = ticket_id
        self.number = number
        self.pulls = PullRequestGateway(repo.connection, repo.full_name)

    def run(self, head_sha: str | None) -> None:
        pull = self.pulls.pull(self.number)
        if pull.state != "open" or (head_sha is not None and head_sha != pull.head_sha):
            return  # closed, or news of a commit that is no longer its head
        verdict = read_verdict(self.pulls, pull, self._own_app())
        if verdict.state == "none" or self._known(pull, verdict):
            return  # nothing to say, or said already (the same news from another event)
        told = self._what_failed(verdict) if verdict.state == "failed" else ""
        ticket = self.session.get_one(Ticket, self.ticket_id)
        locks = [card_lock(self.repo.full_name, ticket.issue_number)]
        if ticket.spec is not None:  # the spec's lock first, as the issue handler takes them
            locks.insert(0, spec_lock(self.repo.full_name, ticket.spec.key))
        self.session.commit()
        with exclusive(self.settings, locks[0]) as first:
            if len(locks) == 1:
                self._decide(pull, verdict, told, first)
                return
            with exclusive(self.settings, locks[1]) as card:
                self._decide(pull, verdict, told, card)

    def _own_app(self) -> str | None:
        return self.settings.github_app_slug

    def _decide(self, pull: PullHead, verdict: Verdict, told: str, lease: Lease) -> None:
        ticket = self.session.get_one(Ticket, self.ticket_id)
        self.session.refresh(ticket)
        tasks = list(self.session.scalars(select(Task).where(Task.ticket_id == ticket.id)))
        ours = [t for t in tasks if t.pull_request_number == pull.number]
        newest = max(ours, key=lambda t: t.id) if ours else None
        if ticket.state is not IssueState.OPEN or newest is None:
            self.session.commit()
            return
        hosted = newest.dispatched_at is not None
        running_here = any(t.status in LIVE and t.dispatched_at is None for t in tasks)
        if running_here or (hosted and pull.draft):
            self.session.commit()  # a run owns the card (a hosted draft: the agent is at work)
            return
        if self._known(pull, verdict):
            return  # another worker acted on the same news while this one waited
        profile = self._profile(newest.agent)
        if verdict.state == "pending":
            self._move(ticket, TicketPhase.TESTING, lease)
        elif verdict.state == "failed":
            self._failed(ticket, pull, verdict, told, profile, hosted, lease)
        else:
            self._passed(ticket, pull, verdict, profile, hosted, lease)

    def _failed(
        self,
        ticket: Ticket,
        pull: PullHead,
        verdict: Verdict,
        told: str,
        profile: AgentProfile | None,
        hosted: bool,
        lease: Lease,
    ) -> None:
        if self._recorded(ticket, pull, verdict):
            return
        self._move(ticket, TicketPhase.BUILDING, lease)
        names = _names(verdict.failed)
        said = f"The repository's checks failed on #{pull.number}: {names}."
        if profile is not None and profile.fix_checks and not hosted:
            on = self._run_of(ticket, pull.number)  # one of several attempts: its own
            reason = not_revisable_because(ticket, self.settings, on)
            if reason is None:
                task = queue_revision(
                    self.session, self.settings, ticket, told, fixes_checks=True, on=on
                )
                said += (
                    f" The agent `{task.agent}` runs again on `{task.branch}`, told what they "
                    f"report (revision {task.revision} of {profile.max_revisions})."
                )
            else:
                said += f" The agent does not run again: {reason}."
        else:
            said += (
                " Fix them on the branch, or ask the agent with `/revise <what to change>` on "
                f"#{pull.number}."
            )
        self.session.commit()
        self.repo.comment_on_issue(ticket.issue_number, said + _details(verdict.failed))

    def _passed(
        self,
        ticket: Ticket,
        pull: PullHead,
        verdict: Verdict,
        profile: AgentProfile | None,
        hosted: bool,
        lease: Lease,
    ) -> None:
        self._move(ticket, TicketPhase.TESTING, lease)
        held = (
            stays_draft(self.session, ticket, pull.number, self._profiles()) if pull.draft else None
        )
        self.session.commit()  # read: no transaction while GitHub answers
        marked = pull.draft and not hosted and held is None
        if marked:
            self.pulls.mark_ready(pull.node_id)  # GitHub asks the code owners now
        refused = None
        if profile is not None:
            refused = self.pulls.request_reviewers(
                pull.number, profile.reviewer_logins, profile.reviewer_teams
            )
        asked = self.pulls.requested_reviewers(pull.number)
        if self._recorded(ticket, pull, verdict):
            return  # told meanwhile by another worker
        ready = "it is marked ready for review" if marked else "it is ready for review"
        if held:
            ready = f"it stays a draft: {held}"
        who = (
            f", and {', '.join(f'@{a}' for a in asked)} "
            f"{'is' if len(asked) == 1 else 'are'} asked to review it"
            if asked
            else "; no reviewer is named (the profile's `reviewers:`, or CODEOWNERS)"
        )
        checks = _names(verdict.counted)
        said = f"The repository's checks passed on #{pull.number} ({checks}): {ready}{who}."
        if refused:
            said += f" GitHub did not ask the profile's reviewers: {refused}"
        self.repo.comment_on_issue(ticket.issue_number, said)

    def _run_of(self, ticket: Ticket, number: int) -> Task | None:
        """The newest run that opened or revised this pull request of the ticket."""
        ours = [t for t in ticket.tasks if t.pull_request_number == number and t.branch]
        return max(ours, key=lambda t: t.id, default=None)

    def _what_failed(self, verdict: Verdict) -> str:
        """What the agent is told: each failing check's words, its output's last lines and
        its annotations (read before any lock: GitHub calls)."""
        parts = [
            "The repository's checks failed on the head of your pull request. Make them "
            "pass: fix what they report, and change nothing else."
        ]
        for check in verdict.failed:
            parts.append(f"### `{check.name}` ({check.kind}): {check.conclusion}")
            if check.title:
                parts.append(check.title.strip())
            if check.summary:
                parts.append(_cut(check.summary.strip(), SUMMARY_CHARS))
            if check.text:
                parts.append(f"The last lines of its output:\n\n```\n{_tail(check.text)}\n```")
            if check.run_id is not None:
                found = self.pulls.annotations(check.run_id)
                if found:
                    lines = ["Annotations:"]
                    lines += [
                        f"- `{a.path}` line {a.line} ({a.level}): {_one_line(a.title or '')}"
                        f"{' ' if a.title else ''}{_one_line(a.message)}"
                        for a in found
                    ]
                    parts.append("\n".join(lines))
            if check.url:
                parts.append(f"Details: {check.url}")
        return "\n\n".join(parts)

    def _move(self, ticket: Ticket, phase: TicketPhase, lease: Lease) -> None:
        """The card to `phase`, unless it shows a failed run (until a run starts again)."""
        self.session.refresh(ticket, ["phase", "failure"])
        ticket.repository  # noqa: B018 - loaded before the commit, read by show_on_board
        if ticket.phase is phase or ticket.failure:
            self.session.commit()
            return
        shown_as, ticket.phase = ticket.phase, phase
        self.session.commit()
        ticket_changed(self.settings, ticket)
        lease.check()
        show_on_board(self.boards, ticket, shown_as)

    def _known(self, pull: PullHead, verdict: Verdict) -> bool:
        """Whether this verdict on this head was acted on already."""
        if verdict.state not in ("failed", "passed"):
            return False
        found = self.session.scalars(
            select(CheckVerdict.id).where(
                CheckVerdict.ticket_id == self.ticket_id,
                CheckVerdict.head_sha == pull.head_sha,
                CheckVerdict.verdict == verdict.state,
            )
        ).first()
        self.session.commit()
        return found is not None

    def _recorded(self, ticket: Ticket, pull: PullHead, verdict: Verdict) -> bool:
        """Record the verdict; True when it was recorded before (acted on already)."""
        row = CheckVerdict(
            ticket_id=ticket.id,
            pull_request_number=pull.number,
            head_sha=pull.head_sha,
            verdict=verdict.state,
            checks=verdict.names,
        )
        try:
            with self.session.begin_nested():
                self.session.add(row)
        except IntegrityError:
            self.session.commit()
            return True
        self.session.commit()
        return False

    def _profile(self, agent: str) -> AgentProfile | None:
        return self._profiles().get(agent)

    def _profiles(self) -> dict[str, AgentProfile]:
        try:
            return load_profiles(self.settings)
        except SettingsError:
            return {}


def _names(checks: Sequence[CheckResult]) -> str:
    return ", ".join(f"`{c.name.replace('`', '')}`" for c in checks)


def _details(failed: Sequence[CheckResult]) -> str:
    lines = [
        f"- `{c.name.replace('`', '')}`: {c.conclusion}"
        + (f" — {_quiet(_one_line(c.title)[:200])}" if c.title else "")
        for c in failed
    ]
    return "\n\n" + "\n".join(lines)


def _quiet(text: str) -> str:
    """A CI's words posted on an issue: mentions made inert, as GitHub's own bots do."""
    return MENTION.sub("@\u200b", text)


def _tail(text: str) -> str:
    lines = text.rstrip().splitlines()[-OUTPUT_LINES:]
    return "\n".join(lines)[-OUTPUT_CHARS:].replace("```", "'''")


def _cut(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def _one_line(text: str) -> str:
    return " ".join(text.split())
