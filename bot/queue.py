"""RQ queues on Redis, or the embedded in-process queue when there is no Redis.

Jobs are named by import path and take only ids, so a worker on another
machine loads everything else from the database itself. A job may carry an id
of our choosing (`delivery-42`), so the outbox can ask whether it is still
pending after Redis restarted with nothing in it.

Whoever can write to Redis can put a job on a queue. So a worker runs only the
functions named in JOBS, with arguments stored as JSON (RQ's default, pickle,
runs code as it loads): anything else is failed and logged, never imported.

A delayed job (a delay given to `enqueue`, a retry of RQ's `Retry`) waits in
RQ's scheduled registry until `move_due_jobs` puts it on its queue, which every
worker does each second (bot/events/worker.py). RQ's own scheduler is not used:
it runs in one worker at a time, under a lock another worker tries to take only
at its start and every 10 minutes (a killed holder's lock lives 61 s), and a
scheduler process that fails goes unnoticed: delayed jobs then wait for minutes.
Any number of movers at once move each job once (one Lua script, atomic in Redis).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from redis import Redis
from redis.commands.core import Script
from rq import Queue, Retry, Worker
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer
from rq.utils import utcformat

from bot.logs import failure_context, log_context
from bot.settings import Settings

log = logging.getLogger(__name__)

# Work people wait for (comments, card moves, pull request checks): every worker
# takes it before anything else.
INTERACTIVE = "interactive"
# Work nobody watches as it happens (syncs of pushes and installations, their
# continuations): taken when no interactive work waits.
EVENTS = "events"
AGENTS = "agents"
# In the order a worker takes them.
QUEUES = (INTERACTIVE, EVENTS, AGENTS)
# The queues of deliveries and the jobs they lead to (all but agents' runs).
EVENT_QUEUES = (INTERACTIVE, EVENTS)
# The only functions a worker runs.
JOBS = frozenset(
    {
        "bot.events.deliveries.process_delivery",
        "bot.agents.run.run_task",
        "bot.agents.hosted.dispatch_task",
        "bot.agents.pull_checks.look_again",
        "bot.sync.repository_sync.resume_spec",
        # Continuations queued before an upgrade name it by its former home (re-exported).
        "bot.sync.resume_spec",
        "bot.sync.progress.refresh_tracking",
        "bot.sync.write_back.write_back",
        "bot.agents.planning.run_planning",
        "bot.agents.freshen.freshen_pull_requests",
    }
)
JOB_TIMEOUT_SECONDS = 15 * 60
# A job in these states will still run (or is running).
PENDING_STATES = {
    JobStatus.QUEUED,
    JobStatus.SCHEDULED,
    JobStatus.DEFERRED,
    JobStatus.STARTED,
}


class ForeignJob(RuntimeError):
    """A job on our queue that specbridge did not put there."""


@dataclass
class RunningJob:
    """The queue job this code runs in: its queue, and what its parts share."""

    queue_name: str
    shared: dict[str, Any] = field(default_factory=dict)


_running: ContextVar[RunningJob | None] = ContextVar("specbridge_running_job", default=None)


# Set in Redis when a person's comment or card move is handled, for this long: people
# who asked once may ask again, and bulk work keeps its requests short meanwhile.
PEOPLE_LATELY_KEY = "specbridge:people-lately"
PEOPLE_LATELY_SECONDS = 600


def note_people(settings: Settings) -> None:
    """A person is waiting for an answer now (see PEOPLE_LATELY_KEY)."""
    if settings.redis_url is None:
        return
    with contextlib.suppress(Exception):  # a hint for bulk work, never a failure
        redis_connection(settings.redis_url).set(PEOPLE_LATELY_KEY, 1, ex=PEOPLE_LATELY_SECONDS)


def people_lately(settings: Settings) -> bool:
    """Whether a person's comment or card move was handled in the last
    PEOPLE_LATELY_SECONDS (`note_people`)."""
    if settings.redis_url is None:
        return False
    try:
        return bool(redis_connection(settings.redis_url).exists(PEOPLE_LATELY_KEY))
    except Exception:  # Redis away: no queue, nobody waits on it
        return False


@contextmanager
def running_job(queue_name: str) -> Iterator[RunningJob]:
    token = _running.set(RunningJob(queue_name))
    try:
        yield _running.get()  # type: ignore[misc]
    finally:
        _running.reset(token)


def current_job() -> RunningJob | None:
    """The queue job running here (None outside one: a command, the web process)."""
    return _running.get()


def interactive_waiting(settings: Settings) -> bool:
    """Interactive work waits with no worker free to take it (an idle RQ worker blocked
    on the queue takes a job the moment it is pushed, so it never waits in the list).

    Without Redis the interactive queue has a thread of its own: only a job on that
    thread holds it up.
    """
    if settings.redis_url is None:
        mine = threading.current_thread().name == f"embedded-{INTERACTIVE}"
        return mine and embedded_queue(INTERACTIVE).waiting > 0
    try:
        return bool(redis_connection(settings.redis_url).llen(f"rq:queue:{INTERACTIVE}"))
    except Exception:  # Redis away: nobody can be waiting on it
        return False


def agent_slots(settings: Settings) -> int | None:
    """How many agent runs the workers take at once: one per `specbridge worker` listening
    on the agents queue (its agents lane), at least one (a worker starting takes the job
    queued for it). None: no count (no Redis, or Redis away): the embedded queue runs its
    own jobs in turn.

    A worker killed without a goodbye is counted until RQ cleans its key: a slot too
    many, never a run that waits for ever."""
    if settings.redis_url is None:
        return None
    try:
        workers = Worker.count(queue=rq_queue(settings.redis_url, AGENTS))
    except Exception:  # Redis away: the job cannot be queued either; the chore comes back
        return None
    return max(workers, 1)


class FailuresInContext:
    """For an RQ worker: its line for a failed job carries the ids (delivery, task,
    repository…) of the log context the job failed in, as the job's own lines did."""

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        with log_context(**failure_context(exc_info[1])):
            super().handle_exception(job, *exc_info)  # type: ignore[misc]


