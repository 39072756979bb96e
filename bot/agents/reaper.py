"""Tasks whose worker died: found by their silent heartbeat, run again or failed,
and said so on the ticket's issue."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.agents.run import MAX_ATTEMPTS, STALE_AFTER_BEATS
from bot.scheduler import enqueue_task
from bot.settings import Settings
from storage.db import session_scope
from storage.models import Task, TaskStatus

log = logging.getLogger(__name__)


def reap_stale_tasks(settings: Settings) -> int:
    """Tasks left running by a worker that died: queue them again, or fail them."""
    cutoff = datetime.now(UTC) - timedelta(
        seconds=settings.task_heartbeat_seconds * STALE_AFTER_BEATS
    )
    requeued: list[tuple[int, str]] = []
    with session_scope(settings.database_url) as session:
        stale = session.scalars(
            select(Task).where(Task.status == TaskStatus.RUNNING, Task.heartbeat_at < cutoff)
        ).all()
        for task in stale:
            if task.attempts < MAX_ATTEMPTS:
                task.status = TaskStatus.QUEUED
                requeued.append((task.id, task.agent))
            else:
                task.status = TaskStatus.FAILED
                task.error = "its worker stopped responding, too many times"
                task.finished_at = datetime.now(UTC)
    for task_id, agent in requeued:
        enqueue_task(settings, task_id, agent)
    return len(stale)
