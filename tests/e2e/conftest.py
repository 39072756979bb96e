from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.queue import redis_connection
from storage.migrate import upgrade
from tests.databases import create_empty_database, drop_database
from tests.e2e.harness import Stack

StartStack = Callable[..., Stack]


@pytest.fixture
def start_stack(tmp_path: Path) -> Iterator[StartStack]:
    """Starts the double, the bot's web process and (with Redis) two workers, on a new database."""
    started: list[Stack] = []

    def start(own_redis: bool = False, embedded: bool = False, **extra_env: str) -> Stack:
        database_url = create_empty_database(tmp_path)
        upgrade(database_url)
        redis_url = None if embedded else os.environ.get("REDIS_URL") or None
        if redis_url and not own_redis:
            redis_connection(redis_url).flushdb()
        stack = Stack(database_url, redis_url, tmp_path, extra_env=extra_env, own_redis=own_redis)
        started.append(stack)
        stack.start()
        return stack

    yield start
    for stack in started:
        stack.stop()
        drop_database(stack.database_url)


@pytest.fixture
def stack(start_stack: StartStack) -> Stack:
    return start_stack()


@pytest.fixture
def workspaces() -> Iterator[Path]:
    """Where agent workspaces go: a folder the agents' account (nobody, under root) can enter."""
    folder = Path(tempfile.mkdtemp(prefix="specbridge-e2e-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
