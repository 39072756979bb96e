"""The sync's entry points: `sync_files` for a push, `sync_repository` for every spec
of a repository (by hand, or when the App is installed), `resume_spec` for a sync
that paused. One bad file never stops the others.

In a queue job a sync never holds its worker long: when GitHub's pace or
budget asks for more than a short wait, or interactive work waits for the
worker, it stops where everything written is recorded and queues its own
continuation (`resume_spec`) on the bulk queue (bot/github/pacing.py,
`yielding`). Only a pause for a window longer than the minute (GitHub's
hourly budget) is said on the tracking issue.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.agents.planning import phase_merged
from bot.agents.profiles import load_profiles
from bot.agents.scheduler import schedule_spec
from bot.counters import observe_sync
from bot.github import BoardGateway, RepositoryGateway, github_client
from bot.github.pacing import BudgetExhausted, GaveWay, Paused, Yielding, yielding
from bot.locks import SlotBusy, bulk_slot, exclusive, settings_lock, spec_lock
from bot.logs import log_context
from bot.repo_config import CONFIG_PATH, RepoConfig, parse_repo_config
from bot.settings import Settings
from bot.sync import render
from bot.sync.commit_files import read_at_commit
from bot.sync.github_side import GitHubSide, github_side_for
from bot.sync.progress import refresh_progress
from bot.sync.rows import cancel_spec, findings_as_json, record_invalid, record_spec
from bot.sync.writer import SpecWriter
from specs.model import Finding
from specs.model import Spec as SpecFile
from specs.sources import spec_files
from specs.validate import validate_files
from storage.models import Repository, Spec, SpecPhase, SpecStatus

log = logging.getLogger(__name__)

# A continuation whose installation runs another bulk job tries again this much later.
SLOT_BUSY_DELAY = 3
# A continuation is queued this much before room comes (less than the bulk inline wait).
RESUME_LEAD_SECONDS = 1.5


class SyncFailed(RuntimeError):
    """Some spec files could not be synced; the others were."""


@dataclass
class SyncReport:
    synced: list[str] = field(default_factory=list)
    paused: dict[str, str] = field(default_factory=dict)
    invalid: dict[str, list[Finding]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    cancelled: list[str] = field(default_factory=list)
    commit: str | None = None  # the commit read (sync_repository)

    def __str__(self) -> str:
        lines = [f"synced {path}" for path in self.synced]
        lines += [f"paused {path}: {note}" for path, note in self.paused.items()]
        lines += [f"cancelled {path} (file removed)" for path in self.cancelled]
        for path, findings in self.invalid.items():
            lines.append(f"invalid {path}:")
            lines += [
                f"  {f.path}:{f.line}:{f.column}: {f.severity}[{f.code}]: {f.message}"
                for f in findings
            ]
        lines += [f"failed {path}: {error}" for path, error in self.failed.items()]
        return "\n".join(lines) or "nothing to sync"


def record_settings(
    session: Session,
    settings: Settings,
    repo: RepositoryGateway,
    repository: Repository,
    ref: str,
) -> tuple[str, RepoConfig]:
    """The commit `ref` names, and the repository's settings there, recorded and committed.

    The repository's lock is held from reading the commit to the commit of its settings:
    of two pushes close together, whichever records last read the newer head, so an
    older push's settings never replace a newer one's. Call it with no transaction open.
    """
    with exclusive(settings, settings_lock(repository.full_name)) as lease:
        commit = repo.commit_sha(ref)
        config, error = parse_repo_config(repo.read_file(CONFIG_PATH, commit))
        lease.check()
        repository.settings = config.as_dict()
        repository.settings_error = error
        session.commit()
    return commit, config


def sync_files(
    session: Session,
    settings: Settings,
    github: GitHubSide,
    repository: Repository,
    commit: str,
    changed: Sequence[str],
    removed: Sequence[str] = (),
    report_invalid_on_commit: bool = True,
) -> SyncReport:
    """Sync the specs changed at commit, by their paths (a YAML file, or a spec-kit or
    Kiro folder: every file of it is read); one bad spec never stops the others."""
    # Every line of the sync names the repository and commit (and a delivery's id, inside one).
    with log_context(repository=repository.full_name, commit=commit):
        args = (commit, changed, removed, report_invalid_on_commit)
        return _sync_files(session, settings, github, repository, *args)


def _sync_files(
    session: Session,
    settings: Settings,
    github: GitHubSide,
    repository: Repository,
    commit: str,
    changed: Sequence[str],
    removed: Sequence[str],
    report_invalid_on_commit: bool,
) -> SyncReport:
    report = SyncReport()
    session.commit()
    contents = read_specs(github.repo, changed, commit)
    # A spec none of whose files is left is deleted.
    removed = [*removed, *(path for path, files in contents.items() if not files)]
    # With the operator's profiles known, an unknown `agent:` is a finding on the spec.
    known_agents = set(load_profiles(settings)) or None
    present = {name: text for files in contents.values() for name, text in files.items()}
    loaded = validate_files(present, known_agents, github.config.formats)
    for path, (spec_file, findings) in loaded.items():
        if spec_file is None:
            report.invalid[path] = findings
            _report_invalid(
                session, github, repository, path, commit, findings, report_invalid_on_commit
            )
            continue
        try:
            paused = sync_spec(
                session, settings, github, repository, spec_file, commit, _digest(spec_file)
            )
            if paused:
                report.paused[path] = paused
            else:
                report.synced.append(path)
        except Exception as error:
            log.exception("sync of %s in %s failed", path, repository.full_name)
            session.rollback()
            report.failed[path] = f"{type(error).__name__}: {error}"
    for path in removed:
        if cancel_spec_at(session, settings, github, repository, path, commit):
            report.cancelled.append(path)
    if report.failed:
        raise SyncFailed(str(report))
    return report


def read_specs(
    repo: RepositoryGateway, spec_paths: Sequence[str], ref: str
) -> dict[str, dict[str, bytes]]:
    """Each spec's files at ref (those that exist), by the spec's path."""
    contents: dict[str, dict[str, bytes]] = {}
    for spec_path in dict.fromkeys(spec_paths):
        files = {name: read_at_commit(repo, name, ref) for name in spec_files(spec_path)}
        contents[spec_path] = {name: text for name, text in files.items() if text is not None}
    return contents


def spec_paths_at(repo: RepositoryGateway, config: RepoConfig, ref: str) -> list[str]:
    """Every spec of the repository at ref, in the formats the settings read: YAML files
    in specs_path and its subfolders, spec-kit and Kiro folders."""
    files = {path for root in config.spec_roots for path in repo.list_files(root, ref)}
    return sorted({spec for spec in map(config.spec_of, files) if spec is not None})


def sync_spec(
    session: Session,
    settings: Settings,
    github: GitHubSide,
    repository: Repository,
    spec_file: SpecFile,
    commit: str,
    file_hash: str,
) -> str | None:
    """Sync one valid spec, serialized per spec across every worker.

    `file_hash`: a digest of what the spec says (`_digest`). A new commit whose spec
    says the same (a tasks.md regenerated with the same ids, done marks written back)
    writes nothing to GitHub.

    Returns None when done, or why it paused (GitHub's content budget is spent;
    it resumes by itself).
    """
    with exclusive(settings, spec_lock(repository.full_name, spec_file.id)) as lease:
        if _older_than_recorded(session, github, repository, spec_file.id, commit):
            return None
        unchanged = _says_the_same(session, repository, spec_file.id, commit, file_hash)
        spec, returning = record_spec(session, repository, spec_file, commit, file_hash)
        spec.sync_note = None  # resume_at stays until the sync is done: it is unfinished work
        session.commit()
        phase_merged(session, settings, github.repo, spec)  # a planned phase: its idea's issue
        if spec.phase is not SpecPhase.TASKS or unchanged:
            return None
        continuing = spec.resume_at is not None and spec.sync_started_at is not None
        if not continuing:
            spec.sync_started_at, spec.sync_totals = datetime.now(UTC), {}
        writer = SpecWriter(session, settings, github, spec, lease)
        writer.continuing = continuing
        writes = github.repo.connection.writes

        def so_far() -> dict[str, int]:
            return _tally(spec, writer, github.repo.connection.writes - writes)

        try:
            with _bulk_waits(settings) as bulk:
                if bulk is not None and bulk.gave_way:
                    # This job has stopped for interactive work: the rest continues later.
                    raise GaveWay(time.time(), "an earlier spec of this job gave way")
                writer.short_requests = bulk is not None and _people_may_wait(settings)
                writer.run(returning, {task.id for task in spec_file.tasks if task.done})
        except Paused as paused:
            return _pause(session, settings, writer, paused, so_far())
        except Exception:
            _record_sync(settings, spec, so_far(), "failed")
            raise
        totals = so_far()
        spec.resume_at = None
        refresh_progress(session, spec, github.repo)
        writer.update_tracking_issue()
        schedule_spec(session, settings, spec, github.repo)
        _record_sync(settings, spec, totals, "done")
        spec.sync_started_at = spec.sync_totals = None
        session.commit()
        return None


def _says_the_same(
    session: Session, repository: Repository, key: str, commit: str, digest: str
) -> bool:
    """Whether a new commit's spec says what the recorded one said, and that one was
    synced completely: then there is nothing to write. The same commit again (`/sync`,
    a retried delivery) is synced in full, which repairs what GitHub refused before."""
    spec = session.scalars(
        select(Spec).where(Spec.repository_id == repository.id, Spec.key == key)
    ).first()
    return (
        spec is not None
        and spec.content_hash == digest
        and spec.source_commit != commit
        and spec.status not in (SpecStatus.INVALID, SpecStatus.CANCELLED)
        and spec.tracking_issue_number is not None
        and spec.resume_at is None
        and spec.creation_started_at is None
    )


def cancel_spec_at(
    session: Session,
    settings: Settings,
    github: GitHubSide,
    repository: Repository,
    path: str,
    commit: str,
) -> bool:
    """The spec file was deleted at commit: close its open issues as not planned."""
    spec = session.scalars(
        select(Spec).where(Spec.repository_id == repository.id, Spec.path == path)
    ).first()
    if spec is None or spec.status is SpecStatus.CANCELLED:
        return False
    with exclusive(settings, spec_lock(repository.full_name, spec.key)) as lease:
        if _older_than_recorded(session, github, repository, spec.key, commit):
            return False
        session.refresh(spec)
        cancel_spec(spec)
        spec.source_commit = commit
        SpecWriter(session, settings, github, spec, lease).close_removed()
        if spec.tracking_issue_number is not None and not spec.tracking_issue_closed:
            session.commit()
            github.repo.comment_on_issue(
                spec.tracking_issue_number, f"`{path}` was deleted, so this spec is cancelled."
            )
            github.repo.close_issue(spec.tracking_issue_number, "not_planned")
            spec.tracking_issue_closed = True
        session.commit()
    return True


def _older_than_recorded(
    session: Session, github: GitHubSide, repository: Repository, key: str, commit: str
) -> bool:
    """Whether the spec was recorded at a newer commit than this one (two pushes close
    together, or a late redelivery): then this sync is skipped, and logged.

    Asked under the spec's lock, so the newest commit always wins. History rewritten
    by a force push leaves the two diverged: then the branch's head decides.
    """
    recorded = session.scalar(
        select(Spec.source_commit).where(Spec.repository_id == repository.id, Spec.key == key)
    )
    if recorded is None or recorded == commit:
        return False
    session.commit()  # no transaction while GitHub answers
    status = github.repo.compare_commits(recorded, commit)
    stale = status == "behind" or (
        status == "diverged" and github.repo.commit_sha(repository.default_branch) != commit
    )
    if stale:
        log.info(
            "skipped %s of %s at %s: it is recorded at %s, a newer commit",
            key,
            repository.full_name,
            commit[:12],
            recorded[:12],
        )
    return stale


def sync_repository(
    settings: Settings,
    full_name: str,
    ref: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> SyncReport:
    """Every spec of the repository at ref (YAML files in specs_path and its subfolders,
    spec-kit and Kiro folders), as a push would (by hand, or on install); progress hears
    what it is doing, one line at a time."""
    from bot.github import repository_installation
    from bot.repositories import record_installation, record_repository
    from storage.db import session_scope

    say = progress or (lambda _line: None)

    installation = repository_installation(settings, full_name)
    connection = github_client(settings, installation["id"] if installation else None)
    repo = RepositoryGateway(connection, full_name)
    default_branch = repo.default_branch()
    with session_scope(settings.database_url) as session:
        # The installation it was read with is recorded, as a webhook's would be: the jobs
        # this sync queues (agents, write-back) authenticate with it.
        repository = record_repository(
            session,
            {"full_name": full_name, "default_branch": default_branch},
            record_installation(session, installation) if installation else None,
        )
        session.commit()
        commit, config = record_settings(session, settings, repo, repository, ref or default_branch)
        say(f"reading {', '.join(config.spec_roots)} in {full_name} at {commit[:7]}")
        paths = spec_paths_at(repo, config, commit)
        say(f"syncing {len(paths)} spec(s): {', '.join(paths) or 'none'}")
        github = GitHubSide(repo, BoardGateway(connection), config)
        report = sync_files(
            session, settings, github, repository, commit, paths, report_invalid_on_commit=False
        )
        report.commit = commit
        return report


def resume_spec(spec_pk: int) -> None:
    """The queue job that continues a paused sync, holding its installation's bulk slot
    (bot/locks.py); when another of its syncs holds it, it runs again a little later."""
    from bot.github.auth import pace_key
    from bot.settings import get_settings
    from storage.db import session_scope

    settings = get_settings()
    with session_scope(settings.database_url) as session:
        spec = session.get(Spec, spec_pk)
        if spec is None or spec.resume_at is None:
            return
        repository, path, commit = spec.repository, spec.path, spec.source_commit
        installation = repository.installation_github_id
        # The commit it paused at and the settings recorded: neither is read again (a
        # newer push syncs itself, and this one then finds its commit older, as any would).
        config = RepoConfig.from_dict(repository.settings)
        session.commit()
        try:
            with bulk_slot(settings, pace_key(settings, installation)):
                github = github_side_for(settings, repository, config)
                if commit is None:
                    commit, github.config = record_settings(
                        session, settings, github.repo, repository, repository.default_branch
                    )
                sync_files(
                    session,
                    settings,
                    github,
                    repository,
                    commit,
                    [path],
                    report_invalid_on_commit=False,
                )
        except SlotBusy:
            _put_off(session, settings, spec_pk)


def _put_off(session: Session, settings: Settings, spec_pk: int) -> None:
    """The continuation comes back SLOT_BUSY_DELAY later, as a pause of its own: its job
    is the one `resume_due_specs` looks for (`_resume_job`). Queued under no id, the chore
    could not see it and queued a second continuation, one more each time it ran while
    the installation's other sync held the slot."""
    from bot.queue import EVENTS, enqueue

    later = datetime.now(UTC) + timedelta(seconds=SLOT_BUSY_DELAY)
    moved = session.execute(
        update(Spec).where(Spec.id == spec_pk, Spec.resume_at.is_not(None)).values(resume_at=later)
    )
    session.commit()
    spec = session.get(Spec, spec_pk)
    if not moved.rowcount or spec is None:  # its sync ended meanwhile
        return
    enqueue(settings, EVENTS, resume_spec, spec_pk, job_id=_resume_job(spec), delay=SLOT_BUSY_DELAY)


