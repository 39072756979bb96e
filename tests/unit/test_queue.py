"""Only jobs of ours go on a queue, and each of them resolves to a function; a delayed
job goes on its queue once due, whatever state RQ's own scheduler is in."""

from __future__ import annotations

import importlib
import os
import threading
import time
import uuid
from collections.abc import Callable

import pytest
from rq.job import Job, JobStatus

from bot import queue
from bot.events.deliveries import process_delivery
from bot.queue import (
    EVENTS,
    JOBS,
    enqueue,
    enqueue_coalesced,
    move_due_jobs,
    not_started,
    pending,
    redis_connection,
    rq_queue,
)
from bot.settings import load_settings
from tests.e2e.harness import wait_until


@pytest.mark.parametrize("name", sorted(JOBS))
def test_every_allowed_job_is_a_function_of_ours(name: str) -> None:
    module, _, function = name.rpartition(".")
    assert callable(getattr(importlib.import_module(module), function))


def test_a_function_not_allowed_is_refused_before_it_is_queued(db: str) -> None:
    settings = load_settings({"DATABASE_URL": db})
    with pytest.raises(ValueError, match=r"posix\.system is not in bot\.queue\.JOBS"):
        enqueue(settings, EVENTS, os.system, "true")


def _redis_settings(db: str):  # type: ignore[no-untyped-def]
    if not os.environ.get("REDIS_URL"):
        pytest.skip("delayed jobs wait in RQ's scheduled registry (REDIS_URL is not set)")
    settings = load_settings({"DATABASE_URL": db, "REDIS_URL": os.environ["REDIS_URL"]})
    redis_connection(settings.redis_url or "").flushdb()
    return settings


def test_a_delayed_job_is_moved_to_its_queue_once_due_and_once_by_any_number_of_movers(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _redis_settings(db)
    enqueue(settings, EVENTS, process_delivery, 7, job_id="later", delay=30)
    events = rq_queue(settings.redis_url or "", EVENTS)

    assert move_due_jobs(settings) == 0  # not due yet
    assert events.job_ids == [] and pending(settings, EVENTS, ["later"]) == {"later"}

    soon = time.time() + 31
    monkeypatch.setattr(queue.time, "time", lambda: soon)
    moved = [move_due_jobs(settings) for _ in range(3)]  # three workers' dispatchers

    assert moved == [1, 0, 0]
    assert events.job_ids == ["later"]
    job = events.fetch_job("later")
    assert job is not None and job.get_status() == JobStatus.QUEUED and job.args == [7]


def test_a_scheduled_job_out_of_the_registry_is_not_pending(db: str) -> None:
    """It would never run: whoever waits for it queues it again."""
    settings = _redis_settings(db)
    enqueue(settings, EVENTS, process_delivery, 7, job_id="lost", delay=30)
    connection = redis_connection(settings.redis_url or "")
    assert pending(settings, EVENTS, ["lost"]) == {"lost"}

    connection.zrem(f"rq:scheduled:{EVENTS}", "lost")

    assert connection.hget(Job.key_for("lost"), "status") == b"scheduled"
    assert pending(settings, EVENTS, ["lost"]) == set()


def _coalesced_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[int], threading.Event, Callable[[int], None]]:
    """A job allowed on the queue that records its runs and holds its first until told."""
    runs: list[int] = []
    release = threading.Event()

    def refresh(spec_id: int) -> None:
        runs.append(spec_id)
        release.wait(10)

    monkeypatch.setattr(queue, "JOBS", queue.JOBS | {queue.job_name(refresh)})
    return runs, release, refresh


def test_changes_while_a_refresh_waits_make_one_run_and_a_change_while_it_runs_one_more(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh that already read must not swallow the change made while it ran (the
    tracking issue showed one failed task of two, for good)."""
    settings = load_settings({"DATABASE_URL": db})
    runs, release, refresh = _coalesced_runs(monkeypatch)
    name = f"test-coalesced-{uuid.uuid4().hex[:8]}"
    held = threading.Event()
    monkeypatch.setattr(queue, "JOBS", queue.JOBS | {queue.job_name(held.wait)})
    enqueue(settings, name, held.wait, 10)  # the queue's thread is busy: nothing starts

    for _ in range(3):
        enqueue_coalesced(settings, name, refresh, 1, "tracking-1", 0)
    assert not_started(settings, name, ["tracking-1", "tracking-1-again"]) == {"tracking-1"}
    held.set()
    wait_until(lambda: runs == [1], 10, "the refresh to start")
    assert not_started(settings, name, ["tracking-1", "tracking-1-again"]) == set()

    for _ in range(3):  # it runs, and may have read already
        enqueue_coalesced(settings, name, refresh, 1, "tracking-1", 0)
    release.set()
    queue.embedded_queue(name).join()

    assert runs == [1, 1]


def test_on_redis_a_running_refresh_gets_one_more_under_its_second_id(db: str) -> None:
    settings = _redis_settings(db)
    enqueue_coalesced(settings, EVENTS, process_delivery, 7, "tracking-7", 30)
    enqueue_coalesced(settings, EVENTS, process_delivery, 7, "tracking-7", 30)
    connection = redis_connection(settings.redis_url or "")
    assert connection.zrange(f"rq:scheduled:{EVENTS}", 0, -1) == [b"tracking-7"]

    connection.hset(Job.key_for("tracking-7"), "status", "started")  # a worker took it
    enqueue_coalesced(settings, EVENTS, process_delivery, 7, "tracking-7", 30)
    enqueue_coalesced(settings, EVENTS, process_delivery, 7, "tracking-7", 30)

    assert sorted(connection.zrange(f"rq:scheduled:{EVENTS}", 0, -1)) == [
        b"tracking-7",
        b"tracking-7-again",
    ]
