"""An agent's run is queued with room for its profile's timeout: the queue never
kills a run the profile allows (RQ's default of 15 minutes did, at 1800 s)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.agents.scheduler import enqueue_task
from bot.queue import AGENTS, redis_connection, rq_queue
from bot.settings import load_settings


def test_the_agents_job_timeout_follows_the_profile(tmp_path: Path) -> None:
    if not os.environ.get("REDIS_URL"):
        pytest.skip("job timeouts are RQ's (REDIS_URL is not set)")
    profiles = tmp_path / "agents.yaml"
    profiles.write_text("slow:\n  command: make everything\n  timeout: 3600\n")
    settings = load_settings(
        {"REDIS_URL": os.environ["REDIS_URL"], "SPECBRIDGE_AGENTS": str(profiles)}
    )
    connection = redis_connection(settings.redis_url or "")
    connection.flushdb()

    enqueue_task(settings, 42, "slow", "task-42-0")

    [job] = rq_queue(settings.redis_url or "", AGENTS).jobs
    assert job.args == [42]  # stored as JSON
    assert job.timeout is not None and job.timeout > 3600