@contextmanager
def _bulk_waits(settings: Settings) -> Iterator[Yielding | None]:
    """In a queue job: the job's writes wait as bulk work does (one policy per job, so
    once a sync has given way the job's other specs do too). Elsewhere: as they are."""
    from bot.queue import current_job, interactive_waiting

    job = current_job()
    if job is None:
        yield None
        return
    policy = job.shared.setdefault(
        "yielding", Yielding(wanted=lambda: interactive_waiting(settings))
    )
    with yielding(policy):
        yield policy


def _people_may_wait(settings: Settings) -> bool:
    """Whether interactive work may come to wait behind this job's requests: it runs
    beside them (with Redis; the embedded queue gives it a thread of its own) and came
    lately, or waits now."""
    from bot.queue import interactive_waiting, people_lately

    if settings.redis_url is None:
        return False
    return people_lately(settings) or interactive_waiting(settings)


def _pause(
    session: Session, settings: Settings, writer: SpecWriter, paused: Paused, totals: dict[str, int]
) -> str:
    """Stop for now and come back by itself; a long pause is said on the tracking issue.
    `totals`: what the sync's jobs did so far, this one's included."""
    from bot.queue import EVENTS, enqueue

    spec = writer.spec
    session.rollback()
    resume_at = datetime.fromtimestamp(paused.resume_at, UTC)
    spec.resume_at = resume_at
    spec.sync_totals = totals
    if paused.clean and not writer.refused:
        # Every issue created so far is recorded: the continuation need not look for any.
        spec.creation_started_at = None
    # Queued a little early: the continuation reads its spec first, then waits the rest.
    delay = max(paused.resume_at - time.time() - RESUME_LEAD_SECONDS, 0)
    # Said on the tracking issue (a write) only when a longer window than the minute is
    # spent (GitHub's hour): a minute's wait, or giving way, passes unseen.
    shortest = min((seconds for _, seconds in settings.github_content_limits), default=0)
    long_pause = isinstance(paused, BudgetExhausted) and paused.window.seconds > shortest
    if long_pause:
        assert isinstance(paused, BudgetExhausted)
        opened = sum(1 for t in spec.tasks if t.ticket is not None and t.removed_at is None)
        total = sum(1 for t in spec.tasks if t.removed_at is None)
        spec.sync_note = (
            f"{opened} of {total} issues are open so far. GitHub allows {paused.window.limit} "
            f"new items every {_duration(paused.window.seconds)}; the rest follow by themselves "
            f"from {resume_at:%H:%M} UTC."
        )
    session.commit()
    if long_pause:
        writer.update_tracking_issue()
    try:
        enqueue(settings, EVENTS, resume_spec, spec.id, job_id=_resume_job(spec), delay=delay)
    except Exception:  # the queue is down: the periodic chore queues it when it is due
        log.warning("could not queue the resumption of %s", spec.key, exc_info=True)
    note = spec.sync_note if long_pause else f"{paused}; continues from {resume_at:%H:%M:%S} UTC"
    log.info(
        "sync of %s paused: %s (job %d, %d writes so far)",
        spec.key,
        note,
        totals["jobs"],
        totals["writes"],
        extra={"spec": spec.key, "outcome": "paused", **totals},
    )
    return note or str(paused)


