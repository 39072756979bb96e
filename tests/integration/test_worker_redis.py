"""`specbridge worker` outlives Redis: restarted under it, idle or in the middle
of a job, it works the queues once Redis answers again. A worker killed in the
middle of a delivery has it taken back by another within a minute."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from bot.events.deliveries import process_delivery, queue_delivery, store_delivery
from bot.queue import EVENTS, INTERACTIVE, QUEUES, enqueue
from bot.settings import Settings, load_settings
from storage.db import session_scope
from storage.models import Delivery, DeliveryStatus
from tests.e2e.harness import Stack, wait_until
from tests.integration.worker_with_hanging_handler import HANG, STUBBORN
from tests.integration.worker_with_slow_handler import SLOW_EVENT
from tests.support import REPO_ROOT, github_payload


@pytest.fixture
def redis_stack(db: str, tmp_path: Path) -> Iterator[Stack]:
    """A Redis of its own (which the test stops and starts), no other process yet."""
    stack = Stack(db, None, tmp_path)
    stack.redis_url = f"redis://127.0.0.1:{stack.redis_port}/0"
    yield stack
    stack.stop()


def _worker_env(stack: Stack, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "SPECBRIDGE_"))}
    env.update(DATABASE_URL=stack.database_url, REDIS_URL=stack.redis_url or "")
    env.update(GITHUB_API_URL="http://127.0.0.1:9", GITHUB_TOKEN="t")
    env.update(PYTHONPATH=str(REPO_ROOT), SPECBRIDGE_HEARTBEAT_SECONDS="1", **extra)
    return env


def _start_worker(stack: Stack, github_api_url: str = "http://127.0.0.1:9") -> None:
    env = _worker_env(stack, GITHUB_API_URL=github_api_url)
    stack._spawn("worker", [sys.executable, "-m", "bot.cli", "worker"], env)


def _settings(stack: Stack) -> Settings:
    return load_settings({"DATABASE_URL": stack.database_url, "REDIS_URL": stack.redis_url})


def _delivery_processed(stack: Stack, delivery_id: str, delay: float = 0) -> None:
    settings = _settings(stack)
    # A delivery a handler takes (one that needs none gets no job), reaching no GitHub.
    payload = github_payload("installation", "created.payload.json")
    payload["repositories"] = []
    stored = store_delivery(settings, delivery_id, "installation", payload)
    due = datetime.now(UTC) + timedelta(seconds=delay) if delay else None
    queue_delivery(settings, stored.pk, queue_name=stored.queue_name, due=due)

    def finished() -> bool:
        with session_scope(stack.database_url) as session:
            delivery = session.get(Delivery, stored.pk)
            return delivery is not None and delivery.status is DeliveryStatus.DONE

    try:
        wait_until(finished, 60, f"delivery {delivery_id} processed")
    except AssertionError as error:
        raise AssertionError((stack.workdir / "worker.log").read_text()[-4000:]) from error


def test_a_worker_whose_redis_goes_away_during_a_job_works_on(redis_stack: Stack) -> None:
    """RQ quits when it cannot record a job's end; `specbridge worker` waits for Redis."""
    redis_stack.start_redis()
    with _slow_github(seconds=3) as github:
        _start_worker(redis_stack, github)
        _delivery_processed(redis_stack, "before")
        connection = Redis.from_url(redis_stack.redis_url or "")
        # A push whose handler waits 3 s on GitHub for the branch's head.
        stored = store_delivery(_settings(redis_stack), "slow", "push", SPEC_PUSH)
        queue_delivery(_settings(redis_stack), stored.pk)
        wait_until(lambda: connection.llen(f"rq:queue:{EVENTS}") == 0, 30, "the job to start")

        redis_stack.kill("redis")  # while the job runs
        time.sleep(4)
        redis_stack.start_redis()
        _delivery_processed(redis_stack, "after")
    assert redis_stack.processes["worker"].poll() is None


def test_a_worker_works_on_after_redis_restarts_empty(redis_stack: Stack) -> None:
    redis_stack.start_redis()
    _start_worker(redis_stack)
    _delivery_processed(redis_stack, "before-restart")

    redis_stack.kill("redis")
    redis_stack.start_redis()
    _delivery_processed(redis_stack, "after-restart")
    assert redis_stack.processes["worker"].poll() is None


