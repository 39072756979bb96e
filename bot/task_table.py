"""`specbridge tasks`: agent tasks as a plain table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from storage.db import session_scope
from storage.models import Repository, Task, TaskStatus, Ticket

COLUMNS = (
    "TASK",
    "REPOSITORY",
    "ISSUE",
    "AGENT",
    "STATUS",
    "ATTEMPTS",
    "QUEUED",
    "RAN FOR",
    "RESULT",
)


def task_table(database_url: str, repo: str | None = None, status: str | None = None) -> str:
    query = (
        select(Task, Ticket.issue_number, Repository.full_name)
        .join(Task.ticket)
        .join(Ticket.repository)
        .order_by(Task.id)
    )
    if repo:
        query = query.where(Repository.full_name == repo)
    if status:
        query = query.where(Task.status == TaskStatus(status))
    with session_scope(database_url) as session:
        rows = [_row(task, number, full_name) for task, number, full_name in session.execute(query)]
    if not rows:
        return "no tasks"
    widths = [max(len(str(r[i])) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [COLUMNS, *rows]
    )


def _row(task: Task, issue_number: int, full_name: str) -> tuple[str, ...]:
    result = f"#{task.pull_request_number}" if task.pull_request_number else (task.error or "")
    return (
        str(task.id),
        full_name,
        f"#{issue_number}",
        task.agent,
        task.status.value,
        str(task.attempts),
        _when(task.queued_at),
        _duration(task.started_at, task.finished_at),
        result[:60],
    )


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def _duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "-"
    return f"{(end - start).total_seconds():.0f}s"
