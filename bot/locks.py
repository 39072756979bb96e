"""One holder at a time: a spec's events are applied one after another.

With Redis the lock is a short lease renewed while it is held, so a holder
that dies frees it within LEASE_SECONDS, not after the longest a holder may
legitimately take. Without Redis every job runs in one process and a thread
lock does. A holder checks `lease.check()` before each write to GitHub: a
lease lost (a long pause, Redis restarted) stops the work before it can
duplicate another holder's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from redis.exceptions import LockError, RedisError

from bot.queue import redis_connection
from bot.settings import Settings

log = logging.getLogger(__name__)

LEASE_SECONDS = 30
# How long an event waits for a spec another worker is syncing before it is
# queued again for later (so a long sync never ties up every worker).
WAIT_SECONDS = 30


class LockBusy(RuntimeError):
    """Another holder kept the lock for longer than we were ready to wait."""


class SlotBusy(LockBusy):
    """Every bulk slot of the installation is taken: the job runs a little later."""


# Bulk jobs (syncs) one installation may run at once, however many workers there are.
# GitHub paces an installation's writes, so a second sync would only wait on the
# first's pace while holding a worker that someone else's work could use.
BULK_JOBS_PER_INSTALLATION = 1


@contextmanager
def bulk_slot(settings: Settings, owner: str) -> Iterator[None]:
    """Held by a bulk job of `owner` (the installation, or the token); SlotBusy at once
    when its every slot is held."""
    stack = ExitStack()
    for n in range(BULK_JOBS_PER_INSTALLATION):
        try:
            stack.enter_context(exclusive(settings, f"bulk:{owner}:{n}", wait=0))
            break
        except LockBusy:
            continue
    else:
        raise SlotBusy(f"{owner} runs {BULK_JOBS_PER_INSTALLATION} bulk job(s) already")
    with stack:
        yield


class LockLost(RuntimeError):
    """The lease ran out while held: stop before writing anything more."""


def spec_lock(full_name: str, spec_key: str) -> str:
    return f"spec:{full_name}:{spec_key}"


def settings_lock(full_name: str) -> str:
    """Held from reading a repository's head to recording its settings there."""
    return f"settings:{full_name}"


def card_lock(full_name: str, issue_number: int) -> str:
    """Held while a ticket's phase and its card change: a person's and an agent's
    moves, in two processes, would otherwise land in either order."""
    return f"card:{full_name}#{issue_number}"


class Lease:
    """What a holder has: a way to check, before each write, that it still holds the lock."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lost = threading.Event()

    def check(self) -> None:
        if self.lost.is_set():
            raise LockLost(f"the lock {self.name} was lost while held")


@contextmanager
def exclusive(settings: Settings, name: str, wait: float = WAIT_SECONDS) -> Iterator[Lease]:
    """Hold the lock `name` across every worker; LockBusy after `wait` seconds.

    Reentrant within a thread: a command that syncs its own spec takes the lock it holds.
    """
    held: dict[str, Lease] = _held.__dict__.setdefault("leases", {})
    if name in held:
        yield held[name]
        return
    with _acquire(settings, name, wait) as lease:
        held[name] = lease
        try:
            yield lease
        finally:
            del held[name]


_held = threading.local()


@contextmanager
def _acquire(settings: Settings, name: str, wait: float) -> Iterator[Lease]:
    if settings.redis_url is None:
        lock = _local_lock(name)
        if not lock.acquire(timeout=wait):
            raise LockBusy(f"{name} is held by another job")
        try:
            yield Lease(name)
        finally:
            lock.release()
        return
    # thread_local=False: the lease is renewed from another thread, which must
    # see the token (redis-py keeps it thread-locally by default).
    lock = redis_connection(settings.redis_url).lock(
        f"specbridge:lock:{name}",
        timeout=LEASE_SECONDS,
        blocking_timeout=wait,
        thread_local=False,
    )
    if not lock.acquire():
        raise LockBusy(f"{name} is held by another worker")
    lease = Lease(name)
    stop = threading.Event()
    renewer = threading.Thread(
        target=_renew, args=(lock, lease, stop), name=f"lease-{name}", daemon=True
    )
    renewer.start()
    try:
        yield lease
    finally:
        stop.set()
        renewer.join()
        try:
            lock.release()
        except LockError:
            log.warning("the lock %s had already lapsed when released", name)


def _renew(lock, lease: Lease, stop: threading.Event) -> None:  # type: ignore[no-untyped-def]
    renewed = time.monotonic()
    while not stop.wait(LEASE_SECONDS / 3):
        try:
            lock.reacquire()
            renewed = time.monotonic()
        except LockError:
            log.error("the lock %s lapsed while held", lease.name)
            lease.lost.set()
            return
        except RedisError:
            # Redis unreachable for a moment: the lease is ours until it would have run out.
            log.warning("could not renew the lock %s", lease.name, exc_info=True)
            if time.monotonic() - renewed >= LEASE_SECONDS:
                lease.lost.set()
                return


_local_locks: dict[str, threading.Lock] = {}
_local_locks_guard = threading.Lock()


def _local_lock(name: str) -> threading.Lock:
    with _local_locks_guard:
        return _local_locks.setdefault(name, threading.Lock())