def test_a_delayed_job_runs_when_due_though_a_killed_workers_scheduler_holds_rqs_lock(
    redis_stack: Stack,
) -> None:
    """RQ's scheduler runs in one worker at a time, under a lock a SIGKILLed holder
    leaves for 61 s, and another worker tries to take it only at its start and every
    10 minutes: delayed jobs (a paused sync's continuation, a retry) stalled. Each
    worker moves due jobs itself."""
    redis_stack.start_redis()
    connection = Redis.from_url(redis_stack.redis_url or "")
    for name in QUEUES:  # as the scheduler of a worker killed a moment ago left them
        connection.set(f"rq:scheduler-lock:{name}", "a-killed-worker", ex=61)
    _start_worker(redis_stack)
    _delivery_processed(redis_stack, "now")

    _delivery_processed(redis_stack, "in-two-seconds", delay=2)


def test_the_process_that_moves_delayed_jobs_is_started_again_when_it_dies(
    redis_stack: Stack,
) -> None:
    redis_stack.start_redis()
    _start_worker(redis_stack)
    _delivery_processed(redis_stack, "before")
    worker = redis_stack.processes["worker"].pid

    def dispatcher() -> int | None:
        """The helper process whose thread `sb-dispatcher` runs the dispatcher."""
        listing = subprocess.run(
            ["ps", "-L", "--ppid", str(worker), "-o", "pid=,comm="], capture_output=True, text=True
        )
        found = [line.split() for line in listing.stdout.splitlines()]
        return next((int(pid) for pid, comm in found if comm == "sb-dispatcher"), None)

    first = wait_until(dispatcher, 30, "the dispatcher")
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: dispatcher() not in (None, first), 30, "a new dispatcher")

    _delivery_processed(redis_stack, "after", delay=1)
    assert redis_stack.processes["worker"].poll() is None


def test_a_worker_without_an_events_lane_still_moves_delayed_jobs(redis_stack: Stack) -> None:
    """The helper loops run in the events lane; a worker of the agents queue alone runs
    them in a process of their own."""
    redis_stack.start_redis()
    env = _worker_env(redis_stack)
    command = [sys.executable, "-m", "bot.cli", "worker", "--queue", "agents"]
    redis_stack._spawn("worker", command, env)
    settings = _settings(redis_stack)
    stored = store_delivery(
        settings, "later", "installation", github_payload("installation", "created.payload.json")
    )
    queue_delivery(settings, stored.pk, due=datetime.now(UTC) + timedelta(seconds=1))
    connection = Redis.from_url(redis_stack.redis_url or "")
    # No lane here works the events queue: the job waits there once moved.
    wait_until(lambda: connection.llen(f"rq:queue:{EVENTS}") == 1, 30, "the job moved")
    assert redis_stack.processes["worker"].poll() is None


SPEC_PUSH = {
    "ref": "refs/heads/main",
    "repository": {"id": 1, "full_name": "acme/rocket", "name": "rocket", "default_branch": "main"},
    "commits": [{"added": ["specs/rocket.yaml"], "modified": [], "removed": []}],
    "sender": {"login": "octocat", "type": "User"},
}


@contextmanager
def _slow_github(seconds: float) -> Iterator[str]:
    """A GitHub that answers every request 404, after `seconds`."""

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(seconds)
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"message": "Not Found"}')

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def test_a_worker_runs_no_job_that_specbridge_did_not_queue(
    redis_stack: Stack, tmp_path: Path
) -> None:
    """An agent that reaches Redis can push jobs; none of them runs in the worker."""
    redis_stack.start_redis()
    _start_worker(redis_stack)
    connection = Redis.from_url(redis_stack.redis_url or "")
    marks = [tmp_path / f"pwned-{n}" for n in range(3)]
    # As RQ's own client does it (pickle, which runs code as it loads) ...
    Queue(EVENTS, connection=connection).enqueue(os.system, f"touch {marks[0]}")
    pickled = Queue(EVENTS, connection=connection)
    pickled.enqueue(Path.touch, marks[1])
    # ... and as JSON naming a function that is not ours.
    json_queue = Queue(EVENTS, connection=connection, serializer=JSONSerializer)
    json_queue.enqueue("os.system", f"touch {marks[2]}")

    _delivery_processed(redis_stack, "after-the-intruders")  # the worker works on
    assert [mark.exists() for mark in marks] == [False, False, False]
    assert redis_stack.processes["worker"].poll() is None
    assert "is not a specbridge job" in (redis_stack.workdir / "worker.log").read_text()


