"""`specbridge worker`: two lanes of RQ workers, watched by the process you start.

The events lane takes the interactive queue first, then the bulk `events` queue
(RQ takes queues in the order given), in one long-lived process: a job costs a
few milliseconds there, where forking a work horse per job cost ~55 ms and a
new database connection. What the fork gave is kept: a job past its timeout is
stopped by RQ's death penalty (SIGALRM in the job), and a process that is still
in the job HANG_GRACE_SECONDS later (the alarm blocked, a hang in C) or that
died (a crash) is killed and started again by the supervisor, which goes on. A
delivery whose job died is run again once its lease lapses (bot/events/deliveries.py).
The process is also replaced after MAX_JOBS_PER_PROCESS jobs.

The agents lane forks a process per agent run (agents run untrusted code in a
sandbox), as RQ's Worker does, so a long run never holds up the events lane.

Beside the jobs run the helper loops, a thread each: the periodic chores, those
that wait on GitHub (bot/events/maintenance.py), and the dispatcher, which turns
announced deliveries and delayed jobs whose time has come into queue jobs each
second (bot/queue.py, `move_due_jobs`). They run in the events lane's process
(which forks nothing, so a thread there can leave no lock held in a child) and
end and start again with it; a worker without an events lane runs them in a
helper process of their own, watched the same way. RQ's own scheduler is not
started: every worker moves due jobs, so one runs on time while any worker lives.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_for_any
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from rq import SimpleWorker, Worker, worker_registration
from rq.serializers import JSONSerializer
from sqlalchemy.orm import configure_mappers

from bot.agents.isolation import hide_environment_from_children
from bot.events import handlers, maintenance
from bot.events.deliveries import run_dispatcher
from bot.logs import configure_logging
from bot.queue import (
    EVENT_QUEUES,
    EVENTS,
    INTERACTIVE,
    JOB_TIMEOUT_SECONDS,
    QUEUES,
    FailuresInContext,
    OurJob,
    redis_connection,
    rq_queue,
)
from bot.settings import Settings
from storage.db import connections_note, get_engine

# What jobs import, loaded once here: the lanes' processes (and RQ's work horses)
# inherit these instead of importing them again (about 190 ms a job otherwise).
JOB_MODULES = ("bot.events.deliveries", "bot.agents.run", "bot.sync", "bot.github")
REDIS_RETRY_SECONDS = 2
# A warm process still in a job this long after the job's timeout is killed.
HANG_GRACE_SECONDS = 10.0
# A warm process is replaced after this many jobs (whatever it may leak goes with it).
MAX_JOBS_PER_PROCESS = 5000
# A lane that died sooner than this after it started waits before it starts again.
QUICK_DEATH_SECONDS = 5.0

log = logging.getLogger(__name__)

T = TypeVar("T")


def preload(database_url: str) -> None:
    """Load what a job or a delivery needs, once, and keep it out of the collector's way.

    Call it in the process that forks the others, before it forks (`specbridge
    worker`'s supervisor, gunicorn's master): they inherit it all, shared."""
    handlers.load()
    for module in JOB_MODULES:
        importlib.import_module(module)
    configure_mappers()
    # The engine, its dialect and the database driver (psycopg, ~5 MiB): made here,
    # not once in each forked process. It holds no connection until one is asked for.
    get_engine(database_url)
    # What is loaded now lives as long as the process. Frozen, a full collection no
    # longer walks it: it was ~115,000 objects and ~50 ms, a pause every few seconds
    # under load (the webhook's p99 was 38 ms, 14 ms frozen). Forked processes share
    # it untouched too (the use gc.freeze's documentation gives): the collection
    # before the freeze writes to every object, so it runs here, never after a fork.
    gc.collect()
    gc.freeze()


def run_apart(function: Callable[[], T]) -> T:
    """function() in a forked process that ends with it; its result, or its exception
    raised here. What it imports and allocates goes with that process: a process that
    forks long-lived others (the supervisor, gunicorn's master) would keep it in the
    pages they all share. Migrating or checking the schema loads alembic, mako and the
    migration scripts (~10 MiB) that no job needs."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_send_outcome, args=(send, function))
    process.start()
    send.close()
    try:
        failed, outcome = receive.recv()
    except EOFError:
        failed, outcome = True, RuntimeError(f"{function} died (exit status {process.exitcode})")
    finally:
        receive.close()
        process.join()
    if failed:
        raise outcome
    return outcome  # type: ignore[no-any-return]


def _send_outcome(send: Any, function: Callable[[], object]) -> None:
    try:
        outcome: tuple[bool, object] = (False, function())
    except BaseException as error:  # whatever it raised is raised in the parent
        outcome = (True, error)
    try:
        send.send(outcome)
    except Exception:  # it does not pickle: its traceback as text
        failed, value = outcome
        text = "".join(traceback.format_exception(value)) if failed else repr(value)
        send.send((True, RuntimeError(text)))


def freeze_after_fork() -> None:
    """In a forked process: what it loaded since is kept out of the collector's way too,
    with no collection first (one would write to every page shared with its parent)."""
    gc.freeze()


def lane_queues(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """The queues of the events lane (interactive first) and of the agents lane.

    A worker asked for the `events` queue takes the interactive one too: it is the
    part of what `events` held before that people wait for.
    """
    wanted = set(names)
    if EVENTS in wanted:
        wanted.add(INTERACTIVE)
    unknown = wanted - set(QUEUES)
    events = [name for name in QUEUES if name in wanted and name in EVENT_QUEUES]
    agents = [name for name in QUEUES if name in wanted and name not in EVENT_QUEUES]
    return events, agents + sorted(unknown)


def run_worker(settings: Settings, queue_names: Sequence[str] | None = None) -> None:
    if settings.redis_url is None:
        raise SystemExit(
            "specbridge worker needs REDIS_URL; without it `specbridge serve` runs jobs"
        )
    configure_logging(settings)
    hide_environment_from_children()
    preload(settings.database_url)
    events, agents = lane_queues(list(queue_names or QUEUES))
    lanes = []
    if events:
        lanes.append(Lane("events", events, warm=True, loops=HELPER_LOOPS))
    if agents:
        lanes.append(Lane("agents", agents, warm=False))
    helpers = [] if events else [Helper("helpers", run_loops, (HELPER_LOOPS,))]
    # This process, its lanes (and helper process), and the agents lane's work horse.
    note = connections_note(
        settings.database_url, 1 + len(helpers) + len(lanes) + (1 if agents else 0)
    )
    if note:
        log.info("%s", note)
    supervise(settings, lanes, helpers)


# A helper loop: its name, and what it runs (with the settings and these arguments)
# for as long as the supervisor lives.
Loop = tuple[str, Callable[..., None], tuple[Any, ...]]
HELPER_LOOPS: tuple[Loop, ...] = (
    ("chores", maintenance.run_while_parent_lives, (maintenance.CHORES,)),
    ("gh-chores", maintenance.run_while_parent_lives, (maintenance.GITHUB_CHORES,)),
    # Announced deliveries become queue jobs here, not in the web process, and
    # delayed jobs whose time has come too (bot/events/deliveries.py).
    ("dispatcher", run_dispatcher, ()),
)


def run_loops(settings: Settings, loops: Sequence[Loop]) -> None:
    """Each loop on a thread of this process, until one ends (the supervisor gone, or a
    bug); then this returns, and the process's end gets them started again.

    Not in processes of their own: a process forked from the supervisor copies the
    pages of the code it runs (CPython writes reference counts and its specialized
    bytecode into the objects and code it uses), and the loops run the database code
    the events lane's jobs run. After a 200-task sync, what the loops' processes held
    alone was 35 MiB as three processes, 20 as one; as threads of the events lane, ~1."""
    threads = [
        threading.Thread(target=_run_loop, args=(name, loop, settings, *args), daemon=True)
        for name, loop, args in loops
    ]
    for thread in threads:
        thread.start()
    while all(thread.is_alive() for thread in threads):
        time.sleep(0.5)


def _loops_then_stop(settings: Settings, loops: Sequence[Loop]) -> None:
    """In a lane: the helper loops; should one end, the lane stops after its job (RQ's
    warm shutdown) and the supervisor starts it again, the loops with it."""
    run_loops(settings, loops)
    log.error("a helper loop of the %s ended: stopping it", multiprocessing.current_process().name)
    os.kill(os.getpid(), signal.SIGTERM)


def _run_loop(name: str, loop: Callable[..., None], *args: Any) -> None:
    threading.current_thread().name = name
    _name_process(f"sb-{name}")  # the thread's name in `ps -L` and top
    loop(*args)


class JobClock:
    """When the warm process's current job must be over, in memory both processes see."""

    def __init__(self) -> None:
        self._deadline = multiprocessing.get_context("fork").Value("d", 0.0, lock=False)

    def start(self, timeout: float) -> None:
        self._deadline.value = time.time() + timeout + HANG_GRACE_SECONDS

    def stop(self) -> None:
        self._deadline.value = 0.0

    def overdue(self) -> bool:
        deadline = self._deadline.value
        return bool(deadline) and time.time() > deadline


class Registered:
    """An RQ worker that puts itself back in RQ's registry of workers at each heartbeat:
    Redis restarted empty forgets them, and the fleet counts the agent slots by them
    (bot.queue.agent_slots), so a worker left out would be a slot never used."""

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        super().heartbeat(timeout, pipeline)  # type: ignore[misc]
        worker_registration.register(self, pipeline)  # two set additions: no change if in


class ForkingWorker(Registered, FailuresInContext, Worker):
    """RQ's Worker (a work horse forked per job), its failed jobs' lines in context."""


class WarmWorker(Registered, FailuresInContext, SimpleWorker):
    """Runs each job in this long-lived process; RQ's death penalty (SIGALRM) stops a
    job at its timeout, and the clock tells the supervisor when that did not work."""

    clock: JobClock | None = None

    def execute_job(self, job: Any, queue: Any) -> None:
        if self.clock is not None:
            self.clock.start(job.timeout or JOB_TIMEOUT_SECONDS)
        try:
            super().execute_job(job, queue)
        finally:
            if self.clock is not None:
                self.clock.stop()


@dataclass
class Lane:
    """One RQ worker process and its queues, started again whenever it ends."""

    name: str
    queues: list[str]
    warm: bool
    # Helper loops run on threads of the lane's process: a warm lane's only (a lane that
    # forks a work horse per job could fork while a thread holds a lock).
    loops: tuple[Loop, ...] = ()
    clock: JobClock | None = None
    process: BaseProcess | None = None
    started_at: float = 0.0
    restarts: int = field(default=0)

    def start(self, settings: Settings) -> None:
        assert self.warm or not self.loops
        self.clock = JobClock() if self.warm else None
        self.process = multiprocessing.get_context("fork").Process(
            target=_run_lane,
            args=(settings, self.name, self.queues, self.warm, self.clock, self.loops),
            name=f"specbridge-{self.name}",
        )
        self.process.start()
        self.started_at = time.monotonic()
        log.info(
            "%s lane started (pid %s): %s", self.name, self.process.pid, ", ".join(self.queues)
        )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.pid is not None and self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL the lane's process and what it forked (a work horse)."""
        if self.process is None or self.process.pid is None:
            return
        for pid in _children(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(10)


@dataclass
class Helper:
    """A process beside the lanes that runs `target(settings, *args)` until its parent
    (the supervisor) is gone; started again whenever it ends. `ps -o comm` shows it
    as `sb-<name>`."""

    name: str
    target: Callable[..., None]
    args: tuple[Any, ...] = ()
    process: BaseProcess | None = None
    started_at: float = 0.0
    restarts: int = field(default=0)

    def start(self, settings: Settings) -> None:
        # A daemon: it ends with the supervisor (the helpers also watch their parent).
        self.process = multiprocessing.get_context("fork").Process(
            target=_run_helper,
            args=(settings, self.name, self.target, self.args),
            name=f"specbridge-{self.name}",
            daemon=True,
        )
        self.process.start()
        self.started_at = time.monotonic()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()


def supervise(settings: Settings, lanes: list[Lane], helpers: Sequence[Helper] = ()) -> None:
    """Start the lanes and helpers; start again one that ends, kill a lane whose job hangs;
    on SIGTERM or SIGINT pass it on to the lanes (RQ's warm shutdown; a second one is its
    cold shutdown) and wait for them."""
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for lane in lanes:
            lane.signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for process in (*helpers, *lanes):
        process.start(settings)
    while True:
        if stopping:
            if not any(lane.alive for lane in lanes):
                return
        else:
            for lane in lanes:
                if lane.clock is not None and lane.alive and lane.clock.overdue():
                    log.error(
                        "%s lane (pid %s) is still in a job past its timeout: killed",
                        lane.name,
                        lane.process.pid if lane.process else None,
                    )
                    lane.kill()
                if not lane.alive and not stopping:
                    _restart(settings, lane)
            for helper in helpers:
                if not helper.alive:
                    _restart(settings, helper)
        sentinels = [lane.process.sentinel for lane in lanes if lane.process and lane.alive]
        if sentinels:
            wait_for_any(sentinels, timeout=0.5)
        else:
            time.sleep(0.5)


def _restart(settings: Settings, watched: Lane | Helper) -> None:
    assert watched.process is not None
    watched.process.join(1)
    code = watched.process.exitcode
    # A lane ends by itself after MAX_JOBS_PER_PROCESS jobs; a helper never should.
    if code not in (0, None) or isinstance(watched, Helper):
        what = f"{watched.name} lane" if isinstance(watched, Lane) else watched.name
        log.warning("%s (pid %s) ended with %s", what, watched.process.pid, code)
    if time.monotonic() - watched.started_at < QUICK_DEATH_SECONDS and code != 0:
        time.sleep(REDIS_RETRY_SECONDS)
    watched.restarts += 1
    watched.start(settings)


def _run_helper(
    settings: Settings, name: str, target: Callable[..., None], args: tuple[Any, ...]
) -> None:
    _die_with_parent()
    _name_process(f"sb-{name}")
    target(settings, *args)


def _run_lane(
    settings: Settings,
    name: str,
    names: list[str],
    warm: bool,
    clock: JobClock | None,
    loops: Sequence[Loop] = (),
) -> None:
    _die_with_parent()
    _name_process(f"sb-{name}")
    os.setpgrp()  # a Ctrl-C reaches the supervisor alone, which passes it on once
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if loops:
        threading.Thread(target=_loops_then_stop, args=(settings, loops), daemon=True).start()
    if warm:
        worker_class: type[Worker] | type[SimpleWorker] = WarmWorker
        max_jobs: int | None = MAX_JOBS_PER_PROCESS
    else:
        worker_class, max_jobs = ForkingWorker, None
    work_until_stopped(settings, names, worker_class, clock, max_jobs)
    sys.exit(0)


def work_until_stopped(
    settings: Settings,
    names: Sequence[str],
    worker_class: type[Worker] | type[SimpleWorker] = Worker,
    clock: JobClock | None = None,
    max_jobs: int | None = None,
) -> None:
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
            worker = worker_class(
                [rq_queue(settings.redis_url, n) for n in names],
                connection=connection,
                job_class=OurJob,
                serializer=JSONSerializer,
            )
            if isinstance(worker, WarmWorker):
                worker.clock = clock
            # No RQ scheduler: the dispatcher moves due jobs (bot/queue.py, move_due_jobs).
            worker.work(with_scheduler=False, max_jobs=max_jobs)
            return
        except RedisConnectionError as error:
            log.warning("Redis is unreachable (%s); working again once it answers", error)
        # RQ's signal handlers belong to the worker that quit: a stop now ends the process.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        time.sleep(REDIS_RETRY_SECONDS)


def _die_with_parent() -> None:
    """A lane or helper outlives no supervisor killed with SIGKILL (Linux; elsewhere it
    is left)."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _name_process(name: str) -> None:
    """What `ps -o comm` and top show for the calling thread (the process, called from
    its main thread; Linux, 15 bytes at most)."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, name.encode()[:15])  # PR_SET_NAME


def _children(pid: int) -> list[int]:
    """Every descendant of pid (Linux's /proc; none elsewhere)."""
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        path = f"/proc/{parent}/task/{parent}/children"
        try:
            with open(path) as listing:
                kids = [int(k) for k in listing.read().split()]
        except OSError:
            kids = []
        found += kids
        frontier += kids
    return found
