"""What a sync would do, worked out from rows and a spec file without writing
anything: the order new issues are created in (ready work first), and the
difference between the recorded spec and a new version of its file, which a
pull request's check shows as the plan of its merge (`plan_files`).

A plan holds plain values only, never rows: it is read in one transaction and
shown after that transaction has ended."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.sync.proposals import adoptions
from specs.model import MANUAL_AGENT, PRIORITIES, Finding
from specs.model import Spec as SpecFile
from specs.model import SpecTask as TaskFile
from specs.sources import FORMATS
from specs.validate import validate_files
from storage.models import IssueState, Spec, SpecRequirement, SpecTask, Ticket


def creation_order(new: Sequence[SpecTask], tickets: dict[str, Ticket]) -> list[SpecTask]:
    """New tasks in the order their issues are created: ready work first.

    A task is ready when none of its dependencies is open; the others follow
    their dependencies, so most issues can name theirs when they are created.
    """
    depth = _levels({task.key: task for task in new})

    def ready(task: SpecTask) -> bool:
        return all(_completed(tickets.get(key)) for key in task.depends_on)

    return sorted(
        new,
        key=lambda t: (depth[t.key], not ready(t), _priority_rank(t.priority), t.position),
    )


def _levels(by_key: dict[str, SpecTask]) -> dict[str, int]:
    """How many new tasks each waits on in a row (0: none). Iterative: a chain can be
    thousands long; a dependency met again on the path (a cycle) is not followed."""

    def waits_on(key: str) -> list[str]:
        return [k for k in by_key[key].depends_on if k in by_key]

    depth: dict[str, int] = {}
    for root in by_key:
        if root in depth:
            continue
        path, pending = [root], [iter(waits_on(root))]
        while pending:
            key = next(pending[-1], None)
            if key is None:
                done = path.pop()
                pending.pop()
                depth[done] = 1 + max((depth[k] for k in waits_on(done) if k in depth), default=-1)
            elif key not in depth and key not in path:
                path.append(key)
                pending.append(iter(waits_on(key)))
    return depth


def _completed(ticket: Ticket | None) -> bool:
    return (
        ticket is not None
        and ticket.state is IssueState.CLOSED
        and ticket.state_reason == "completed"
    )


def _priority_rank(priority: str) -> int:
    return PRIORITIES.index(priority) if priority in PRIORITIES else len(PRIORITIES)


@dataclass
class TaskChange:
    key: str
    title: str
    issue_number: int
    changes: list[str]  # what people see change: "title", "body", "labels", "dependencies"


@dataclass
class Renumbered:
    """A new task with the title of a task whose id goes (or gets another title): ids
    are a task's identity, so that issue closes (or is retitled) and a new one opens,
    unless the task keeps its old id."""

    old_key: str
    new_key: str
    issue_number: int
    title: str
    retitled: bool = False  # the old id stays, with another task's title; else it closes


@dataclass
class SpecDiff:
    """What merging a version of a spec file (or its deletion) would do to its issues."""

    path: str
    spec_id: str
    title: str
    produces_tickets: bool
    removed: bool = False  # the file is deleted: the spec is cancelled
    open_tracking_issue: bool = False
    open: list[TaskFile] = field(default_factory=list)
    # New tasks proposed from an issue on GitHub: that issue becomes the ticket.
    adopt: list[tuple[TaskFile, int]] = field(default_factory=list)  # (task, issue number)
    change: list[TaskChange] = field(default_factory=list)
    close: list[tuple[str, int]] = field(default_factory=list)  # (task key, issue number)
    reopen: list[tuple[str, int]] = field(default_factory=list)
    start_now: list[str] = field(default_factory=list)
    tracking_issue: int | None = None
    tasks: list[TaskFile] = field(default_factory=list)  # every task of the new version
    issue_numbers: dict[str, int] = field(default_factory=dict)  # task key → its issue
    renumbered: list[Renumbered] = field(default_factory=list)
    # New tasks ticked in the file: their issues close as completed once opened.
    done_at_once: list[str] = field(default_factory=list)

    @property
    def writes_anything(self) -> bool:
        return bool(
            self.open
            or self.adopt
            or self.change
            or self.close
            or self.reopen
            or self.open_tracking_issue
        )


@dataclass
class Plan:
    """A merge's effect on one repository: each valid spec's diff, each invalid file's findings."""

    diffs: list[SpecDiff] = field(default_factory=list)
    invalid: dict[str, list[Finding]] = field(default_factory=dict)
    warnings: list[Finding] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return [*(f for found in self.invalid.values() for f in found), *self.warnings]


