"""The bridge: spec files → rows → issues on GitHub, on the board, under a tracking issue.

Every step compares what GitHub should show with what was last written
(content hashes, recorded ids), so syncing the same spec at the same commit
twice makes no GitHub write the second time. Each issue is recorded the
moment it is created, and carries a hidden marker, so a crash in between is
healed by finding the marker rather than creating a duplicate.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import render
from bot.agents.profiles import load_profiles
from bot.github import Board, BoardGateway, Issue, RepositoryGateway
from bot.github.projects import BoardNotFound, NewTicketLink
from bot.locks import exclusive, spec_lock
from bot.progress import refresh_progress
from bot.repo_config import CONFIG_PATH, RepoConfig, parse_repo_config
from bot.scheduler import schedule_spec
from bot.settings import Settings
from specs.model import Finding
from specs.model import Spec as SpecFile
from specs.validate import validate_files
from storage.models import (
    Approval,
    IssueState,
    Repository,
    Spec,
    SpecAcceptanceCriterion,
    SpecPhase,
    SpecRequirement,
    SpecStatus,
    SpecTask,
    SpecVersion,
    Ticket,
    TicketDependency,
)

log = logging.getLogger(__name__)


class SyncFailed(RuntimeError):
    """Some spec files could not be synced; the others were."""


@dataclass
class GitHubSide:
    """The gateways and settings one repository's sync talks to."""

    repo: RepositoryGateway
    boards: BoardGateway
    config: RepoConfig


@dataclass
class SyncReport:
    synced: list[str] = field(default_factory=list)
    invalid: dict[str, list[Finding]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    cancelled: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"synced {path}" for path in self.synced]
        lines += [f"cancelled {path} (file removed)" for path in self.cancelled]
        for path, findings in self.invalid.items():
            lines.append(f"invalid {path}:")
            lines += [
                f"  {f.path}:{f.line}:{f.column}: {f.severity}[{f.code}]: {f.message}"
                for f in findings
            ]
        lines += [f"failed {path}: {error}" for path, error in self.failed.items()]
        return "\n".join(lines) or "nothing to sync"


# -- entry points ----------------------------------------------------------------------


def read_repo_config(repo: RepositoryGateway, repository: Repository, ref: str) -> RepoConfig:
    config, error = parse_repo_config(repo.read_file(CONFIG_PATH, ref))
    repository.settings = config.as_dict()
    repository.settings_error = error
    return config


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
    """Sync the spec files changed at commit; one bad file never stops the others."""
    report = SyncReport()
    contents = {path: github.repo.read_file(path, commit) for path in changed}
    removed = [*removed, *(path for path, text in contents.items() if text is None)]
    # With the operator's profiles known, an unknown `agent:` is a finding on the spec.
    known_agents = set(load_profiles(settings)) or None
    loaded = validate_files({p: t for p, t in contents.items() if t is not None}, known_agents)
    for path, (spec_file, findings) in loaded.items():
        if spec_file is None:
            report.invalid[path] = findings
            _record_invalid(
                session, repository, path, commit, findings, github, report_invalid_on_commit
            )
            continue
        try:
            sync_spec(
                session, settings, github, repository, spec_file, commit, _hash(contents[path])
            )
            report.synced.append(path)
        except Exception as error:
            log.exception("sync of %s in %s failed", path, repository.full_name)
            session.rollback()
            report.failed[path] = f"{type(error).__name__}: {error}"
    for path in removed:
        if cancel_spec_at(session, settings, github, repository, path):
            report.cancelled.append(path)
    if report.failed:
        raise SyncFailed(str(report))
    return report


