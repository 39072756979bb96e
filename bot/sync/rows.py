"""Spec file → rows: the spec, its requirements and its tasks, upserted by their
natural keys. Nothing here talks to GitHub."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import PurePosixPath

from sqlalchemy import select
from sqlalchemy.orm import Session

from specs.model import Finding
from specs.model import Spec as SpecFile
from storage.models import (
    Repository,
    Spec,
    SpecAcceptanceCriterion,
    SpecPhase,
    SpecRequirement,
    SpecStatus,
    SpecTask,
    SpecVersion,
)


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
    added, removed, changed = _record_tasks(session, spec, spec_file, commit)
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


def record_invalid(
    session: Session, repository: Repository, path: str, commit: str, findings: list[Finding]
) -> bool:
    """Keep the findings of a file that does not validate; False when they were known already."""
    spec = session.scalars(
        select(Spec).where(Spec.repository_id == repository.id, Spec.path == path)
    ).first()
    if spec is None:
        # Cut to their columns: a file name or path past them is still a spec refused.
        key = PurePosixPath(path).stem[: Spec.__table__.c.key.type.length]
        title = path[: Spec.__table__.c.title.type.length]
        spec = Spec(
            repository=repository, key=key, path=path, title=title, status=SpecStatus.INVALID
        )
        session.add(spec)
    findings_json = findings_as_json(findings)
    already_known = spec.findings_commit == commit and spec.findings == findings_json
    spec.findings, spec.findings_commit = findings_json, commit
    return not already_known


def findings_as_json(findings: list[Finding]) -> list[dict[str, object]]:
    return [
        {
            "path": f.path,
            "line": f.line,
            "column": f.column,
            "severity": f.severity,
            "code": f.code,
            "message": f.message,
        }
        for f in findings
    ]


def cancel_spec(spec: Spec) -> None:
    """The spec's file was deleted: every task goes, and the spec is cancelled."""
    now = datetime.now(UTC)
    for task in spec.tasks:
        task.removed_at = task.removed_at or now
    spec.status = SpecStatus.CANCELLED


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
            criterion_row.text = criterion.text
            criterion_row.position, criterion_row.removed_at = index, None
            session.add(criterion_row)
        for gone in criteria.values():
            gone.removed_at = gone.removed_at or now
    for gone in rows.values():
        gone.removed_at = gone.removed_at or now


def _record_tasks(
    session: Session, spec: Spec, spec_file: SpecFile, commit: str
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
            "files": list(task.files) or None,
            "parallel": task.parallel,
            "attempts": task.attempts,
            "pick": task.pick,
        }
        if row is None or row.removed_at is not None:
            added.append(task.id)
            row = row or SpecTask(spec=spec, key=task.id)
            row.changed_commit = commit
        elif any(getattr(row, name) != value for name, value in values.items()):
            changed.append(task.id)
            row.changed_commit = commit
        for name, value in values.items():
            setattr(row, name, value)
        row.position, row.removed_at = position, None
        session.add(row)
    removed = [row.key for row in rows.values() if row.removed_at is None]
    for row in rows.values():
        row.removed_at = row.removed_at or datetime.now(UTC)
    return added, removed, changed
