from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.queue import redis_connection
from storage.migrate import upgrade
from tests.databases import create_empty_database, drop_database
from tests.e2e.harness import Stack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """The double, the bot's web process and (with Redis) two workers, on a new database."""
    database_url = create_empty_database(tmp_path)
    upgrade(database_url)
    redis_url = os.environ.get("REDIS_URL") or None
    if redis_url:
        redis_connection(redis_url).flushdb()
    stack = Stack(database_url=database_url, redis_url=redis_url, workdir=tmp_path)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        drop_database(database_url)