def sync_spec(
    session: Session,
    settings: Settings,
    github: GitHubSide,
    repository: Repository,
    spec_file: SpecFile,
    commit: str,
    file_hash: str,
) -> Spec:
    """Sync one valid spec; serialized per spec across every worker."""
    with exclusive(settings, spec_lock(repository.full_name, spec_file.id)):
        spec, returning = record_spec(session, repository, spec_file, commit, file_hash)
        session.commit()
        if spec.phase is not SpecPhase.TASKS:
            return spec
        _TicketSync(session, github, spec, returning).run()
        refresh_progress(session, spec, github.repo)
        session.commit()
        schedule_spec(session, settings, spec, github.repo)
        return spec


def cancel_spec_at(
    session: Session, settings: Settings, github: GitHubSide, repository: Repository, path: str
) -> bool:
    """The spec file was deleted: close its open issues as not planned."""
    spec = session.scalars(
        select(Spec).where(Spec.repository_id == repository.id, Spec.path == path)
    ).first()
    if spec is None or spec.status is SpecStatus.CANCELLED:
        return False
    with exclusive(settings, spec_lock(repository.full_name, spec.key)):
        for task in spec.tasks:
            if task.removed_at is None:
                task.removed_at = datetime.now(UTC)
        spec.status = SpecStatus.CANCELLED
        _TicketSync(session, github, spec).close_removed()
        if spec.tracking_issue_number is not None and not spec.tracking_issue_closed:
            github.repo.comment_on_issue(
                spec.tracking_issue_number, f"`{path}` was deleted, so this spec is cancelled."
            )
            github.repo.close_issue(spec.tracking_issue_number, "not_planned")
            spec.tracking_issue_closed = True
        session.commit()
    return True


# -- rows ------------------------------------------------------------------------------


def record_spec(
    session: Session, repository: Repository, spec_file: SpecFile, commit: str, file_hash: str
) -> tuple[Spec, set[str]]:
    """Upsert the spec and its requirements and tasks by their natural keys.

    Returns the spec and the keys of tasks that were added (or added back).
    """
    spec = _spec_row(session, repository, spec_file.id, spec_file.path)
    spec.path = spec_file.path
    spec.title = spec_file.title
    spec.phase = SpecPhase(spec_file.phase)
    spec.owner = spec_file.owner
    spec.labels = list(spec_file.labels)
    spec.approval_required = spec_file.approval == "required"
    spec.agent = spec_file.agent
    spec.context = spec_file.context
    spec.design = spec_file.design
    spec.findings = []
    spec.findings_commit = None
    if spec.status in (SpecStatus.INVALID, SpecStatus.CANCELLED) or spec.id is None:
        spec.status = SpecStatus.DRAFT
    _record_requirements(session, spec, spec_file)
    added, removed, changed = _record_tasks(session, spec, spec_file)
    if spec.content_hash != file_hash:
        version = session.scalars(
            select(SpecVersion).where(
                SpecVersion.spec_id == spec.id, SpecVersion.commit_sha == commit
            )
        ).first()
        if version is None:
            session.add(
                SpecVersion(
                    spec=spec,
                    commit_sha=commit,
                    content_hash=file_hash,
                    tasks_added=added,
                    tasks_removed=removed,
                    tasks_changed=changed,
                )
            )
    spec.source_commit = commit
    spec.content_hash = file_hash
    session.flush()
    return spec, set(added)


def _spec_row(session: Session, repository: Repository, key: str, path: str) -> Spec:
    by_key = select(Spec).where(Spec.repository_id == repository.id, Spec.key == key)
    spec = session.scalars(by_key).first()
    if spec is None:
        # A file that never loaded was recorded under its path; it becomes this spec.
        by_path = select(Spec).where(
            Spec.repository_id == repository.id,
            Spec.path == path,
            Spec.status == SpecStatus.INVALID,
        )
        spec = session.scalars(by_path).first()
    if spec is None:
        spec = Spec(repository=repository, key=key, path=path, title=key, status=SpecStatus.DRAFT)
        session.add(spec)
    spec.key = key
    session.flush()
    return spec