def plan_files(
    session: Session,
    repository_id: int | None,
    contents: Mapping[str, bytes],
    removed: Sequence[str] = (),
    known_agents: Collection[str] = (),
    formats: Collection[str] = FORMATS,
    anywhere: bool = False,
) -> Plan:
    """What syncing these files' specs (and deleting the specs at `removed`) would do,
    against the rows. `contents`: repository files by path, every file of each spec
    (a spec-kit or Kiro spec is its folder: specs/sources.py).

    `known_agents`: the operator's agent profiles; with none, any agent name is accepted
    and no task starts by itself, as the sync and the scheduler do.
    """
    plan = Plan()
    recorded = _recorded_specs(session, repository_id)
    by_key = {spec.key: spec for spec in recorded}
    by_path = {spec.path: spec for spec in recorded}
    loaded = validate_files(contents, set(known_agents) or None, formats, anywhere)
    for path, (spec_file, findings) in loaded.items():
        if spec_file is None:
            plan.invalid[path] = findings
            continue
        plan.warnings += findings
        recorded_spec = by_key.get(spec_file.id)
        proposed = adoptions(session, recorded_spec) if recorded_spec is not None else {}
        numbers = {key: p.issue_number for key, p in proposed.items() if p.issue_number}
        plan.diffs.append(diff_spec(recorded_spec, spec_file, known_agents, numbers))
    for path in removed:
        spec = by_path.get(path)
        if spec is not None and spec.tickets:
            plan.diffs.append(diff_removed(spec))
    return plan


def _recorded_specs(session: Session, repository_id: int | None) -> list[Spec]:
    if repository_id is None:
        return []
    return list(session.scalars(select(Spec).where(Spec.repository_id == repository_id)))


def diff_spec(
    recorded: Spec | None,
    spec_file: SpecFile,
    known_agents: Collection[str],
    proposed: Mapping[str, int] | None = None,
) -> SpecDiff:
    """The issues a merge of `spec_file` would open, adopt, change, close and reopen.

    `proposed`: issue numbers by task id, of tasks proposed from an issue on GitHub.
    """
    diff = SpecDiff(spec_file.path, spec_file.id, spec_file.title, spec_file.produces_tickets)
    diff.tasks = list(spec_file.tasks)
    if not spec_file.produces_tickets:
        return diff
    rows = {t.key: t for t in recorded.tasks} if recorded is not None else {}
    tickets = {t.spec_task.key: t for t in recorded.tickets if t.spec_task} if recorded else {}
    diff.tracking_issue = recorded.tracking_issue_number if recorded else None
    diff.open_tracking_issue = diff.tracking_issue is None
    diff.issue_numbers = {key: ticket.issue_number for key, ticket in tickets.items()}
    labels_changed = recorded is not None and list(recorded.labels) != list(spec_file.labels)
    requirements_changed = _changed_requirements(recorded, spec_file)
    for task in spec_file.tasks:
        row, ticket = rows.get(task.id), tickets.get(task.id)
        if ticket is None and proposed and task.id in proposed:
            diff.adopt.append((task, proposed[task.id]))
            continue
        if ticket is None:
            diff.open.append(task)
            continue
        if ticket.state is not IssueState.OPEN and ticket.state_reason == "not_planned":
            diff.reopen.append((task.id, ticket.issue_number))
        changes = _changes(row, task, requirements_changed) if row is not None else []
        if labels_changed and "labels" not in changes:
            changes.append("labels")
        if changes:
            diff.change.append(TaskChange(task.id, task.title, ticket.issue_number, changes))
    keys = {task.id for task in spec_file.tasks}
    for key, ticket in sorted(tickets.items()):
        if key not in keys and ticket.state is IssueState.OPEN:
            diff.close.append((key, ticket.issue_number))
    diff.renumbered = _renumbered(diff, rows)
    new = [*diff.open, *(task for task, _ in diff.adopt)]
    diff.done_at_once = [task.id for task in new if task.done]
    diff.start_now = _starting_at_once(new, spec_file, tickets, known_agents)
    return diff