class OurJob(Job):
    """A job that resolves only to a function of JOBS, and runs no callback."""

    @property
    def func(self) -> Callable[..., Any]:
        if self.func_name not in JOBS or self.instance is not None:
            log.error("refused job %s: %r is not a specbridge job", self.id, self.func_name)
            raise ForeignJob(f"{self.func_name!r} is not a specbridge job")
        return super().func

    def perform(self) -> Any:
        with running_job(self.origin):
            return super().perform()

    # Callbacks are named by import path too; ours set none.
    success_callback = failure_callback = stopped_callback = property(lambda self: None)


def job_name(job: Callable[..., Any]) -> str:
    return f"{job.__module__}.{job.__qualname__}"


def rq_queue(redis_url: str, name: str) -> Queue:
    """One of our RQ queues, holding JSON and running only jobs of ours."""
    return Queue(
        name,
        connection=redis_connection(redis_url),
        serializer=JSONSerializer,
        job_class=OurJob,
    )


@cache
def redis_connection(redis_url: str) -> Redis:
    # Bounded waits: an unreachable Redis must fail a call in seconds, not hang a request.
    return Redis.from_url(
        redis_url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30
    )


def enqueue(
    settings: Settings,
    queue_name: str,
    job: Callable[..., Any],
    *args: Any,
    job_id: str | None = None,
    delay: float = 0,
    timeout: int = JOB_TIMEOUT_SECONDS,
    retry_intervals: Sequence[int] = (),
) -> None:
    """Queue `job(*args)`; raises when the queue cannot take it (Redis down)."""
    if job_name(job) not in JOBS:
        raise ValueError(f"{job_name(job)} is not in bot.queue.JOBS: a worker would refuse it")
    if settings.redis_url is None:
        embedded_queue(queue_name).put(job, args, job_id, delay, list(retry_intervals))
        return
    target = rq_queue(settings.redis_url, queue_name)
    # Nothing reads a job's return value: a finished job is deleted at once, sparing
    # the writes RQ makes to keep it (500 s by default). A failed one is kept.
    options: dict[str, Any] = {"job_id": job_id, "job_timeout": timeout, "result_ttl": 0}
    if retry_intervals:
        options["retry"] = Retry(max=len(retry_intervals), interval=list(retry_intervals))
    if delay > 0:
        target.enqueue_in(timedelta(seconds=delay), job, *args, **options)
    else:
        target.enqueue(job, *args, **options)


