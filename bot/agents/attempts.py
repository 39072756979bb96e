"""Several attempts at one task: compared once all have run, the first to pass its checks
marked ready, the others closed when one merges, the winner recorded.

A profile's or task's `attempts: N` (or `/attempt`) gives a ready ticket N runs
(bot/agents/scheduler.py), each on its own branch `specbridge/<spec>/<task>/<n>` with its
own draft pull request "Closes #N". When the last of them ends, the issue gets one comment
comparing them (outcome, tests, checks, diff size, cost).

With `pick: first` (the default) the first attempt whose checks pass is marked ready for
review and the others stay drafts (bot/agents/pull_checks.py asks `stays_draft`); with
`pick: manual` none is, people pick. When a person merges one, the others are closed
with a comment naming the one kept, and the kept one's runs are recorded as the winner
(`Task.attempt_won`, counted per agent by bot/agents/outcomes.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.agents.check_verdict import read_verdict
from bot.agents.costs import cost_text
from bot.agents.profiles import AgentProfile, load_profiles
from bot.github import RepositoryGateway, github_client
from bot.github.pull_requests import PullRequestGateway
from bot.github.repository import DiffSize
from bot.hooks import on_run_ended
from bot.locks import exclusive
from bot.settings import Settings
from storage.db import session_scope
from storage.models import CheckVerdict, Task, TaskStatus, Ticket

log = logging.getLogger(__name__)

MARKER = "<!-- specbridge:attempts -->"
LIVE = (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.WAITING)
FIRST, MANUAL = "first", "manual"
PICKED = {
    FIRST: "The first to pass its checks is marked ready for review; the others stay drafts.",
    MANUAL: "None is marked ready for review (`pick: manual`): people pick.",
}


@dataclass(frozen=True)
class Attempt:
    number: int
    agent: str
    status: TaskStatus
    pull_request: int | None
    commit: str | None  # what it pushed
    tests: str  # "passed", "failed", "none"
    error: str | None
    cost: str  # as bot/agents/costs.py shows one


@dataclass(frozen=True)
class Seen:
    """What GitHub shows of an attempt's pull request."""

    diff: DiffSize
    checks: str  # none | pending | failed | passed (bot/agents/check_verdict.py)


def attempts_of(ticket: Ticket) -> list[Task]:
    """The ticket's latest attempts (first runs, not revisions), by number."""
    numbered = [t for t in ticket.tasks if t.attempt_number and t.revision == 0]
    latest: dict[int, Task] = {}
    for task in numbered:
        assert task.attempt_number is not None
        latest[task.attempt_number] = task  # a retried attempt replaces the earlier one
    return [latest[n] for n in sorted(latest)]


def pick_of(ticket: Ticket, profiles: Mapping[str, AgentProfile]) -> str:
    """How one attempt is kept: the task's `pick:`; else manual when any attempt's profile
    says so (no draft is marked ready that someone meant to pick by hand); else first."""
    if ticket.spec_task is not None and ticket.spec_task.pick:
        return ticket.spec_task.pick
    picks = {profiles[t.agent].pick for t in attempts_of(ticket) if t.agent in profiles}
    return MANUAL if MANUAL in picks else FIRST


def stays_draft(
    session: Session, ticket: Ticket, number: int, profiles: Mapping[str, AgentProfile]
) -> str | None:
    """Why the draft `number` whose checks passed is not marked ready; None when it is
    (not an attempt, or the first attempt to pass). The caller holds the ticket's card
    lock and records this verdict before letting it go, so of two attempts passing at
    once the second finds the first's."""
    pulls = [t.pull_request_number for t in attempts_of(ticket) if t.pull_request_number]
    if number not in pulls:
        return None
    if pick_of(ticket, profiles) == MANUAL:
        return "people pick one of the attempts (`pick: manual`)"
    first = session.scalars(
        select(CheckVerdict.pull_request_number)
        .where(
            CheckVerdict.ticket_id == ticket.id,
            CheckVerdict.verdict == "passed",
            CheckVerdict.pull_request_number.in_([p for p in pulls if p != number]),
        )
        .order_by(CheckVerdict.id)
    ).first()
    return None if first is None else f"#{first}, another attempt, passed its checks first"


@on_run_ended
def compare_when_all_ran(settings: Settings, task_id: int) -> None:
    """After the last attempt's run: one comment on the issue comparing them all."""
    with session_scope(settings.database_url) as session:
        task = session.get_one(Task, task_id)
        if not task.attempt_number:
            return
        ticket_id = task.ticket_id
    # One at a time per ticket: two attempts ending at once say it once.
    with exclusive(settings, f"attempts:{ticket_id}"):
        _compare(settings, ticket_id)


