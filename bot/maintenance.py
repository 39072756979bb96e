"""Periodic chores that keep the outbox honest: deliveries queued again, tasks
whose worker died reaped, paused syncs resumed if their job was lost. They run
in every worker (in a process of its own) and in the embedded server (on a
thread); each is safe to run anywhere, any number of times at once."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable

from bot.agents.reaper import reap_stale_tasks
from bot.deliveries import requeue_unfinished
from bot.settings import Settings
from bot.sync import resume_due_specs

log = logging.getLogger(__name__)

CHORES: tuple[Callable[[Settings], object], ...] = (
    requeue_unfinished,
    reap_stale_tasks,
    resume_due_specs,
)


def run_chores(settings: Settings) -> None:
    for chore in CHORES:
        try:
            chore(settings)
        except Exception:  # one failing chore (Redis down) must not stop the others
            log.exception("periodic %s failed", chore.__name__)


def interval(settings: Settings) -> float:
    return settings.task_heartbeat_seconds * 2


def start_thread(settings: Settings) -> None:
    """For the embedded server: chores on a daemon thread of this process."""

    def loop() -> None:
        while True:
            run_chores(settings)
            time.sleep(interval(settings))

    threading.Thread(target=loop, name="maintenance", daemon=True).start()


def start_process(settings: Settings) -> None:
    """For an RQ worker: chores in a forked process that ends with its parent.

    RQ forks a work horse per job: a thread of ours in the worker could be
    holding a lock at that moment and leave the horse deadlocked, so the
    chores never run as a thread there.
    """
    multiprocessing.get_context("fork").Process(
        target=_while_parent_lives, args=(settings,), name="maintenance", daemon=True
    ).start()


def _while_parent_lives(settings: Settings) -> None:
    parent = os.getppid()
    while os.getppid() == parent:
        run_chores(settings)
        time.sleep(interval(settings))