def pending(
    settings: Settings, queue_name: str, job_ids: Iterable[str], started: bool = True
) -> set[str]:
    """Which of these jobs are still waiting or running (two round trips to Redis at most).

    `started=False`: a job RQ says is running does not count. For a job whose
    holder's own lease ran out: a worker killed mid-job leaves it `started`
    until RQ's job timeout (15 minutes), long after the lease said it was dead.
    A job RQ calls scheduled counts only while it is in the registry that
    `move_due_jobs` reads: one that fell out of it will never run.
    The embedded queue runs its jobs in this very process, so there a job it
    holds is always alive.
    """
    ids = list(job_ids)
    if not ids:
        return set()
    if settings.redis_url is None:
        # A job id names one job whichever queue took it (a delivery's queue is its kind).
        names = EVENT_QUEUES if queue_name in EVENT_QUEUES else (queue_name,)
        return set().union(*(embedded_queue(name).pending(ids) for name in names))
    states = PENDING_STATES if started else PENDING_STATES - {JobStatus.STARTED}
    connection = redis_connection(settings.redis_url)
    with connection.pipeline() as pipe:
        for job_id in ids:
            pipe.hmget(Job.key_for(job_id), "status", "origin")
        found = pipe.execute()
    live, scheduled = set(), []
    for job_id, (status, origin) in zip(ids, found, strict=True):
        state = JobStatus(status.decode()) if status is not None else None
        if state is JobStatus.SCHEDULED and state in states:
            scheduled.append((job_id, (origin or b"").decode()))
        elif state in states:
            live.add(job_id)
    if scheduled:
        with connection.pipeline() as pipe:
            for job_id, origin in scheduled:
                pipe.zscore(_scheduled_key(connection, origin), job_id)
            scores = pipe.execute()
        live |= {
            job_id
            for (job_id, _), score in zip(scheduled, scores, strict=True)
            if score is not None
        }
    return live


def not_started(settings: Settings, queue_name: str, job_ids: Iterable[str]) -> set[str]:
    """Which of these jobs wait to start (queued, or delayed): each will read what is
    there when it starts, changes made meanwhile included."""
    ids = list(job_ids)
    if settings.redis_url is None:
        names = EVENT_QUEUES if queue_name in EVENT_QUEUES else (queue_name,)
        return set().union(*(embedded_queue(name).not_started(ids) for name in names))
    return pending(settings, queue_name, ids, started=False)


def enqueue_coalesced(
    settings: Settings,
    queue_name: str,
    job: Callable[..., Any],
    arg: Any,
    job_id: str,
    delay: float,
) -> None:
    """Queue `job(arg)` `delay` seconds from now, once for however many calls come
    before it starts. A call while it runs queues one more, under a second id: the
    running one may have read before the change that called (and RQ cannot queue a
    job id it is running). With both under way, the second has yet to read or is
    reading after the first: one more would repeat it."""
    ids = [job_id, f"{job_id}-again"]
    if not_started(settings, queue_name, ids):
        return
    running = pending(settings, queue_name, ids)
    free = next((candidate for candidate in ids if candidate not in running), None)
    if free is not None:
        enqueue(settings, queue_name, job, arg, job_id=free, delay=delay)


# Moves each due job of one registry to its queue, as RQ's scheduler does
# (Queue._enqueue_job: status queued, enqueued_at, pushed), in one atomic step:
# KEYS are pairs (a scheduled registry, its queue); ARGV: now, enqueued_at as RQ
# writes it, the job keys' prefix, the most to move per registry.
_MOVE_DUE = """
local moved = 0
for i = 1, #KEYS, 2 do
  local due = redis.call('ZRANGEBYSCORE', KEYS[i], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[4]))
  for _, id in ipairs(due) do
    redis.call('ZREM', KEYS[i], id)
    local job = ARGV[3] .. id
    if redis.call('EXISTS', job) == 1 then
      redis.call('HSET', job, 'status', 'queued', 'enqueued_at', ARGV[2])
      redis.call('RPUSH', KEYS[i + 1], id)
      moved = moved + 1
    end
  end
end
return moved
"""
MOVE_BATCH = 1000


