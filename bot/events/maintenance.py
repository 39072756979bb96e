"""Periodic chores that keep the outbox honest: spooled deliveries moved into
the outbox, deliveries queued again, tasks whose worker died reaped, queued
tasks whose job was lost queued again, paused
syncs resumed if their job was lost, finished deliveries pruned after the
retention time, events GitHub failed to deliver redelivered, repositories whose
head is not the one synced synced again (these two: one process per interval,
bot/events/redelivery.py, bot/events/heads.py), tasks handed to an agent GitHub
runs that saw no pull request in time failed (bot/agents/hosted.py). They run in every worker (in a
process of their own, those that wait on GitHub in another) and in the embedded
server (on two threads), the first round at start; `serve` with Redis drains
the spool on a thread too. Each is safe to run anywhere, any number of times
at once."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select

from bot.agents.hosted import expire_dispatched_tasks
from bot.agents.reaper import reap_stale_planning_runs, reap_stale_tasks, requeue_stranded_tasks
from bot.agents.scheduler import start_waiting_runs
from bot.events.deliveries import requeue_unfinished
from bot.events.heads import check_heads_when_due
from bot.events.redelivery import redeliver_when_due
from bot.events.spool import drain_spool
from bot.settings import Settings
from bot.sync import resume_due_specs
from storage.db import session_scope
from storage.models import Delivery, DeliveryStatus

log = logging.getLogger(__name__)

# Deliveries with nothing left to do: done, ignored, or failed every retry.
PRUNABLE = (DeliveryStatus.DONE, DeliveryStatus.IGNORED, DeliveryStatus.FAILED)
# Rows deleted per statement, so a first prune of a large table takes no long lock.
PRUNE_BATCH = 500
PRUNE_MAX_BATCHES = 20
# Pruning reads the whole table: once an hour per process is plenty.
PRUNE_EVERY_SECONDS = 3600
_last_prune: float | None = None


def prune_when_due(settings: Settings) -> int:
    global _last_prune
    if _last_prune is not None and time.monotonic() - _last_prune < PRUNE_EVERY_SECONDS:
        return 0
    _last_prune = time.monotonic()
    return prune_deliveries(settings)


def prune_deliveries(settings: Settings) -> int:
    """Delete finished deliveries older than the retention time; never an unfinished one."""
    days = settings.delivery_retention_days
    if days == 0:
        return 0
    cutoff = datetime.now(UTC) - timedelta(days=days)
    finished_at = func.coalesce(Delivery.processed_at, Delivery.received_at)
    expired = (
        select(Delivery.id)
        .where(Delivery.status.in_(PRUNABLE), finished_at < cutoff)
        .order_by(Delivery.id)
        .limit(PRUNE_BATCH)
    )
    pruned = 0
    for _ in range(PRUNE_MAX_BATCHES):  # the rest waits for the next round
        with session_scope(settings.database_url) as session:
            ids = session.scalars(expired).all()
            if ids:
                session.execute(delete(Delivery).where(Delivery.id.in_(ids)))
        pruned += len(ids)
        if len(ids) < PRUNE_BATCH:
            break
    if pruned:
        log.info("pruned %d deliveries finished before %s", pruned, f"{cutoff:%Y-%m-%d %H:%M}")
    return pruned


Chore = Callable[[Settings], object]

CHORES: tuple[Chore, ...] = (
    drain_spool,
    requeue_unfinished,
    reap_stale_tasks,
    reap_stale_planning_runs,
    requeue_stranded_tasks,
    resume_due_specs,
    prune_when_due,
    # runs waiting for a slot, should a pass have been missed, or held by a budget
    # whose cap no longer holds (a new day, the profiles file edited)
    start_waiting_runs,
)
# Chores that wait on GitHub, on a loop of their own: GitHub slow or out of
# reach (minutes of retries) must not hold up the outbox's chores.
GITHUB_CHORES: tuple[Chore, ...] = (
    redeliver_when_due,
    check_heads_when_due,
    expire_dispatched_tasks,  # hosted agents that opened no pull request in time
)
# In `serve` when workers run the jobs (with Redis): the spool it fills.
WEB_CHORES: tuple[Chore, ...] = (drain_spool,)


def run_chores(settings: Settings, chores: tuple[Chore, ...] = CHORES) -> None:
    for chore in chores:
        try:
            chore(settings)
        except Exception:  # one failing chore (Redis down) must not stop the others
            log.exception("periodic %s failed", chore.__name__)


def interval(settings: Settings) -> float:
    return settings.task_heartbeat_seconds * 2


def start_thread(settings: Settings, chores: tuple[Chore, ...] = CHORES) -> None:
    """For the embedded server: chores on a daemon thread of this process."""

    def loop() -> None:
        while True:
            run_chores(settings, chores)
            time.sleep(interval(settings))

    threading.Thread(target=loop, name="maintenance", daemon=True).start()


def start_threads(settings: Settings) -> None:
    """Every chore, the outbox's and GitHub's on a thread each."""
    start_thread(settings, CHORES)
    start_thread(settings, GITHUB_CHORES)


def run_while_parent_lives(settings: Settings, chores: tuple[Chore, ...] = CHORES) -> None:
    """For an RQ worker: the chores in a process of their own, which `specbridge worker`
    starts (and starts again if it dies) and which ends with it (bot/events/worker.py).

    RQ forks a work horse per job: a thread of ours in the worker could be
    holding a lock at that moment and leave the horse deadlocked, so the
    chores never run as a thread there.
    """
    parent = os.getppid()
    while os.getppid() == parent:
        run_chores(settings, chores)
        time.sleep(interval(settings))