def test_a_delivery_whose_worker_is_killed_is_taken_back_by_another(
    redis_stack: Stack, tmp_path: Path
) -> None:
    """SIGKILLed mid-delivery, a worker leaves its RQ job `started` until RQ's job
    timeout (15 minutes); its lease runs out in seconds, and another worker runs it.

    The lease (3 s) and the sweep (every 2 s) are shortened; at their defaults
    (40 s, 10 s) the same happens within a minute.
    """
    redis_stack.start_redis()
    marks = tmp_path / "marks"
    marks.mkdir()
    env = _worker_env(redis_stack, SPECBRIDGE_DELIVERY_LEASE_SECONDS="3", SLOW_MARKS=str(marks))
    command = [sys.executable, str(REPO_ROOT / "tests/integration/worker_with_slow_handler.py")]
    for name in ("worker1", "worker2"):
        redis_stack._spawn(name, command, env)
    settings = load_settings(
        {"DATABASE_URL": redis_stack.database_url, "REDIS_URL": redis_stack.redis_url or ""}
    )
    stored = store_delivery(settings, "slow", SLOW_EVENT, {})
    queue_delivery(settings, stored.pk)

    def started() -> str | None:
        path = marks / "started"
        return path.read_text() if path.exists() and path.stat().st_size else None

    holder = int(wait_until(started, 60, "a worker to start the delivery"))
    [victim] = [name for name, process in redis_stack.processes.items() if process.pid == holder]
    redis_stack.kill(victim)
    killed_at = time.monotonic()

    def processed() -> bool:
        with session_scope(redis_stack.database_url) as session:
            delivery = session.get(Delivery, stored.pk)
            return delivery is not None and delivery.status is DeliveryStatus.DONE

    try:
        wait_until(processed, 60, "the delivery processed by the other worker")
    except AssertionError as error:
        logs = [(tmp_path / f"{n}.log").read_text()[-3000:] for n in ("worker1", "worker2")]
        raise AssertionError("\n".join(logs)) from error
    assert time.monotonic() - killed_at < 60
    survivor = "worker2" if victim == "worker1" else "worker1"
    assert int((marks / "done").read_text()) == redis_stack.processes[survivor].pid
    with session_scope(redis_stack.database_url) as session:
        assert session.get_one(Delivery, stored.pk).attempts == 2


@pytest.mark.parametrize("event", [HANG, STUBBORN])
def test_a_job_that_hangs_in_the_warm_worker_is_killed_and_the_worker_goes_on(
    redis_stack: Stack, tmp_path: Path, event: str
) -> None:
    """A job past its timeout is stopped by RQ's alarm in the warm process, which works
    on; one that blocks the alarm has its process killed and started again by the
    supervisor, which works on too."""
    redis_stack.start_redis()
    marks = tmp_path / "marks"
    marks.mkdir()
    env = _worker_env(redis_stack, HANG_MARKS=str(marks))
    command = [sys.executable, str(REPO_ROOT / "tests/integration/worker_with_hanging_handler.py")]
    redis_stack._spawn("worker", command, env)
    settings = _settings(redis_stack)
    stored = store_delivery(settings, f"hang-{event}", event, {})
    enqueue(settings, INTERACTIVE, process_delivery, stored.pk, job_id="hang", timeout=2)
    started = time.monotonic()
    hung_in = int(wait_until(lambda: _read(marks / event), 60, "the job to start"))

    def quick_done(name: str) -> str | None:
        quick = store_delivery(settings, name, "specbridge_test_quick", {})
        queue_delivery(settings, quick.pk, queue_name=quick.queue_name)
        return wait_until(lambda: _read(marks / f"quick-{name}"), 60, f"{name} processed")

    worked_in = int(quick_done("after-the-hang"))
    assert time.monotonic() - started < 30
    if event == HANG:
        assert worked_in == hung_in  # the same warm process went on
    else:
        assert worked_in != hung_in  # killed, and a new one took over
        with pytest.raises(ProcessLookupError):
            os.kill(hung_in, 0)
    assert redis_stack.processes["worker"].poll() is None
    with session_scope(redis_stack.database_url) as session:
        delivery = session.get_one(Delivery, stored.pk)
        assert delivery.status is not DeliveryStatus.DONE  # to be retried, not lost
    assert int(quick_done("and-again")) == worked_in  # warm: one process, many jobs


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() and path.stat().st_size else None