def _renumbered(diff: SpecDiff, rows: Mapping[str, SpecTask]) -> list[Renumbered]:
    """Tasks to close whose titles come back under other ids (a tasks.md regenerated
    with its tasks numbered anew): said before the merge, which would replace issues."""
    opening: dict[str, list[TaskFile]] = {}
    for task in diff.open:
        opening.setdefault(_same_title(task.title), []).append(task)
    found = []
    retitled = [(c.key, c.issue_number) for c in diff.change if "title" in c.changes]
    for key, number in [*diff.close, *retitled]:
        row = rows.get(key)
        candidates = opening.get(_same_title(row.title)) if row is not None else None
        if candidates:
            task = candidates.pop(0)
            found.append(Renumbered(key, task.id, number, task.title, (key, number) in retitled))
    return sorted(found, key=lambda r: r.issue_number)


def _same_title(title: str) -> str:
    return " ".join(title.casefold().split())


def diff_removed(recorded: Spec) -> SpecDiff:
    """The spec's file is deleted: its open issues close as not planned, and its tracking issue."""
    diff = SpecDiff(recorded.path, recorded.key, recorded.title, True, removed=True)
    diff.tracking_issue = recorded.tracking_issue_number
    diff.close = sorted(
        (t.spec_task.key, t.issue_number)
        for t in recorded.tickets
        if t.spec_task is not None and t.state is IssueState.OPEN
    )
    return diff


def _starting_at_once(
    new: Sequence[TaskFile],
    spec_file: SpecFile,
    tickets: Mapping[str, Ticket],
    known_agents: Collection[str],
) -> list[str]:
    """New tasks the scheduler would queue as soon as their issues exist."""
    if spec_file.approval == "required":
        return []
    done = {task.id for task in new if task.done}  # closed as completed once opened
    return [
        task.id
        for task in new
        if not task.done
        and all(key in done or _completed(tickets.get(key)) for key in task.depends_on)
        and (task.agent or spec_file.agent) != MANUAL_AGENT
        and (task.agent or spec_file.agent) in known_agents
    ]


def _changed_requirements(recorded: Spec | None, spec_file: SpecFile) -> set[str]:
    """Requirements whose text or acceptance criteria differ: the bodies citing them change."""
    if recorded is None:
        return set()
    before = {r.key: _requirement_text(r) for r in recorded.requirements if r.removed_at is None}
    after = {
        r.id: (r.text, tuple((c.id, c.text) for c in r.acceptance)) for r in spec_file.requirements
    }
    return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}


def _requirement_text(row: SpecRequirement) -> tuple[str, tuple[tuple[str, str], ...]]:
    criteria = sorted(
        (c for c in row.acceptance_criteria if c.removed_at is None), key=lambda c: c.position
    )
    return row.text, tuple((c.key, c.text) for c in criteria)


def _changes(row: SpecTask, task: TaskFile, requirements_changed: set[str]) -> list[str]:
    changes = []
    if row.title != task.title:
        changes.append("title")
    if (
        row.description != task.description
        or list(row.requirement_keys) != list(task.requirements)
        or requirements_changed & set(task.requirements)
    ):
        changes.append("body")
    if row.priority != task.priority:
        changes.append("labels")
    if list(row.depends_on) != list(task.depends_on):
        changes.append("dependencies")
    return changes