def _record_requirements(session: Session, spec: Spec, spec_file: SpecFile) -> None:
    rows = {r.key: r for r in spec.requirements}
    now = datetime.now(UTC)
    for position, requirement in enumerate(spec_file.requirements):
        row = rows.pop(requirement.id, None) or SpecRequirement(spec=spec, key=requirement.id)
        row.text, row.position, row.removed_at = requirement.text, position, None
        session.add(row)
        criteria = {c.key: c for c in row.acceptance_criteria}
        for index, criterion in enumerate(requirement.acceptance):
            criterion_row = criteria.pop(criterion.id, None) or SpecAcceptanceCriterion(
                requirement=row, key=criterion.id
            )
            criterion_row.text, criterion_row.position, criterion_row.removed_at = (
                criterion.text,
                index,
                None,
            )
            session.add(criterion_row)
        for gone in criteria.values():
            gone.removed_at = gone.removed_at or now
    for gone in rows.values():
        gone.removed_at = gone.removed_at or now


def _record_tasks(
    session: Session, spec: Spec, spec_file: SpecFile
) -> tuple[list[str], list[str], list[str]]:
    rows = {t.key: t for t in spec.tasks}
    added, changed = [], []
    for position, task in enumerate(spec_file.tasks):
        row = rows.pop(task.id, None)
        values = {
            "title": task.title,
            "description": task.description,
            "priority": task.priority,
            "requirement_keys": list(task.requirements),
            "depends_on": list(task.depends_on),
            "agent": task.agent,
        }
        if row is None or row.removed_at is not None:
            added.append(task.id)
            row = row or SpecTask(spec=spec, key=task.id)
        elif any(getattr(row, name) != value for name, value in values.items()):
            changed.append(task.id)
        for name, value in values.items():
            setattr(row, name, value)
        row.position, row.removed_at = position, None
        session.add(row)
    removed = [row.key for row in rows.values() if row.removed_at is None]
    for row in rows.values():
        row.removed_at = row.removed_at or datetime.now(UTC)
    return added, removed, changed


def _record_invalid(
    session: Session,
    repository: Repository,
    path: str,
    commit: str,
    findings: list[Finding],
    github: GitHubSide,
    report_on_commit: bool,
) -> None:
    spec = session.scalars(
        select(Spec).where(Spec.repository_id == repository.id, Spec.path == path)
    ).first()
    if spec is None:
        key = PurePosixPath(path).stem
        spec = Spec(
            repository=repository, key=key, path=path, title=path, status=SpecStatus.INVALID
        )
        session.add(spec)
    findings_json = [
        {
            "line": f.line,
            "column": f.column,
            "severity": f.severity,
            "code": f.code,
            "message": f.message,
        }
        for f in findings
    ]
    already_reported = spec.findings_commit == commit and spec.findings == findings_json
    spec.findings, spec.findings_commit = findings_json, commit
    session.commit()
    if report_on_commit and not already_reported:
        github.repo.comment_on_commit(commit, render.invalid_spec_comment(path, findings_json))


def _hash(text: bytes | None) -> str:
    return hashlib.sha256(text or b"").hexdigest()


# -- tickets on GitHub -----------------------------------------------------------------