def resume_due_specs(settings: Settings) -> int:
    """The chore that queues paused syncs whose time has come (if their job was lost)."""
    from bot.queue import EVENTS, enqueue, pending
    from storage.db import session_scope

    with session_scope(settings.database_url) as session:
        due = {
            spec.id: _resume_job(spec)
            for spec in session.scalars(
                select(Spec).where(Spec.resume_at.is_not(None), Spec.resume_at <= datetime.now(UTC))
            )
        }
    waiting = pending(settings, EVENTS, due.values())
    lost = [pk for pk, job_id in due.items() if job_id not in waiting]
    for pk in lost:
        enqueue(settings, EVENTS, resume_spec, pk, job_id=due[pk])
    return len(lost)


def _resume_job(spec: Spec) -> str:
    """One job per pause: a sync that pauses again while resuming queues a new one."""
    assert spec.resume_at is not None
    return f"resume-{spec.id}-{int(spec.resume_at.timestamp() * 1000)}"


def _report_invalid(
    session: Session,
    github: GitHubSide,
    repository: Repository,
    path: str,
    commit: str,
    findings: list[Finding],
    on_commit: bool,
) -> None:
    new = record_invalid(session, repository, path, commit, findings)
    session.commit()
    errors = [f for f in findings if f.is_error]
    log.warning(
        "%s in %s at %s does not validate, not synced: %s",
        path,
        repository.full_name,
        commit[:7],
        "; ".join(f"line {f.line}: {f.message}" for f in (errors or findings)[:3])
        + (f" (and {len(findings) - 3} more)" if len(findings) > 3 else ""),
        extra={"path": path, "findings": len(findings), "outcome": "invalid"},
    )
    if on_commit and new:
        github.repo.comment_on_commit(
            commit, render.invalid_spec_comment(path, findings_as_json(findings))
        )


