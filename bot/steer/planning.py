"""People steering a spec's planning (bot/agents/planning.py): an idea started by
`/specify` or its label, continued after questions, the next phase asked for with
`/plan` and `/tasks`, a planning pull request revised. The callers checked that the
person has write access; each function answers in the words of a reply."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from bot.agents.planning import (
    LIVE,
    RUN_OVERHEAD_SECONDS,
    describe,
    latest_run,
    planner_of,
    queue_run,
    revisions_of,
    run_of_pull_request,
    run_of_spec,
)
from bot.github import RepositoryGateway
from bot.locks import spec_lock
from bot.repo_config import CONFIG_PATH, RepoConfig, parse_repo_config
from bot.settings import Settings, SettingsError
from storage.models import PlanningRun, PlanningStatus, Repository, Spec, SpecPhase

IDEA_LABEL = "specbridge: idea"


def idea_of(
    session: Session, repository_id: int, number: int, on_pull_request: bool
) -> PlanningRun | None:
    """The planning run an issue (an idea) or a pull request (a planner's) is about."""
    if on_pull_request:
        return run_of_pull_request(session, repository_id, number)
    return latest_run(session, repository_id, number)


def idea_lock(full_name: str, issue_number: int) -> str:
    """Held while an idea's commands run: two at once would queue two runs."""
    return spec_lock(full_name, f"idea#{issue_number}")


def repository_config(
    session: Session, repo: RepositoryGateway, repository: Repository
) -> RepoConfig:
    """The settings on the default branch as they are now (an idea may come before any sync)."""
    branch = repository.default_branch
    session.commit()
    config, _ = parse_repo_config(repo.read_file(CONFIG_PATH, branch))
    return config


def start_idea(
    session: Session,
    settings: Settings,
    repo: RepositoryGateway,
    repository: Repository,
    number: int,
    user: str,
    idea: str,
) -> str:
    """The requirements of a new spec, for the idea of issue #number."""
    running = latest_run(session, repository.id, number)
    if running is not None and _dropped(session, repo, running):
        running.status = PlanningStatus.CANCELLED  # its pull request was closed unmerged
        session.commit()
    if running is not None and running.status not in (
        PlanningStatus.FAILED,
        PlanningStatus.CANCELLED,
    ):
        return f"This idea is being planned already. {describe(running)}"
    config = repository_config(session, repo, repository)
    profile = planner_of(settings, config)
    run = queue_run(
        session,
        settings,
        repository,
        number,
        phase="requirements",
        agent=profile.name,
        asked_by=user,
        idea=idea,
    )
    return (
        f"Planning run {run.id} is queued: the planner `{profile.name}` explores the "
        f"repository and writes this idea's requirements ({config.formats[0]} format) in a "
        "pull request."
    )


def continue_idea(
    session: Session, settings: Settings, repo: RepositoryGateway, run: PlanningRun, user: str
) -> str:
    """The same phase again, after the planner's questions were answered, or after it
    failed (or its worker was lost: it ran past its timeout)."""
    config = repository_config(session, repo, run.repository)
    profile = planner_of(settings, config)
    if run.status in LIVE and _lost(run, profile.timeout + RUN_OVERHEAD_SECONDS):
        run.status, run.error = PlanningStatus.FAILED, "its worker was lost"
        session.commit()
    if run.status not in (PlanningStatus.ASKING, PlanningStatus.FAILED):
        return f"Nothing to continue. {describe(run)}"
    again = queue_run(
        session,
        settings,
        run.repository,
        run.issue_number,
        phase=run.phase.value,
        agent=profile.name,
        asked_by=user,
        follows=run,
        review=run.review,
        revise=run.pull_request_number is not None,
    )
    return (
        f"Planning run {again.id} is queued: the planner `{profile.name}` writes the "
        f"{run.phase} again, with what was said here."
    )


def plan_next(
    session: Session,
    settings: Settings,
    repo: RepositoryGateway,
    spec: Spec,
    phase: str,
    user: str,
) -> str:
    """The design (after the requirements merged) or the tasks (after the design)."""
    before = {"design": SpecPhase.REQUIREMENTS, "tasks": SpecPhase.DESIGN}[phase]
    if spec.phase is not before:
        now = spec.phase.value if spec.phase else "none"
        return (
            f"Nothing runs: the {phase} follow the {before.value}, and `{spec.path}` is at "
            f"phase `{now}`."
        )
    run = run_of_spec(session, spec)
    if (
        run is not None
        and run.phase.value == phase
        and run.status in (*LIVE, PlanningStatus.OPENED)
    ):
        return f"The {phase} are under way already. {describe(run)}"
    if run is None:
        return f"Nothing runs: `{spec.path}` was not written by the planner from an idea."
    config = repository_config(session, repo, spec.repository)
    profile = planner_of(settings, config)
    queued = queue_run(
        session,
        settings,
        spec.repository,
        run.issue_number,
        phase=phase,
        agent=profile.name,
        asked_by=user,
        follows=run,
    )
    return (
        f"Planning run {queued.id} is queued: the planner `{profile.name}` writes the {phase} "
        f"of `{spec.path}` in a pull request."
    )


def revise(
    session: Session, settings: Settings, repo: RepositoryGateway, run: PlanningRun, request: str
) -> str:
    """Run the planner again on its pull request's branch, told `request`."""
    if run.status in LIVE:
        return f"Nothing runs: the planner is at work already. {describe(run)}"
    if run.pull_request_number is None:
        return "Nothing runs: this planning run opened no pull request."
    try:
        profile = planner_of(settings, repository_config(session, repo, run.repository))
    except SettingsError as error:
        return f"Nothing runs: {error}."
    done = revisions_of(session, run)
    if done >= profile.max_revisions:
        return (
            f"Nothing runs: #{run.pull_request_number} was revised {done} times already, the "
            f"most the profile `{profile.name}` allows (`max_revisions: {profile.max_revisions}`)."
        )
    number = run.pull_request_number
    session.commit()
    state = repo.pull_request_state(number)
    if state != "open":
        return f"Nothing runs: #{number} is {state}."
    again = queue_run(
        session,
        settings,
        run.repository,
        run.issue_number,
        phase=run.phase.value,
        agent=profile.name,
        asked_by=run.asked_by,
        follows=run,
        review=request,
        revise=True,
    )
    return (
        f"Planning run {again.id} is queued: the planner `{profile.name}` revises #{number} "
        f"(revision {again.revision} of {profile.max_revisions})."
    )


def _dropped(session: Session, repo: RepositoryGateway, run: PlanningRun) -> bool:
    """Whether the run's requirements pull request was closed without a merge."""
    if run.status is not PlanningStatus.OPENED or run.phase is not SpecPhase.REQUIREMENTS:
        return False
    assert run.pull_request_number is not None
    number = run.pull_request_number
    session.commit()
    return repo.pull_request_state(number) == "closed"


def _lost(run: PlanningRun, seconds: int) -> bool:
    """Whether a queued or running run has been at it longer than any run may take."""
    since = run.started_at or run.created_at
    if since.tzinfo is None:  # SQLite keeps no time zone
        since = since.replace(tzinfo=UTC)
    return datetime.now(UTC) - since > timedelta(seconds=seconds)
