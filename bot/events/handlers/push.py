"""`push` to the default branch: spec files touched → sync them; agents' pull requests
→ the new base merged in (bot/agents/freshen.py)."""

from __future__ import annotations

from typing import Any

from bot.agents.budget_release import release_budget_holds
from bot.agents.freshen import freshen_pull_requests
from bot.events.router import Event, router
from bot.github import RepositoryGateway
from bot.github.columns import board_problems
from bot.queue import EVENTS, enqueue
from bot.repo_config import CONFIG_PATH, RepoConfig
from bot.repositories import repository_from_payload
from bot.sync import GitHubSide, record_settings, render, sync_files


@router.register("push")
def on_push(event: Event) -> None:
    payload = event.payload
    default_branch = payload["repository"].get("default_branch")
    if payload["ref"] != f"refs/heads/{default_branch}" or payload.get("deleted"):
        return
    session = event.session
    repository = repository_from_payload(session, payload)
    session.commit()
    # The base of agents' pull requests moved: each gets it merged in (or a revision).
    enqueue(event.settings, EVENTS, freshen_pull_requests, repository.id)
    touched_config = CONFIG_PATH in _touched(payload)[0]
    known = RepoConfig.from_dict(repository.settings)
    if not touched_config and changed_spec_paths(payload, known) == ([], []):
        return  # no spec file and no settings changed: nothing to read or write
    session.commit()
    repo = event.repository_gateway()
    # The files are read at the branch's head, not at this push's commit: a
    # delivery retried or redelivered late must not bring back older content.
    previous_error = repository.settings_error
    commit, config = record_settings(session, event.settings, repo, repository, default_branch)
    if touched_config:
        release_budget_holds(event.settings)  # a budget raised lets its tasks go on
    if repository.settings_error and repository.settings_error != previous_error:
        repo.comment_on_commit(commit, render.config_error_comment(repository.settings_error))
    elif touched_config and config.has_board:
        _check_board(event, repo, commit, config)
    changed, removed = changed_spec_paths(payload, config)
    if touched_config:
        # New settings (say, a board) apply to every spec, not only the changed ones.
        changed = sorted(set(changed) | {s.path for s in repository.specs if s.path not in removed})
    if not changed and not removed:
        return
    github = GitHubSide(repo, event.board_gateway(), config)
    sync_files(session, event.settings, github, repository, commit, changed, removed)


def _check_board(event: Event, repo: RepositoryGateway, commit: str, config: RepoConfig) -> None:
    """New settings naming a board: what it lacks is said on the commit, as a spec that
    does not validate is (a card would otherwise stay put in silence)."""
    assert config.project_owner is not None and config.project_number is not None
    problems = board_problems(
        event.board_gateway(), config.project_owner, config.project_number, config.status
    )
    if problems:
        board = f"{config.project_owner}/{config.project_number}"
        said = "\n".join(f"- {problem}" for problem in problems)
        repo.comment_on_commit(
            commit,
            f"specbridge: the board {board} that `{CONFIG_PATH}` names cannot show every "
            f"phase, so cards stay where they are when their ticket moves there:\n\n{said}",
        )


def changed_spec_paths(payload: dict[str, Any], config: RepoConfig) -> tuple[list[str], list[str]]:
    """Specs changed by the push's commits, and YAML specs removed. A spec-kit or Kiro
    spec is its folder: a change to any file it reads (spec.md alone, say) changes it,
    and it is removed only when none of them is left, which its sync finds out."""
    present, removed = _touched(payload)
    changed = {config.spec_of(p) for p in present}
    gone = {config.spec_of(p) for p in removed}
    changed |= {p for p in gone if p is not None and p.endswith("/")}
    return (
        sorted(p for p in changed if p is not None),
        sorted(p for p in gone - changed if p is not None),
    )


def _touched(payload: dict[str, Any]) -> tuple[set[str], set[str]]:
    present: set[str] = set()
    removed: set[str] = set()
    for commit in payload.get("commits") or []:
        for path in (commit.get("added") or []) + (commit.get("modified") or []):
            present.add(path)
            removed.discard(path)
        for path in commit.get("removed") or []:
            removed.add(path)
            present.discard(path)
    return present, removed
