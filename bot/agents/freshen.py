"""Agents' pull requests kept fresh: when the default branch moves, the base is merged in.

The merge is the bot's own git (bot/agents/git.py: fixed configuration, no hooks)
in a bare repository of its own: `git merge-tree` computes it without checking
anything out, so nothing of the repository's content runs or is even written to
disk as files. The merge commit is pushed without force: a person's commit pushed
meanwhile makes the push fail, and the branch is left for the next move.

When the merge conflicts, the pull request gets the label `specbridge: conflict` and
a comment, and the agent runs again as a revision told to resolve it (counted in
the profile's `max_revisions`): its workspace starts from the merge with the
conflicts marked, and its commit has the base as second parent (bot/agents/run.py).
The label goes once a merge of the base is clean again.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import select

from bot.agents.attempts import attempts_of
from bot.agents.git import BotGit, GitError
from bot.agents.profiles import load_profiles
from bot.agents.scheduler import (
    LIVE,
    not_revisable_because,
    queue_revision,
)
from bot.agents.workspace import remove_tree
from bot.github import RepositoryGateway, github_client
from bot.github.auth import repository_token
from bot.hooks import on_agent_pushed
from bot.logs import log_context
from bot.settings import Settings, get_settings, web_url_for
from storage.db import session_scope
from storage.models import IssueState, Repository, Task, Ticket

log = logging.getLogger(__name__)

CONFLICT_LABEL = "specbridge: conflict"
MAX_PATHS_SHOWN = 20


@dataclass(frozen=True)
class Freshened:
    outcome: str  # "current" (the base is in the branch), "merged", "conflict", "moved"
    commit: str | None = None  # the merge pushed; for a conflict, the base's head
    conflicts: tuple[str, ...] = ()


def merge_base(url: str, branch: str, base: str, token: str | None) -> Freshened:
    """Merge `base` into `branch` of the repository at `url` and push it (no force)."""
    scheme = urlsplit(url).scheme
    if scheme not in ("https", "http"):
        raise GitError(f"specbridge fetches over https only, not {url!r}")
    root = Path(tempfile.mkdtemp(prefix="specbridge-freshen-"))
    try:
        (root / "home").mkdir()
        git = BotGit(root / "git", root / "home", None, (scheme,))
        git("init", "--quiet", "--bare", "--template=")
        refspecs = [f"+refs/heads/{name}:refs/remotes/origin/{name}" for name in (branch, base)]
        git("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", url, *refspecs, token=token)
        head = git.text("rev-parse", "--verify", f"refs/remotes/origin/{branch}^{{commit}}")
        moved = git.text("rev-parse", "--verify", f"refs/remotes/origin/{base}^{{commit}}")
        if _contains(git, moved, head):
            return Freshened("current")
        merged = git.text(
            "merge-tree",
            "--write-tree",
            "--name-only",
            "--no-messages",
            head,
            moved,
            success=(0, 1),
        ).splitlines()
        tree, conflicted = merged[0], tuple(p for p in merged[1:] if p)
        if conflicted:
            return Freshened("conflict", moved, conflicted)
        message = f"Merge {base} into {branch}\n\nspecbridge keeps the pull request current."
        commit = git.text(
            "commit-tree", tree, "-p", head, "-p", moved, "-F", "-", stdin=message.encode()
        )
        try:
            git("push", "--quiet", url, f"{commit}:refs/heads/{branch}", token=token)
        except GitError as error:
            if error.passing:
                raise
            return Freshened("moved")  # pushed to meanwhile (a person?): never forced
        return Freshened("merged", commit)
    finally:
        remove_tree(root)


def _contains(git: BotGit, ancestor: str, head: str) -> bool:
    """Whether `ancestor` is in `head`'s history (git says 1 when it is not)."""
    try:
        git("merge-base", "--is-ancestor", ancestor, head)
    except GitError:
        return False
    return True


def freshen_pull_requests(repository_id: int) -> None:
    """The queue job after the default branch moved: every open pull request of an agent
    in the repository gets the new base merged in, or a revision to resolve it."""
    settings = get_settings()
    with session_scope(settings.database_url) as session:
        repository = session.get_one(Repository, repository_id)
        full_name, base = repository.full_name, repository.default_branch
        installation = repository.installation_github_id
        ticket_ids = session.scalars(
            select(Ticket.id).where(
                Ticket.repository_id == repository_id, Ticket.state == IssueState.OPEN
            )
        ).all()
    repo = RepositoryGateway(github_client(settings, installation), full_name)
    for ticket_id in ticket_ids:
        with log_context(repository=full_name, ticket=ticket_id):
            _freshen(settings, repo, installation, base, ticket_id)


