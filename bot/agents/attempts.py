"""Several attempts at one task: compared once all have run, the others closed when one merges.

A profile's `attempts: N` gives a ready ticket N runs (bot/agents/scheduler.py), each
on its own branch `specbridge/<spec>/<task>/<n>` with its own draft pull request
"Closes #N". When the last of them ends, the issue gets one comment comparing them
(outcome, tests, files changed); when a person merges one, the others are closed
with a comment naming the one kept, and the log records the winning agent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.agents.profiles import load_profiles
from bot.github import RepositoryGateway, github_client
from bot.hooks import on_run_ended
from bot.locks import exclusive
from bot.settings import Settings
from storage.db import session_scope
from storage.models import Task, TaskStatus, Ticket

log = logging.getLogger(__name__)

MARKER = "<!-- specbridge:attempts -->"
LIVE = (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.WAITING)


@dataclass(frozen=True)
class Attempt:
    number: int
    agent: str
    status: TaskStatus
    pull_request: int | None
    commit: str | None  # what it pushed
    tests: str  # "passed", "failed", "none"
    error: str | None


def attempts_of(ticket: Ticket) -> list[Task]:
    """The ticket's latest attempts (first runs, not revisions), by number."""
    numbered = [t for t in ticket.tasks if t.attempt_number and t.revision == 0]
    latest: dict[int, Task] = {}
    for task in numbered:
        assert task.attempt_number is not None
        latest[task.attempt_number] = task  # a retried attempt replaces the earlier one
    return [latest[n] for n in sorted(latest)]


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
        repository = ticket.repository
        installation = repository.installation_github_id
        full_name, base = repository.full_name, repository.default_branch
        issue = ticket.issue_number
    repo = RepositoryGateway(github_client(settings, installation), full_name)
    if any(MARKER in c.body for c in repo.issue_comments(issue)):
        return  # another attempt's end said it already
    repo.comment_on_issue(issue, comparison(shown, _files_changed(repo, base, shown)))


def _attempt(task: Task, profiles: dict) -> Attempt:  # type: ignore[type-arg]
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
    )


def _files_changed(repo: RepositoryGateway, base: str, attempts: list[Attempt]) -> dict[int, int]:
    changed = {}
    for attempt in attempts:
        if attempt.commit and attempt.pull_request:
            present, removed = repo.changed_files(base, attempt.commit)
            changed[attempt.number] = len(present) + len(removed)
    return changed


def comparison(attempts: list[Attempt], files: dict[int, int]) -> str:
    """The comment comparing the attempts: one row each."""
    rows = [
        "| attempt | agent | outcome | pull request | tests | files changed |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for a in attempts:
        pull = f"#{a.pull_request}" if a.pull_request else "none"
        changed = str(files[a.number]) if a.number in files else "none"
        rows.append(
            f"| {a.number} | `{a.agent}` | {a.status.value} | {pull} | {a.tests} | {changed} |"
        )
    return (
        f"{MARKER}\nEvery attempt at this task has run:\n\n" + "\n".join(rows) + "\n\n"
        "Review them, and merge the one to keep: specbridge closes the others."
    )


def close_the_others(settings: Settings, ticket_id: int) -> None:
    """The ticket closed: if one attempt's pull request merged, the others' are closed."""
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
    log.info("attempt %s by the agent %s won: #%s merged", number, agent, pull)
    for other_number, _, other in pulls:
        if states[other] == "open":
            repo.comment_on_issue(
                other,
                f"Closed: #{pull} (attempt {number}, by the agent `{agent}`) was merged for "
                f"this task; this was attempt {other_number}.",
            )
            repo.update_issue(other, state="closed")
