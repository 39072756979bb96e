"""The `specbridge` check on a pull request's head: spec files validated, with
an annotation per finding, and the plan of the merge as its summary.

Nothing is written to GitHub but the check run: the plan is read from the
rows the last sync of the default branch recorded and from the head's files.
A pull request from a fork gets the same check (it only reads).

One run per head commit: a redelivered event, or a pull request reopened on
the same head, finds the run already there (and completes it when a crash
left it in progress). A re-run asked for on GitHub gets a new run.
A newer push gets its own run on its own commit, which is the one GitHub
shows on the pull request; the older run stays with its commit, as CI does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.orm import Session

from bot.agents.profiles import load_profiles
from bot.github import RepositoryGateway
from bot.github.checks import CHECK_NAME, Annotation, CheckRun, ChecksGateway
from bot.locks import exclusive
from bot.repo_config import CONFIG_PATH, RepoConfig, parse_repo_config
from bot.repositories import find_repository, repository_from_payload
from bot.review import plan_report
from bot.settings import Settings
from bot.sync import read_specs, spec_paths_at
from bot.sync.plan import Plan, plan_files
from specs.files import read_spec_files
from specs.model import Finding
from specs.sources import group
from storage.db import session_scope

_LEVELS = {"error": "failure", "warning": "warning"}


class Event(Protocol):
    """What a check needs of the delivery that asks for it (bot.events.router.Event)."""

    payload: dict[str, Any]
    settings: Settings
    session: Session

    def repository_gateway(self) -> RepositoryGateway: ...


@dataclass(frozen=True)
class CheckTarget:
    """The commit to check, and what it would be merged into."""

    head_sha: str
    base_sha: str | None  # None: compare with the default branch
    base_ref: str | None
    pull_number: int | None = None
    rerun: bool = False  # asked for on GitHub: a new run even if one exists


@dataclass(frozen=True)
class _Changes:
    specs: list[str]
    removed: list[str]
    config: RepoConfig
    config_error: str | None


def target_of(event: Event, head_sha: str, pulls: list[dict[str, Any]], rerun: bool) -> CheckTarget:
    """The target of a check suite or run: its first pull request into this repository
    (a fork's are not listed by GitHub), or else the default branch."""
    repository_id = event.payload["repository"]["id"]
    pull = next((p for p in pulls if p["base"]["repo"]["id"] == repository_id), None)
    if pull is None:
        return CheckTarget(head_sha, None, None, rerun=rerun)
    return CheckTarget(head_sha, pull["base"]["sha"], pull["base"]["ref"], pull["number"], rerun)


def check_head(event: Event, target: CheckTarget) -> None:
    """Report on the head when it changes spec files or the settings; else do nothing."""
    session = event.session
    repository = repository_from_payload(session, event.payload)
    repository_id, default_branch = repository.id, repository.default_branch
    recorded_config = RepoConfig.from_dict(repository.settings)
    session.commit()
    repo = event.repository_gateway()
    base = target.base_sha or repo.commit_sha(default_branch)
    changes = _changed(repo, recorded_config, base, target.head_sha)
    if changes is None:
        return
    checks = ChecksGateway(repo.connection, repo.full_name)
    lock = f"check:{repo.full_name}:{target.head_sha}"
    with exclusive(event.settings, lock):
        run = _run_to_complete(checks, target)
        if run is None:
            return
        contents = read_specs(repo, changes.specs, target.head_sha)
        known_agents = set(load_profiles(event.settings))
        present = {name: text for files in contents.values() for name, text in files.items()}
        removed = [*changes.removed, *(p for p, files in contents.items() if not files)]
        plan = plan_files(
            session, repository_id, present, removed, known_agents, changes.config.formats
        )
        notes = _notes(target, default_branch, changes.config_error)
        if target.base_ref is not None and target.base_ref != default_branch:
            plan.diffs = []  # only the default branch is synced: validation alone
        heading = f"Plan of merging #{target.pull_number}" if target.pull_number else "Plan"
        summary = plan_report.summary(plan, heading, notes)
        failed = bool(changes.config_error) or any(f.is_error for f in plan.findings)
        title = plan_report.title(plan) if not changes.config_error else "Invalid settings"
        session.commit()  # the plan is plain values: no transaction while GitHub answers
        checks.complete(
            run.id,
            "failure" if failed else "success",
            title,
            summary,
            annotations(plan, changes.config_error),
        )


def local_plan(settings: Settings, full_name: str, paths: Sequence[str]) -> tuple[str, bool]:
    """`specbridge plan`: the same plan for files on disk (paths as in the repository,
    from its root), against the rows of DATABASE_URL; and whether every file is valid.
    A recorded spec whose file is missing from a directory given is planned as deleted."""
    files: dict[str, bytes] = {}
    directories = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            directories.append(path.as_posix().rstrip("/") + "/")
        files |= read_spec_files(path)
    found = group(files, anywhere=True)
    with session_scope(settings.database_url) as session:
        repository = find_repository(session, full_name)
        recorded = [s.path for s in repository.specs] if repository else []
        removed = [p for p in recorded if p.startswith(tuple(directories)) and p not in found]
        plan = plan_files(
            session,
            repository.id if repository else None,
            files,
            removed,
            set(load_profiles(settings)),
            anywhere=True,
        )
    notes = [] if repository else [f"Nothing is recorded of {full_name}: every issue is new."]
    text = plan_report.summary(plan, f"Plan for {full_name}", notes)
    return text, not any(f.is_error for f in plan.findings)


def annotations(plan: Plan, config_error: str | None = None) -> list[Annotation]:
    """One annotation per finding, at its line and column; errors first."""
    found = sorted(plan.findings, key=lambda f: (not f.is_error, f.path, f.line, f.column))
    result = [_annotation(f) for f in found]
    if config_error:
        result.insert(0, Annotation(CONFIG_PATH, 1, 1, "failure", config_error, "settings"))
    return result


def _annotation(finding: Finding) -> Annotation:
    level = _LEVELS.get(finding.severity, "notice")
    return Annotation(
        finding.path, finding.line, finding.column, level, finding.message, finding.code
    )


def _changed(
    repo: RepositoryGateway, recorded: RepoConfig, base: str, head: str
) -> _Changes | None:
    """The head's specs to read (a YAML file, or a spec-kit or Kiro folder any file of
    which changed) and the YAML specs it deletes; None when it touches neither a spec
    nor the settings. New settings apply to every spec, as a push's do."""
    present, removed = repo.changed_files(base, head)
    config, error = recorded, None
    touched_config = CONFIG_PATH in present or CONFIG_PATH in removed
    if touched_config:
        config, error = parse_repo_config(repo.read_file(CONFIG_PATH, head))
    specs = {config.spec_of(p) for p in present}
    gone = {config.spec_of(p) for p in removed}
    specs |= {p for p in gone if p is not None and p.endswith("/")}  # read: gone if all are
    specs.discard(None)
    gone = gone - specs - {None}
    if not (specs or gone or touched_config):
        return None
    if touched_config:
        specs |= set(spec_paths_at(repo, config, head))
    return _Changes(sorted(specs), sorted(gone), config, error)  # type: ignore[arg-type]


def _run_to_complete(checks: ChecksGateway, target: CheckTarget) -> CheckRun | None:
    """The run to complete: a new one, or one left in progress; None when already done."""
    if not target.rerun:
        runs = checks.runs_for(target.head_sha, CHECK_NAME)
        if any(run.status == "completed" for run in runs):
            return None
        unfinished = next(iter(runs), None)
        if unfinished is not None:
            return unfinished
    return checks.start(
        CHECK_NAME, target.head_sha, "Checking spec files", "Validating the spec files…"
    )


def _notes(target: CheckTarget, default_branch: str, config_error: str | None) -> list[str]:
    notes = [f"Against what specbridge last synced from `{default_branch}`."]
    if target.base_ref is not None and target.base_ref != default_branch:
        notes.append(
            f"This merges into `{target.base_ref}`: specbridge syncs only `{default_branch}`, "
            "so the merge changes no issue. The spec files are validated."
        )
    if config_error:
        notes.append(f"`{CONFIG_PATH}` is invalid: {config_error}")
    return notes