def _freshen(
    settings: Settings, repo: RepositoryGateway, installation: int | None, base: str, ticket_id: int
) -> None:
    with session_scope(settings.database_url) as session:
        ticket = session.get_one(Ticket, ticket_id)
        if any(task.status in LIVE for task in ticket.tasks):
            return  # a run on its branch merges what it finds
        profiles = load_profiles(settings)
        pulls = [
            (run.id, run.pull_request_number, run.branch)
            for run in pull_request_runs(ticket)
            if not (profiles.get(run.agent) and profiles[run.agent].hosted)  # GitHub's agent's
        ]
        conflicted_before = any(task.merges_base for task in ticket.tasks)
        attempts = {task.pull_request_number for task in attempts_of(ticket)}
    url = f"{web_url_for(settings.github_api_url)}/{repo.full_name}.git"
    states = {number: repo.pull_request_state(number) for _, number, _ in pulls if number}
    if any(states.get(number) == "merged" for number in attempts):
        return  # one of several attempts merged: the others are being closed, not freshened
    for run_id, number, branch in pulls:
        assert number is not None and branch is not None
        if states[number] != "open":
            continue
        token = repository_token(settings, installation, repo.full_name)
        fresh = merge_base(url, branch, base, token)
        log.info("pull request #%s and %s: %s", number, base, fresh.outcome)
        if fresh.outcome == "conflict":
            _conflicted(settings, repo, ticket_id, run_id, number, base, fresh)
        elif fresh.outcome == "merged" and conflicted_before:
            repo.remove_label(number, CONFLICT_LABEL)  # a person resolved it


def pull_request_runs(ticket: Ticket) -> list[Task]:
    """The newest run on each pull request an agent opened for the ticket (several for
    several attempts), oldest pull request first."""
    newest: dict[int, Task] = {}
    for task in ticket.tasks:
        if task.pull_request_number and task.branch:
            newest[task.pull_request_number] = task  # tasks come in the order of their ids
    return [newest[number] for number in sorted(newest)]


def _conflicted(
    settings: Settings,
    repo: RepositoryGateway,
    ticket_id: int,
    run_id: int,
    number: int,
    base: str,
    fresh: Freshened,
) -> None:
    shown = ", ".join(f"`{p}`" for p in fresh.conflicts[:MAX_PATHS_SHOWN])
    more = len(fresh.conflicts) - MAX_PATHS_SHOWN
    if more > 0:
        shown += f" and {more} more"
    with session_scope(settings.database_url) as session:
        ticket = session.get_one(Ticket, ticket_id)
        run = session.get_one(Task, run_id)
        if any(
            t.merges_base == fresh.commit and t.pull_request_number == number for t in ticket.tasks
        ):
            return  # this very conflict was handed to the agent already
        reason = not_revisable_because(ticket, settings, run)
        if reason is None:
            told = (
                f"`{base}` moved, and merging it into this branch conflicts in {shown}. "
                f"The workspace holds that merge with the conflicts marked: resolve every "
                f"conflict, keeping what `{base}` changed and what this task needs, and "
                "leave no conflict marker."
            )
            task = queue_revision(session, settings, ticket, told, merges_base=fresh.commit, on=run)
            said = (
                f"`{base}` moved and now conflicts with this branch in {shown}: the agent "
                f"resolves it (revision {task.revision})."
            )
        else:
            said = (
                f"`{base}` moved and now conflicts with this branch in {shown}. The agent "
                f"cannot resolve it: {reason}. Merge `{base}` into the branch to resolve it."
            )
    repo.add_label(number, CONFLICT_LABEL)
    repo.comment_on_issue(number, said)


@on_agent_pushed
def conflict_resolved(settings: Settings, ticket_id: int, pull_number: int) -> None:
    """The agent pushed its resolution of a conflict with the base: the label goes."""
    with session_scope(settings.database_url) as session:
        ticket = session.get_one(Ticket, ticket_id)
        runs = [t for t in ticket.tasks if t.pull_request_number == pull_number]
        if not runs or not runs[-1].merges_base:
            return
        repository = ticket.repository
        installation = repository.installation_github_id
        full_name = repository.full_name
    repo = RepositoryGateway(github_client(settings, installation), full_name)
    repo.remove_label(pull_number, CONFLICT_LABEL)
