"""RQ queues on Redis, or the embedded in-process queue when there is no Redis.

Jobs are named by import path and take only ids, so a worker on another
machine loads everything else from the database itself.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from redis import Redis
from rq import Queue, Retry, Worker

from bot.settings import Settings

log = logging.getLogger(__name__)

EVENTS = "events"
AGENTS = "agents"
# Transient failures (GitHub down, a lost connection) retry after these many seconds.
RETRY_INTERVALS = [5, 30, 120]
JOB_TIMEOUT_SECONDS = 15 * 60


@cache
def redis_connection(redis_url: str) -> Redis:
    return Redis.from_url(redis_url)


def enqueue(settings: Settings, queue_name: str, job: Callable[..., Any], *args: Any) -> None:
    if settings.redis_url is None:
        embedded_queue(queue_name).put(job, args)
        return
    Queue(queue_name, connection=redis_connection(settings.redis_url)).enqueue_call(
        job,
        args=args,
        timeout=JOB_TIMEOUT_SECONDS,
        retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
    )


def queue_reachable(settings: Settings) -> bool:
    if settings.redis_url is None:
        return all(embedded_queue(name).alive for name in (EVENTS, AGENTS))
    try:
        return bool(redis_connection(settings.redis_url).ping())
    except Exception:  # any connection failure means "not reachable" for /healthz
        return False


def run_worker(settings: Settings, queue_names: Sequence[str] | None = None) -> None:
    if settings.redis_url is None:
        raise SystemExit(
            "specbridge worker needs REDIS_URL; without it `specbridge serve` runs jobs"
        )
    from bot.agents.run import reap_stale_tasks

    hide_environment_from_children()
    # RQ forks a work horse per job: a thread of ours in this process could be
    # holding a lock at that moment and leave the horse deadlocked. So the
    # reaper lives in a process of its own, forked before anything else runs.
    interval = settings.task_heartbeat_seconds * 2
    multiprocessing.get_context("fork").Process(
        target=_while_parent_lives, args=(interval, reap_stale_tasks, settings), daemon=True
    ).start()
    connection = redis_connection(settings.redis_url)
    names = list(queue_names or [EVENTS, AGENTS])
    Worker([Queue(n, connection=connection) for n in names], connection=connection).work(
        with_scheduler=True
    )


def _while_parent_lives(
    seconds: float, action: Callable[[Settings], Any], settings: Settings
) -> None:
    parent = os.getppid()
    while os.getppid() == parent:
        try:
            action(settings)
        except Exception:
            log.exception("periodic %s failed", action.__name__)
        time.sleep(seconds)


def hide_environment_from_children() -> None:
    """Make /proc/<pid>/environ of this process (and its forks) unreadable to agents.

    Agent commands run with a clean environment, but as the same user they
    could read a parent's environment, and with it the bot's secrets, through
    /proc. A process that is not dumpable has its /proc files owned by root
    (run the bot as a user other than root for this to hold).
    """
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_dumpable = 4
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_dumpable, 0, 0, 0, 0)


def every(seconds: float, action: Callable[[], Any]) -> None:
    """Run action now and then every so often on a daemon thread, logging its failures."""

    def loop() -> None:
        while True:
            try:
                action()
            except Exception:
                log.exception("periodic %s failed", action)
            time.sleep(seconds)

    threading.Thread(target=loop, name="periodic", daemon=True).start()


class EmbeddedQueue:
    """Runs one queue's jobs one at a time on a thread of the serving process, with retries.

    Each queue has its own thread, so a long agent run never holds up webhooks.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...], int]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    @property
    def alive(self) -> bool:
        """False only when the worker thread has died; it starts on the first job."""
        return self._thread is None or self._thread.is_alive()

    def put(self, job: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._ensure_started()
        self._jobs.put((job, args, 0))

    def join(self) -> None:
        """Wait until every job put so far has run once."""
        self._jobs.join()

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="embedded-queue", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            job, args, failures = self._jobs.get()
            try:
                job(*args)
            except Exception:
                log.exception("job %s%r failed (attempt %d)", job.__name__, args, failures + 1)
                if failures < len(RETRY_INTERVALS):
                    retry = (job, args, failures + 1)
                    threading.Timer(RETRY_INTERVALS[failures], self._jobs.put, [retry]).start()
            finally:
                self._jobs.task_done()


@cache
def embedded_queue(name: str) -> EmbeddedQueue:
    return EmbeddedQueue(name)