class _TicketSync:
    """Brings one spec's issues, board items and tracking issue in line with its rows."""

    def __init__(
        self, session: Session, github: GitHubSide, spec: Spec, returning: set[str] = frozenset()
    ) -> None:
        self.session = session
        self.github = github
        self.spec = spec
        self.returning = returning  # tasks added back after a removal
        self._marked: dict[tuple[str, str | None], Issue] | None = None

    def run(self) -> None:
        tasks = _in_dependency_order([t for t in self.spec.tasks if t.removed_at is None])
        for task in tasks:
            self._sync_ticket(task)
        self.close_removed()
        self._sync_tracking_issue(tasks)
        self._link_new_tickets()

    def _sync_ticket(self, task: SpecTask) -> None:
        dependencies = self._dependency_tickets(task)
        title = render.ticket_title(task)
        body = render.ticket_body(self.spec, task, dependencies)
        labels = render.ticket_labels(self.spec, task)
        wanted = render.content_hash(title, body, labels)
        ticket = task.ticket
        if ticket is None:
            issue = self._marked_issue(task.key)
            if issue is None:
                issue = self.github.repo.create_issue(title, body, labels)
            ticket = self._record_ticket(task, issue)
        if ticket.content_hash != wanted:
            self.github.repo.update_issue(
                ticket.issue_number, title=title, body=body, labels=labels
            )
            ticket.content_hash = wanted
        if task.key in self.returning and ticket.state_reason == "not_planned":
            # The task came back to the spec: so does its issue.
            self.github.repo.reopen_issue(ticket.issue_number)
            ticket.state, ticket.state_reason, ticket.closed_at = IssueState.OPEN, None, None
        self._record_dependencies(ticket, dependencies)
        self.session.commit()

    def _record_ticket(self, task: SpecTask, issue: Issue) -> Ticket:
        ticket = Ticket(
            repository_id=self.spec.repository_id,
            spec=self.spec,
            spec_task=task,
            issue_number=issue.number,
            issue_id=issue.id,
            issue_node_id=issue.node_id,
            content_hash=render.content_hash(issue.title, issue.body, issue.labels),
            state=IssueState(issue.state),
            state_reason=issue.state_reason,
            approval=Approval.PENDING if self.spec.approval_required else Approval.NOT_REQUIRED,
        )
        self.session.add(ticket)
        # Recorded at once: a crash after this line cannot lose the issue.
        self.session.commit()
        return ticket

    def _dependency_tickets(self, task: SpecTask) -> list[Ticket]:
        by_key = {t.key: t for t in self.spec.tasks if t.removed_at is None}
        return [
            by_key[key].ticket for key in task.depends_on if key in by_key and by_key[key].ticket
        ]

    def _record_dependencies(self, ticket: Ticket, dependencies: list[Ticket]) -> None:
        """Dependency rows, and GitHub's "blocked by" relationship, as the spec says."""
        wanted = {d.id: d for d in dependencies}
        for row in list(ticket.dependencies):
            if row.depends_on_id not in wanted:
                if row.on_github and row.depends_on.issue_id is not None:
                    self.github.repo.remove_blocked_by(ticket.issue_number, row.depends_on.issue_id)
                ticket.dependencies.remove(row)
                self.session.delete(row)
        recorded = {row.depends_on_id for row in ticket.dependencies}
        for depends_on_id, depends_on in wanted.items():
            if depends_on_id not in recorded:
                ticket.dependencies.append(TicketDependency(depends_on=depends_on))
        for row in ticket.dependencies:
            if not row.on_github and row.depends_on.issue_id is not None:
                self.github.repo.add_blocked_by(ticket.issue_number, row.depends_on.issue_id)
                row.on_github = True
                self.session.commit()

    def close_removed(self) -> None:
        for task in self.spec.tasks:
            ticket = task.ticket
            if task.removed_at is None or ticket is None or ticket.state is not IssueState.OPEN:
                continue
            self.github.repo.comment_on_issue(
                ticket.issue_number, render.removed_task_comment(task)
            )
            self.github.repo.close_issue(ticket.issue_number, "not_planned")
            ticket.state, ticket.state_reason = IssueState.CLOSED, "not_planned"
            ticket.closed_at = datetime.now(UTC)
            self.session.commit()

    def _sync_tracking_issue(self, tasks: list[SpecTask]) -> None:
        spec = self.spec
        listed = [(task, task.ticket) for task in tasks if task.ticket is not None]
        title = render.tracking_title(spec)
        body = render.tracking_body(spec, listed)
        labels = render.tracking_labels(spec)
        wanted = render.content_hash(title, body, labels)
        if spec.tracking_issue_number is None:
            issue = self._marked_issue(None)
            if issue is None:
                assignees = [spec.owner] if spec.owner else None
                issue = self.github.repo.create_issue(title, body, labels, assignees)
            spec.tracking_issue_number, spec.tracking_issue_node_id = issue.number, issue.node_id
            spec.tracking_issue_hash = render.content_hash(issue.title, issue.body, issue.labels)
            spec.tracking_issue_closed = issue.state == "closed"
            self.session.commit()
        if spec.tracking_issue_hash != wanted:
            self.github.repo.update_issue(
                spec.tracking_issue_number, title=title, body=body, labels=labels
            )
            spec.tracking_issue_hash = wanted
            self.session.commit()

    def _link_new_tickets(self) -> None:
        config = self.github.config
        pending = [
            t
            for t in self.spec.tickets
            if t.state is not IssueState.DELETED
            and (not t.parent_linked or (config.has_board and t.project_item_id is None))
        ]
        if not pending:
            return
        board = self._board() if config.has_board else None
        links = [
            NewTicketLink(
                issue_node_id=t.issue_node_id or "",
                add_to_board=board is not None and t.project_item_id is None,
                parent_node_id=None if t.parent_linked else self.spec.tracking_issue_node_id,
            )
            for t in pending
        ]
        item_ids = self.github.boards.link_new_tickets(board, links)
        for ticket in pending:
            ticket.parent_linked = True
        self.session.commit()
        if board is None:
            return
        # Recorded only once its Status is set, so a crash in between sets it on retry.
        added = [(t, item) for t, item in zip(pending, item_ids, strict=True) if item]
        self.github.boards.set_status(board, [item for _, item in added], config.status["backlog"])
        for ticket, item_id in added:
            ticket.project_item_id = item_id
        self.session.commit()

    def _board(self) -> Board | None:
        config = self.github.config
        assert config.project_owner is not None and config.project_number is not None
        try:
            return self.github.boards.find_board(config.project_owner, config.project_number)
        except BoardNotFound as error:
            log.warning(
                "%s: %s; issues are created without a board", self.spec.repository.full_name, error
            )
            self.spec.repository.settings_error = f"{CONFIG_PATH}: {error}"
            return None

    def _marked_issue(self, task_key: str | None) -> Issue | None:
        """An issue created earlier for this spec and task, found by its marker."""
        if self._marked is None:
            self._marked = {}
            for issue in self.github.repo.issues_with_label(render.LABEL):
                found = render.parse_marker(issue.body)
                if found is not None:
                    self._marked.setdefault(found, issue)
        return self._marked.get((self.spec.key, task_key))


