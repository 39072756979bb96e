"""`specbridge tasks`: agent tasks as a plain table, or as JSON for scripts."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import joinedload

from storage.db import session_scope
from storage.models import Repository, SpecTask, Task, TaskStatus, Ticket

# Column title → the key of a task's record.
COLUMNS = {
    "TASK": "id",
    "REPOSITORY": "repository",
    "SPEC": "spec",
    "KEY": "task",
    "ISSUE": "issue",
    "AGENT": "agent",
    "STATUS": "status",
    "ATTEMPTS": "attempts",
    "QUEUED": "queued_at",
    "RAN FOR": "seconds",
    "RESULT": "result",
}


def tasks_query(
    repo: str | None = None, status: TaskStatus | None = None
) -> Select[tuple[Task, Ticket, str]]:
    """Agent tasks, oldest first, each with its ticket (its spec task and spec loaded)
    and its repository's name: what `specbridge tasks` and the status page show."""
    query = (
        select(Task, Ticket, Repository.full_name)
        .join(Task.ticket)
        .join(Ticket.repository)
        .options(joinedload(Task.ticket).joinedload(Ticket.spec_task).joinedload(SpecTask.spec))
        .order_by(Task.id)
    )
    if repo:
        query = query.where(Repository.full_name == repo)
    if status:
        query = query.where(Task.status == status)
    return query


def task_records(
    database_url: str, repo: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """One record per agent task, oldest first."""
    query = tasks_query(repo, TaskStatus(status) if status else None)
    with session_scope(database_url) as session:
        return [_record(task, ticket, name) for task, ticket, name in session.execute(query)]


def task_table(database_url: str, repo: str | None = None, status: str | None = None) -> str:
    rows = [_cells(record) for record in task_records(database_url, repo, status)]
    if not rows:
        return "no tasks"
    titles = tuple(COLUMNS)
    widths = [max(len(r[i]) for r in [titles, *rows]) for i in range(len(titles))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [titles, *rows]
    )


def task_json(database_url: str, repo: str | None = None, status: str | None = None) -> str:
    return json.dumps(task_records(database_url, repo, status), indent=2)


def _record(task: Task, ticket: Ticket, full_name: str) -> dict[str, Any]:
    spec_task = ticket.spec_task
    return {
        "id": task.id,
        "repository": full_name,
        "spec": spec_task.spec.key if spec_task else None,
        "task": spec_task.key if spec_task else None,
        "issue": ticket.issue_number,
        "agent": task.agent,
        "status": task.status.value,
        "attempts": task.attempts,
        "queued_at": _iso(task.queued_at),
        "started_at": _iso(task.started_at),
        "finished_at": _iso(task.finished_at),
        "seconds": _seconds(task.started_at, task.finished_at),
        "pull_request": task.pull_request_number,
        "error": task.error,
    }


def _cells(record: dict[str, Any]) -> tuple[str, ...]:
    result = f"#{record['pull_request']}" if record["pull_request"] else (record["error"] or "")
    queued = record["queued_at"]
    shown = {
        **record,
        "issue": f"#{record['issue']}",
        "queued_at": datetime.fromisoformat(queued).strftime("%Y-%m-%d %H:%M") if queued else None,
        "seconds": None if record["seconds"] is None else f"{record['seconds']:.0f}s",
        "result": result[:60],
    }
    return tuple(str(shown[key]) if shown[key] is not None else "-" for key in COLUMNS.values())


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()
