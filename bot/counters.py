"""Counters that every specbridge process adds to and `/metrics` reads.

With Redis, several processes make GitHub requests and run syncs: gunicorn
workers, RQ workers and the work horse RQ forks for each job (which exits
when its job ends, taking anything kept in its memory along). So the counts
are kept in Redis hashes, where an increment from any process on any machine
is one atomic HINCRBY and the scrape reads them all at once. Without Redis
there is one process (`specbridge serve` runs the queue inside itself), and
its memory is the right place.

Not prometheus_client's multiprocess mode: it needs one directory shared by
every process, so RQ workers on another machine than the web process would
go uncounted, and the directory must be emptied at each deploy. Not the
database: a write per GitHub request would add a transaction to every read
the sync makes, and a migration.

Counting must never break or slow the work it counts: a Redis that does not
answer is left alone for a while and those counts are lost.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass

from bot.settings import Settings

log = logging.getLogger(__name__)

GITHUB_REQUESTS_KEY = "specbridge:metrics:github_requests"
SYNC_SECONDS_KEY = "specbridge:metrics:sync_seconds"
AGENT_RUNS_KEY = "specbridge:metrics:agent_runs"
AGENT_SECONDS_KEY = "specbridge:metrics:agent_seconds"
DELIVERIES_KEY = "specbridge:metrics:deliveries"
DELIVERY_SECONDS_KEY = "specbridge:metrics:delivery_seconds"
WITHOUT_JOB_KEY = "specbridge:metrics:deliveries_without_job"
# Upper bounds (seconds) of the duration histograms' buckets.
SYNC_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
AGENT_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0)
DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0)
# After Redis failed to take a count, counting pauses this long.
BACKOFF_SECONDS = 30.0


@dataclass(frozen=True)
class Histogram:
    buckets: list[tuple[float, float]]  # cumulative: (upper bound, observations ≤ it), up to inf
    count: float
    sum: float


def count_github_request(settings: Settings, kind: str, status: str) -> None:
    """One request to GitHub of `kind` (rest_read, graphql_mutation…) answered `status`."""
    _store(settings).increment({GITHUB_REQUESTS_KEY: {f"{kind}|{status}": 1}})


def count_delivery_without_job(settings: Settings, event: str, reason: str) -> None:
    """A delivery stored as ignored at once, with no job: `reason` why it needs none."""
    _store(settings).increment({WITHOUT_JOB_KEY: {f"{event}|{reason}": 1}})


def observe_sync(settings: Settings, seconds: float) -> None:
    """One spec synced in `seconds`."""
    _store(settings).increment({SYNC_SECONDS_KEY: _observation(SYNC_BUCKETS, seconds)})


def observe_agent_run(settings: Settings, profile: str, outcome: str, seconds: float) -> None:
    """One agent run of `profile` ended with `outcome` (succeeded, failed, cancelled)."""
    _store(settings).increment(
        {
            AGENT_RUNS_KEY: {f"{profile}|{outcome}": 1},
            AGENT_SECONDS_KEY: _observation(AGENT_BUCKETS, seconds),
        }
    )


def observe_delivery(
    settings: Settings, event: str, outcome: str, seconds: float | None = None
) -> None:
    """One delivery of `event` ended `outcome` (done, ignored, waiting, failed; refused at
    the door, which has no processing time) after `seconds` of processing."""
    counts = {DELIVERIES_KEY: {f"{event}|{outcome}": 1.0}}
    if seconds is not None:
        counts[DELIVERY_SECONDS_KEY] = _observation(DELIVERY_BUCKETS, seconds)
    _store(settings).increment(counts)


def deliveries(settings: Settings) -> dict[tuple[str, str], float]:
    """(event, outcome) → deliveries so far."""
    counts = _store(settings).read(DELIVERIES_KEY)
    return {
        (event, outcome): value
        for field, value in counts.items()
        for event, _, outcome in [field.rpartition("|")]
    }


def delivery_durations(settings: Settings) -> Histogram:
    return _histogram(_store(settings).read(DELIVERY_SECONDS_KEY), DELIVERY_BUCKETS)


def github_requests(settings: Settings) -> dict[tuple[str, str], float]:
    """(kind, status) → requests so far."""
    counts = _store(settings).read(GITHUB_REQUESTS_KEY)
    return {
        (kind, status): value
        for field, value in counts.items()
        for kind, _, status in [field.partition("|")]
    }


def deliveries_without_job(settings: Settings) -> dict[tuple[str, str], float]:
    """(event, reason) → deliveries stored as ignored with no job so far."""
    counts = _store(settings).read(WITHOUT_JOB_KEY)
    return {
        (event, reason): value
        for field, value in counts.items()
        for event, _, reason in [field.partition("|")]
    }


def agent_runs(settings: Settings) -> dict[tuple[str, str], float]:
    """(profile, outcome) → runs so far."""
    counts = _store(settings).read(AGENT_RUNS_KEY)
    return {
        (profile, outcome): value
        for field, value in counts.items()
        for profile, _, outcome in [field.rpartition("|")]
    }


def sync_durations(settings: Settings) -> Histogram:
    return _histogram(_store(settings).read(SYNC_SECONDS_KEY), SYNC_BUCKETS)


def agent_durations(settings: Settings) -> Histogram:
    return _histogram(_store(settings).read(AGENT_SECONDS_KEY), AGENT_BUCKETS)


def _observation(buckets: tuple[float, ...], seconds: float) -> dict[str, float]:
    fields: dict[str, float] = {_bound(b): 1 for b in buckets if seconds <= b}
    return fields | {"+Inf": 1, "count": 1, "sum": seconds}


def _histogram(counts: dict[str, float], buckets: tuple[float, ...]) -> Histogram:
    return Histogram(
        buckets=[(bound, counts.get(_bound(bound), 0)) for bound in (*buckets, math.inf)],
        count=counts.get("count", 0),
        sum=counts.get("sum", 0),
    )


def _bound(seconds: float) -> str:
    return "+Inf" if seconds == math.inf else f"{seconds:g}"


class _MemoryStore:
    def __init__(self) -> None:
        self._hashes: dict[str, Counter[str]] = {}
        self._lock = threading.Lock()

    def increment(self, counts: dict[str, dict[str, float]]) -> None:
        with self._lock:
            for key, fields in counts.items():
                self._hashes.setdefault(key, Counter()).update(fields)

    def read(self, key: str) -> dict[str, float]:
        with self._lock:
            return dict(self._hashes.get(key, {}))


class _RedisStore:
    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._quiet_until = 0.0

    def increment(self, counts: dict[str, dict[str, float]]) -> None:
        """Every count in one round trip (no MULTI: counts need no isolation)."""
        if time.monotonic() < self._quiet_until:
            return
        from bot.queue import redis_connection

        try:
            with redis_connection(self.redis_url).pipeline(transaction=False) as pipe:
                for key, fields in counts.items():
                    for field, amount in fields.items():
                        # A histogram's sum is a float once any observation was (2.5 then
                        # 4.0): HINCRBY on "2.5" fails, and with it every count of the pipeline.
                        if field != "sum" and float(amount).is_integer():
                            pipe.hincrby(key, field, int(amount))
                        else:
                            pipe.hincrbyfloat(key, field, amount)
                pipe.execute()
        except Exception:  # a count is not worth failing or slowing the request it counts
            self._quiet_until = time.monotonic() + BACKOFF_SECONDS
            log.warning("could not count in Redis; counting pauses %gs", BACKOFF_SECONDS)

    def read(self, key: str) -> dict[str, float]:
        from bot.queue import redis_connection

        raw = redis_connection(self.redis_url).hgetall(key)
        return {field.decode(): float(value) for field, value in raw.items()}


_memory = _MemoryStore()
_redis_stores: dict[str, _RedisStore] = {}


def _store(settings: Settings) -> _MemoryStore | _RedisStore:
    if settings.redis_url is None:
        return _memory
    return _redis_stores.setdefault(settings.redis_url, _RedisStore(settings.redis_url))
