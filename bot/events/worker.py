"""`specbridge worker`: an RQ worker for the events and agents queues."""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import signal
import time
from collections.abc import Sequence

from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue, Worker
from sqlalchemy.orm import configure_mappers

from bot.agents.isolation import hide_environment_from_children
from bot.events import handlers, maintenance
from bot.events.deliveries import run_dispatcher
from bot.logs import configure_logging
from bot.queue import QUEUES, redis_connection
from bot.settings import Settings

# What jobs import, loaded once here: RQ forks a work horse per job, and a horse
# inherits these instead of importing them again (about 190 ms a job otherwise).
JOB_MODULES = ("bot.events.deliveries", "bot.agents.run", "bot.sync", "bot.github")
REDIS_RETRY_SECONDS = 2

log = logging.getLogger(__name__)


def preload() -> None:
    handlers.load()
    for module in JOB_MODULES:
        importlib.import_module(module)
    configure_mappers()


def run_worker(settings: Settings, queue_names: Sequence[str] | None = None) -> None:
    if settings.redis_url is None:
        raise SystemExit(
            "specbridge worker needs REDIS_URL; without it `specbridge serve` runs jobs"
        )
    configure_logging(settings)
    hide_environment_from_children()
    preload()
    maintenance.start_process(settings)
    # Announced deliveries become queue jobs here, not in the web process (bot/deliveries.py).
    multiprocessing.get_context("fork").Process(
        target=run_dispatcher, args=(settings,), name="dispatcher", daemon=True
    ).start()
    work_until_stopped(settings, list(queue_names or QUEUES))


def work_until_stopped(settings: Settings, names: Sequence[str]) -> None:
    """Run an RQ worker until it is asked to stop, through Redis restarts.

    RQ quits when Redis is away at start or when a job's end cannot be recorded.
    What it was doing is not lost (the stored delivery or Task says what is left,
    and the sweep and the reaper queue it again), so a worker waits for Redis and
    works on instead of leaving the queues unserved.
    """
    assert settings.redis_url is not None
    connection = redis_connection(settings.redis_url)
    while True:
        try:
            worker = Worker([Queue(n, connection=connection) for n in names], connection=connection)
            worker.work(with_scheduler=True)
            return
        except RedisConnectionError as error:
            log.warning("Redis is unreachable (%s); working again once it answers", error)
        # RQ's signal handlers belong to the worker that quit: a stop now ends the process.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        time.sleep(REDIS_RETRY_SECONDS)