def move_due_jobs(settings: Settings) -> int:
    """Put every delayed job whose time has come on its queue; how many were moved.

    Safe to run in any number of processes at once: a job is moved by one of them.
    Without Redis there is nothing to move (the embedded queue's own timers do it).
    """
    if settings.redis_url is None:
        return 0
    connection = redis_connection(settings.redis_url)
    keys = []
    for name in QUEUES:
        keys += [_scheduled_key(connection, name), rq_queue(settings.redis_url, name).key]
    moved = _move_due_script(settings.redis_url)(
        keys=keys,
        args=[time.time(), utcformat(datetime.now(UTC)), Job.key_for(""), MOVE_BATCH],
    )
    return int(moved)


@cache
def _move_due_script(redis_url: str) -> Script:
    return redis_connection(redis_url).register_script(_MOVE_DUE)


def _scheduled_key(connection: Redis, queue_name: str) -> str:
    return ScheduledJobRegistry(queue_name, connection=connection).key


def queue_reachable(settings: Settings) -> bool:
    if settings.redis_url is None:
        return all(embedded_queue(name).alive for name in QUEUES)
    try:
        return bool(redis_connection(settings.redis_url).ping())
    except Exception:  # any connection failure means "not reachable"
        return False


def depth(settings: Settings, queue_name: str) -> int:
    """Jobs waiting in a queue (not counting the running ones)."""
    if settings.redis_url is None:
        return embedded_queue(queue_name).waiting
    return rq_queue(settings.redis_url, queue_name).count


class EmbeddedQueue:
    """Runs one queue's jobs one at a time on a thread of the serving process.

    Each queue has its own thread, so a long agent run never holds up webhooks.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...], str | None, list[int]]]
        self._jobs = queue.Queue()
        self._pending: dict[str, int] = {}  # queued or running, by job id
        self._running: dict[str, int] = {}
        self._pending_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    @property
    def alive(self) -> bool:
        """False only when the worker thread has died; it starts on the first job."""
        return self._thread is None or self._thread.is_alive()

    @property
    def waiting(self) -> int:
        return self._jobs.qsize()

    def put(
        self,
        job: Callable[..., Any],
        args: tuple[Any, ...],
        job_id: str | None = None,
        delay: float = 0,
        retry_intervals: list[int] | None = None,
    ) -> None:
        self._ensure_started()
        self._mark(job_id, +1)
        entry = (job, args, job_id, retry_intervals or [])
        if delay > 0:
            timer = threading.Timer(delay, self._jobs.put, [entry])
            timer.daemon = True
            timer.start()
        else:
            self._jobs.put(entry)

    def pending(self, job_ids: Iterable[str]) -> set[str]:
        with self._pending_lock:
            return {job_id for job_id in job_ids if self._pending.get(job_id)}

    def not_started(self, job_ids: Iterable[str]) -> set[str]:
        with self._pending_lock:
            return {
                job_id
                for job_id in job_ids
                if self._pending.get(job_id, 0) > self._running.get(job_id, 0)
            }

    def join(self) -> None:
        """Wait until every job put so far has run once."""
        self._jobs.join()

    def _mark(self, job_id: str | None, change: int, counts: dict[str, int] | None = None) -> None:
        if job_id is None:
            return
        counts = self._pending if counts is None else counts
        with self._pending_lock:
            count = counts.get(job_id, 0) + change
            if count > 0:
                counts[job_id] = count
            else:
                counts.pop(job_id, None)

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name=f"embedded-{self.name}", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            job, args, job_id, retry_intervals = self._jobs.get()
            started = time.monotonic()
            self._mark(job_id, +1, self._running)
            try:
                with running_job(self.name):
                    job(*args)
            except Exception as error:
                # Logged after the job's context is gone: its ids come with the error.
                with log_context(**failure_context(error)):
                    log.exception("job %s%r failed", job.__name__, args)
                if retry_intervals:
                    self.put(job, args, job_id, retry_intervals[0], retry_intervals[1:])
            finally:
                self._mark(job_id, -1, self._running)
                self._mark(job_id, -1)
                log.debug("job %s ran in %.3fs", job.__name__, time.monotonic() - started)
                self._jobs.task_done()


@cache
def embedded_queue(name: str) -> EmbeddedQueue:
    return EmbeddedQueue(name)
