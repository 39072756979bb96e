"""`specbridge worker`'s lanes: the event queues (interactive first) in a warm process,
agents forked per run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from rq import SimpleWorker, Worker

from bot.errors import CommandError
from bot.events.worker import ForkingWorker, WarmWorker, lane_queues, run_apart
from bot.queue import AGENTS, agent_slots, redis_connection, rq_queue
from bot.settings import load_settings
from tests.support import REPO_ROOT


def test_event_queues_go_to_the_warm_lane_interactive_first_and_agents_to_their_own() -> None:
    assert lane_queues(["interactive", "events", "agents"]) == (
        ["interactive", "events"],
        ["agents"],
    )
    assert lane_queues(["agents", "events", "interactive"])[0] == ["interactive", "events"]


def test_a_worker_asked_for_events_takes_the_interactive_queue_too() -> None:
    assert lane_queues(["events"]) == (["interactive", "events"], [])
    assert lane_queues(["interactive"]) == (["interactive"], [])
    assert lane_queues(["agents"]) == ([], ["agents"])


def test_the_warm_lane_runs_jobs_in_its_own_process_and_agents_fork() -> None:
    assert issubclass(WarmWorker, SimpleWorker)
    assert not issubclass(Worker, SimpleWorker)  # RQ's Worker forks a work horse per job


def test_the_process_that_forks_the_lanes_keeps_nothing_of_the_schema_check(db: str) -> None:
    """The check loads alembic, mako and the migration scripts: made in a process of its
    own, none of it is in the pages every lane shares with the supervisor."""
    supervisor = (
        "import sys\n"
        "from bot.cli.problems import migrated_settings\n"
        "from bot.events.worker import preload, run_apart\n"
        "run_apart(migrated_settings)\n"
        f"preload({db!r})\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'mako'}))\n"
    )
    env = {**os.environ, "DATABASE_URL": db, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", supervisor], env=env, capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr[-2000:]


def test_what_the_check_raises_is_raised_in_the_process_that_asked() -> None:
    def empty_database() -> None:
        raise CommandError("the database is empty: run `specbridge db upgrade`")

    with pytest.raises(CommandError, match="run `specbridge db upgrade`"):
        run_apart(empty_database)
    assert run_apart(lambda: 6 * 7) == 42


def test_a_worker_counts_as_an_agent_slot_again_after_redis_restarted_empty() -> None:
    """The fleet queues no more runs than the workers' agent slots, counted in RQ's
    registry: Redis restarted empty forgot every worker, and the fleet ran one at a time."""
    if not os.environ.get("REDIS_URL"):
        pytest.skip("RQ's registry of workers is in Redis (REDIS_URL is not set)")
    settings = load_settings({"REDIS_URL": os.environ["REDIS_URL"]})
    connection = redis_connection(settings.redis_url or "")
    connection.flushdb()
    worker = ForkingWorker([rq_queue(settings.redis_url or "", AGENTS)], connection=connection)
    worker.register_birth()
    assert agent_slots(settings) == 1

    connection.flushdb()  # Redis restarted empty
    assert Worker.count(queue=rq_queue(settings.redis_url or "", AGENTS)) == 0
    worker.heartbeat()

    assert Worker.count(queue=rq_queue(settings.redis_url or "", AGENTS)) == 1