def _in_dependency_order(tasks: list[SpecTask]) -> list[SpecTask]:
    """Dependencies first, so their issue numbers exist when a dependant is written."""
    by_key = {t.key: t for t in tasks}
    ordered: list[SpecTask] = []
    seen: set[str] = set()

    def visit(task: SpecTask) -> None:
        if task.key in seen:
            return
        seen.add(task.key)
        for key in task.depends_on:
            if key in by_key:
                visit(by_key[key])
        ordered.append(task)

    for task in tasks:
        visit(task)
    return ordered


def sync_repository_by_hand(settings: Settings, full_name: str, ref: str | None) -> SyncReport:
    """`specbridge sync`: every spec file of the repository at ref, as a push would."""
    from bot.github import github_client, installation_id_for
    from bot.repositories import record_repository
    from storage.db import session_scope

    client = github_client(settings, installation_id_for(settings, full_name))
    repo = RepositoryGateway(client, full_name)
    with session_scope(settings.database_url) as session:
        default_branch = repo.default_branch()
        repository = record_repository(
            session, {"full_name": full_name, "default_branch": default_branch}
        )
        commit = repo.commit_sha(ref or default_branch)
        config = read_repo_config(repo, repository, commit)
        paths = [p for p in repo.list_files(config.specs_path, commit) if config.is_spec_path(p)]
        github = GitHubSide(repo, BoardGateway(client), config)
        return sync_files(
            session, settings, github, repository, commit, paths, report_invalid_on_commit=False
        )
