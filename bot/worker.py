"""`specbridge worker`: an RQ worker for the events and agents queues."""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from rq import Queue, Worker
from sqlalchemy.orm import configure_mappers

from bot import commands, handlers, maintenance
from bot.agents.isolation import hide_environment_from_children
from bot.logs import configure_logging
from bot.queue import QUEUES, redis_connection
from bot.settings import Settings

# What jobs import, loaded once here: RQ forks a work horse per job, and a horse
# inherits these instead of importing them again (about 190 ms a job otherwise).
JOB_MODULES = ("bot.deliveries", "bot.agents.run", "bot.sync", "bot.github")


def preload() -> None:
    handlers.load()
    commands.load()
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
    connection = redis_connection(settings.redis_url)
    names = list(queue_names or QUEUES)
    Worker([Queue(n, connection=connection) for n in names], connection=connection).work(
        with_scheduler=True
    )