def _compare(settings: Settings, ticket_id: int) -> None:
    with session_scope(settings.database_url) as session:
        ticket = session.get_one(Ticket, ticket_id)
        attempts = attempts_of(ticket)
        if any(t.status in LIVE for t in attempts) or len(attempts) < 2:
            return
        profiles = load_profiles(settings)
        shown = [_attempt(t, profiles) for t in attempts]
        pick = pick_of(ticket, profiles)
        repository = ticket.repository
        installation = repository.installation_github_id
        full_name, base = repository.full_name, repository.default_branch
        issue = ticket.issue_number
    repo = RepositoryGateway(github_client(settings, installation), full_name)
    if any(MARKER in c.body for c in repo.issue_comments(issue)):
        return  # another attempt's end said it already
    seen = _seen(repo, base, shown, settings.github_app_slug)
    repo.comment_on_issue(issue, comparison(shown, seen, pick))


def _attempt(task: Task, profiles: Mapping[str, AgentProfile]) -> Attempt:
    profile = profiles.get(task.agent)
    if task.status is TaskStatus.SUCCEEDED:
        tests = "passed" if profile is not None and profile.test else "none"
    elif task.error and task.error.startswith("the tests failed"):
        tests = "failed"
    else:
        tests = "none"
    assert task.attempt_number is not None
    return Attempt(
        task.attempt_number,
        task.agent,
        task.status,
        task.pull_request_number,
        task.pushed_commit,
        tests,
        task.error,
        cost_text(task.cost_usd, task.cost_estimated),
    )


def _seen(
    repo: RepositoryGateway, base: str, attempts: list[Attempt], own_app: str | None
) -> dict[int, Seen]:
    """Each pull request's diff against the default branch and its checks' verdict now."""
    pulls = PullRequestGateway(repo.connection, repo.full_name)
    seen = {}
    for attempt in attempts:
        if attempt.commit and attempt.pull_request:
            head = pulls.pull(attempt.pull_request)
            checks = read_verdict(pulls, head, own_app).state
            seen[attempt.number] = Seen(repo.diff_size(base, head.head_sha), checks)
    return seen


def comparison(attempts: list[Attempt], seen: Mapping[int, Seen], pick: str) -> str:
    """The comment comparing the attempts: one row each, then how one is kept."""
    rows = [
        "| attempt | agent | outcome | pull request | tests | checks | diff | cost |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for a in attempts:
        pull = f"#{a.pull_request}" if a.pull_request else "none"
        on = seen.get(a.number)
        checks, diff = (on.checks, _diff(on.diff)) if on else ("none", "none")
        rows.append(
            f"| {a.number} | `{a.agent}` | {a.status.value} | {pull} | {a.tests} | {checks} "
            f"| {diff} | {a.cost} |"
        )
    return (
        f"{MARKER}\nEvery attempt at this task has run:\n\n" + "\n".join(rows) + "\n\n"
        f"{PICKED[pick]} Merge the one to keep: specbridge closes the others."
    )


def _diff(size: DiffSize) -> str:
    files = "file" if size.files == 1 else "files"
    return f"+{size.additions} -{size.deletions} in {size.files} {files}"


def close_the_others(settings: Settings, ticket_id: int) -> None:
    """The ticket closed: if one attempt's pull request merged, it is recorded as the
    winner and the others' are closed."""
    with session_scope(settings.database_url) as session:
        ticket = session.get_one(Ticket, ticket_id)
        pulls = [(t.attempt_number, t.agent, t.pull_request_number) for t in attempts_of(ticket)]
        pulls = [(n, agent, pull) for n, agent, pull in pulls if pull]
        if len(pulls) < 2:
            return
        repository = ticket.repository
        installation = repository.installation_github_id
        full_name = repository.full_name
    repo = RepositoryGateway(github_client(settings, installation), full_name)
    states = {pull: repo.pull_request_state(pull) for _, _, pull in pulls}
    kept = next(((n, agent, pull) for n, agent, pull in pulls if states[pull] == "merged"), None)
    if kept is None:
        return
    number, agent, pull = kept
    _record_winner(settings, ticket_id, pull)
    log.info("attempt %s by the agent %s won: #%s merged", number, agent, pull)
    for other_number, _, other in pulls:
        if states[other] == "open":
            repo.comment_on_issue(
                other,
                f"Closed: #{pull} (attempt {number}, by the agent `{agent}`) was merged for "
                f"this task; this was attempt {other_number}.",
            )
            repo.update_issue(other, state="closed")


def _record_winner(settings: Settings, ticket_id: int, pull: int) -> None:
    """Every run of the kept attempt (its first run and its revisions) won."""
    with session_scope(settings.database_url) as session:
        session.execute(
            update(Task)
            .where(Task.ticket_id == ticket_id, Task.pull_request_number == pull)
            .values(attempt_won=True)
        )
        session.commit()