def _tally(spec: Spec, writer: SpecWriter, writes: int) -> dict[str, int]:
    """What the sync's jobs did so far: the earlier ones' (recorded) and this one's."""
    totals = dict(spec.sync_totals or {})
    for what in ("opened", "changed", "closed"):
        totals[what] = totals.get(what, 0) + writer.counts[what]
    totals["writes"] = totals.get("writes", 0) + writes
    totals["jobs"] = totals.get("jobs", 0) + 1
    return totals


def _record_sync(settings: Settings, spec: Spec, totals: dict[str, int], outcome: str) -> None:
    """The summary line of the whole sync (every job it took), and its duration from its
    first job's start for /metrics."""
    started = spec.sync_started_at
    if started is not None and started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    seconds = (datetime.now(UTC) - started).total_seconds() if started else 0.0
    observe_sync(settings, seconds)
    log.log(
        logging.INFO if outcome == "done" else logging.WARNING,
        ("synced %s" if outcome == "done" else "sync of %s failed")
        + ": %d opened, %d changed, %d closed, %d writes in %.1fs (%d job%s)",
        spec.key,
        totals["opened"],
        totals["changed"],
        totals["closed"],
        totals["writes"],
        seconds,
        totals["jobs"],
        "" if totals["jobs"] == 1 else "s",
        extra={
            "spec": spec.key,
            "repository": spec.repository.full_name,
            "outcome": outcome,
            **totals,
            "duration_ms": round(seconds * 1000, 1),
        },
    )


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return "hour" if seconds == 3600 else f"{seconds / 3600:g} hours"
    if seconds >= 60 and seconds % 60 == 0:
        return "minute" if seconds == 60 else f"{seconds / 60:g} minutes"
    return f"{seconds:g} seconds"


def _digest(spec_file: SpecFile) -> str:
    """What the spec says, done marks aside: the same for a file rewritten to say it again
    (a tasks.md regenerated, progress written back, a comment or a blank line)."""
    tasks = tuple(dataclasses.replace(task, done=False) for task in spec_file.tasks)
    said = dataclasses.replace(spec_file, tasks=tasks)
    return hashlib.sha256(repr(said).encode()).hexdigest()
