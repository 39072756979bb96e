"""What a sync would do, worked out from rows and a spec file without writing
anything: the order new issues are created in (ready work first), and the
difference between the recorded spec and a new version of its file, which a
pull request's check shows as the plan of its merge."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from specs.model import MANUAL_AGENT, PRIORITIES
from specs.model import Spec as SpecFile
from specs.model import SpecTask as TaskFile
from storage.models import IssueState, Spec, SpecTask, Ticket


def creation_order(new: Sequence[SpecTask], tickets: dict[str, Ticket]) -> list[SpecTask]:
    """New tasks in the order their issues are created: ready work first.

    A task is ready when none of its dependencies is open; the others follow
    their dependencies, so most issues can name theirs when they are created.
    """
    by_key = {task.key: task for task in new}
    depth: dict[str, int] = {}

    def level(task: SpecTask, seen: frozenset[str] = frozenset()) -> int:
        if task.key not in depth:
            waits_on = [by_key[k] for k in task.depends_on if k in by_key and k not in seen]
            depth[task.key] = 1 + max((level(d, seen | {task.key}) for d in waits_on), default=-1)
        return depth[task.key]

    def ready(task: SpecTask) -> bool:
        return all(_completed(tickets.get(key)) for key in task.depends_on)

    return sorted(
        new,
        key=lambda t: (level(t), not ready(t), _priority_rank(t.priority), t.position),
    )


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
    changes: list[str]  # "title", "description", "labels", "requirements", "dependencies"


@dataclass
class SpecDiff:
    """What merging a version of a spec file would do to its issues."""

    spec_id: str
    title: str
    produces_tickets: bool
    open: list[TaskFile] = field(default_factory=list)
    change: list[TaskChange] = field(default_factory=list)
    close: list[tuple[str, int]] = field(default_factory=list)  # (task key, issue number)
    reopen: list[tuple[str, int]] = field(default_factory=list)
    start_now: list[str] = field(default_factory=list)
    tracking_issue: int | None = None
    tasks: list[TaskFile] = field(default_factory=list)  # every task of the new version

    @property
    def writes_anything(self) -> bool:
        return bool(self.open or self.change or self.close or self.reopen)


def diff_spec(
    recorded: Spec | None, spec_file: SpecFile, known_agents: Collection[str]
) -> SpecDiff:
    """The issues a merge of `spec_file` would open, change, close and reopen."""
    diff = SpecDiff(spec_file.id, spec_file.title, spec_file.produces_tickets)
    diff.tasks = list(spec_file.tasks)
    if not spec_file.produces_tickets:
        return diff
    rows = {t.key: t for t in recorded.tasks} if recorded is not None else {}
    tickets = {t.spec_task.key: t for t in recorded.tickets if t.spec_task} if recorded else {}
    diff.tracking_issue = recorded.tracking_issue_number if recorded else None
    labels_changed = recorded is not None and list(recorded.labels) != list(spec_file.labels)
    for task in spec_file.tasks:
        row, ticket = rows.get(task.id), tickets.get(task.id)
        if ticket is None:
            diff.open.append(task)
            continue
        if ticket.state is not IssueState.OPEN and ticket.state_reason == "not_planned":
            diff.reopen.append((task.id, ticket.issue_number))
        changes = _changes(row, task) if row is not None else []
        if labels_changed and "labels" not in changes:
            changes.append("labels")
        if changes:
            diff.change.append(TaskChange(task.id, task.title, changes))
    keys = {task.id for task in spec_file.tasks}
    for key, ticket in sorted(tickets.items()):
        if key not in keys and ticket.state is IssueState.OPEN:
            diff.close.append((key, ticket.issue_number))
    approval_needed = spec_file.approval == "required"
    for task in diff.open:
        agent = task.agent or spec_file.agent
        if (
            not task.depends_on
            and not approval_needed
            and agent != MANUAL_AGENT
            and agent in known_agents
        ):
            diff.start_now.append(task.id)
    return diff


def _changes(row: SpecTask, task: TaskFile) -> list[str]:
    changes = []
    if row.title != task.title:
        changes.append("title")
    if row.description != task.description:
        changes.append("description")
    if row.priority != task.priority:
        changes.append("labels")
    if list(row.requirement_keys) != list(task.requirements):
        changes.append("requirements")
    if list(row.depends_on) != list(task.depends_on):
        changes.append("dependencies")
    return changes
