"""GitHub's pace, shared by every worker and process of one installation.

GitHub asks integrations to leave about a second between write requests and
to create at most 80 pieces of content (issues, comments, labels, pull
requests) a minute and 500 an hour. Those budgets belong to the installation,
not to a process, so they are kept where every process sees them: in Redis,
or in the database when there is no Redis (the embedded mode, and a
`specbridge sync` run beside it).

A write asks `before_write(content=n)`: it waits for its turn and for room
in the shortest content window (a minute). When a longer window (the hour)
is full, or the wait would pass `max_wait`, it raises BudgetExhausted with
the time room comes back, so a long sync stops, says when it continues, and
is resumed then instead of holding a worker.

A spec creating more issues than ROOM_LEFT_TO_OTHERS creates them `leaving_room`: in
every window it stops that many items (at most an eighth) short of the limit, so the
pull requests of agents already running, a person's answer and a small spec pushed
meanwhile find room at once instead of waiting a minute behind its burst (an eighth
of the minute's 80, a fiftieth of the hour's 500: what the big spec gives up).

Bulk work (a sync run by a queue job) waits differently (`yielding`): a wait
longer than a few seconds, or interactive work waiting for the worker, ends the
job at the next write where everything written so far is recorded (a database
commit came after the last write); the sync records where it is and queues its
own continuation, so a worker never sleeps through GitHub's budget.

GitHub counts a creation when it makes the item, after the request reached it;
a reservation counts the items at the slot the request may start, so each is
stamped again once GitHub has answered (`counted`): a window never opens here
before it opens on GitHub.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.settings import Settings
from storage.db import get_engine, orm_commits
from storage.models import GitHubContentUse, GitHubPace

# New items a big creation leaves to others in each window (see `leaving_room`).
ROOM_LEFT_TO_OTHERS = 10
# Waits longer than this are not slept through in a worker: the work pauses.
MAX_INLINE_WAIT_SECONDS = 90
# Bulk work (`yielding`) sleeps through this much at most, where it can stop.
BULK_INLINE_WAIT_SECONDS = 3.0


class Paused(RuntimeError):
    """The work stops here and goes on at `resume_at` (seconds since the epoch)."""

    def __init__(self, message: str, resume_at: float) -> None:
        super().__init__(message)
        self.resume_at = resume_at
        # Stopped where every write so far is recorded (bulk work's stops always are).
        self.clean = False


class BudgetExhausted(Paused):
    """The content budget has no room before `resume_at`."""

    def __init__(self, resume_at: float, window: ContentWindow) -> None:
        super().__init__(
            f"GitHub's budget of {window.limit} new items per {window.seconds:g}s is spent "
            f"until {datetime.fromtimestamp(resume_at, UTC):%H:%M:%S} UTC",
            resume_at,
        )
        self.window = window


class GaveWay(Paused):
    """Bulk work stopped for a moment: its worker is wanted (interactive work waits),
    or GitHub's pace asks a wait the worker should not sleep through."""

    def __init__(self, resume_at: float, reason: str) -> None:
        super().__init__(reason, resume_at)
        self.clean = True


@dataclass
class Yielding:
    """How a bulk job waits on GitHub: not longer than `max_wait` in place, and not
    while `wanted()` says its worker is waited for, wherever it can stop cleanly."""

    max_wait: float = BULK_INLINE_WAIT_SECONDS
    wanted: Callable[[], bool] = lambda: False
    writes: int = 0  # since this job started
    gave_way: bool = False  # once it has, the job's other syncs stop too
    _first_write: int | None = field(default=None, repr=False)
    _last_write: int | None = field(default=None, repr=False)

    def clean(self) -> bool:
        """Whether every write so far is recorded: a commit came after the last one."""
        return self._last_write is None or orm_commits() > self._last_write

    def progressed(self) -> bool:
        """Whether this job has got something done that stays: a write of it recorded.
        Until then it does not give way, so a continuation always moves on."""
        return self._first_write is not None and orm_commits() > self._first_write


_yielding: ContextVar[Yielding | None] = ContextVar("specbridge_yielding", default=None)
_room_left: ContextVar[int] = ContextVar("specbridge_room_left", default=0)
# How often bulk work waiting for room looks whether its worker is wanted.
WANTED_CHECK_SECONDS = 0.25


def _sleep_unless_wanted(bulk: Yielding, until: float) -> None:
    """Sleep until `until`, unless interactive work comes to want the worker meanwhile."""
    while (left := until - time.time()) > 0:
        if bulk.progressed() and bulk.wanted():
            bulk.gave_way = True
            raise GaveWay(until, "interactive work waits for this worker")
        time.sleep(min(left, WANTED_CHECK_SECONDS))


@contextmanager
def yielding(policy: Yielding) -> Iterator[Yielding]:
    """Writes in this block wait as bulk work does (see the module's docstring)."""
    token = _yielding.set(policy)
    try:
        yield policy
    finally:
        _yielding.reset(token)


@contextmanager
def leaving_room(items: int = ROOM_LEFT_TO_OTHERS) -> Iterator[None]:
    """Creations in this block stop `items` short of each window's limit."""
    token = _room_left.set(items)
    try:
        yield
    finally:
        _room_left.reset(token)


@dataclass(frozen=True)
class ContentWindow:
    limit: int
    seconds: float


@dataclass(frozen=True)
class Reservation:
    """Granted: write at `at`, its new items recorded as `items`. Refused: room comes at
    `room_at`, in window `full`."""

    at: float | None = None
    items: tuple[str | int, ...] = ()
    room_at: float | None = None
    full: ContentWindow | None = None


class Pacer:
    """The pace of one installation (or token), kept where every process sees it."""

    def __init__(self, settings: Settings, key: str) -> None:
        self.key = key
        self.interval = settings.github_write_interval
        self.windows = tuple(
            ContentWindow(limit, seconds) for limit, seconds in settings.github_content_limits
        )
        self._settings = settings

    @cached_property
    def _store(self) -> _Store:
        if self._settings.redis_url:
            return _RedisStore(self._settings.redis_url)
        return _DatabaseStore(self._settings)

    def _windows(self) -> tuple[ContentWindow, ...]:
        """The windows as this block may fill them (`leaving_room`: short of the limit)."""
        left = _room_left.get()
        if not left:
            return self.windows
        # At most an eighth of a window: GitHub's are 80 and 500, a scaled-down one less.
        return tuple(
            ContentWindow(w.limit - min(left, w.limit // 8), w.seconds) for w in self.windows
        )

    @property
    def off(self) -> bool:
        """No spacing and no budget (GITHUB_WRITE_INTERVAL=0, GITHUB_CONTENT_LIMITS=none)."""
        return self.interval == 0 and not self.windows

    def before_write(
        self, content: int = 0, max_wait: float = MAX_INLINE_WAIT_SECONDS
    ) -> Reservation | None:
        """Wait for this installation's next write slot and room for `content` new items;
        the reservation is to be handed to `counted` once GitHub has answered."""
        if self.off:
            return None
        bulk = _yielding.get()
        may_stop = bulk is not None and bulk.clean()
        if (
            may_stop
            and bulk is not None
            and (bulk.gave_way or (bulk.progressed() and bulk.wanted()))
        ):
            bulk.gave_way = True
            raise GaveWay(time.time(), "interactive work waits for this worker")
        if may_stop and bulk is not None:
            max_wait = min(max_wait, bulk.max_wait)
        deadline = time.time() + max_wait
        windows = self._windows()
        while True:
            now = time.time()
            granted = self._store.reserve(self.key, now, self.interval, content, windows)
            if granted.at is not None:
                # A slot far off (GitHub asked to slow down) is given up, unless it holds items.
                if granted.at > deadline and may_stop and bulk is not None and not content:
                    bulk.gave_way = True
                    raise GaveWay(granted.at, "GitHub's pace asks for a long wait")
                if granted.at > now:
                    time.sleep(granted.at - now)
                if bulk is not None:
                    bulk.writes += 1
                return granted
            assert granted.room_at is not None and granted.full is not None
            shortest = min(windows, key=lambda w: w.seconds)
            if granted.full != shortest or granted.room_at > deadline:
                if bulk is not None:
                    bulk.gave_way = True
                spent = BudgetExhausted(granted.room_at, granted.full)
                spent.clean = may_stop
                raise spent
            if may_stop and bulk is not None:
                _sleep_unless_wanted(bulk, granted.room_at)
            else:
                time.sleep(max(granted.room_at - now, 0.01))

    def counted(self, reservation: Reservation | None) -> None:
        """GitHub has answered the write: its items count from now, as GitHub's do."""
        bulk = _yielding.get()
        if bulk is not None:
            bulk._last_write = orm_commits()  # not recorded until the next commit
            if bulk._first_write is None:
                bulk._first_write = bulk._last_write
        if reservation is not None and reservation.items:
            self._store.restamp(self.key, reservation.items, self.windows, time.time())

    def room_within(self, seconds: float) -> int:
        """New items that could be created `seconds` from now: those free now, and those
        the windows free meanwhile."""
        at = time.time() + seconds
        return min(
            (w.limit - self._store.used(self.key, w, at) for w in self._windows()), default=10**6
        )

    def most_at_once(self) -> int:
        """The most new items one write may create: what the smallest window holds."""
        return min((w.limit for w in self._windows()), default=10**6)

    def hold_off(self, seconds: float) -> None:
        """GitHub answered 'slow down': no write from anyone here for `seconds`."""
        if self.off:
            return
        self._store.push_next_write(self.key, time.time() + seconds)

    def snapshot(self) -> list[tuple[ContentWindow, int]]:
        """(window, items left in it now), for operators."""
        if not self.windows:
            return []
        now = time.time()
        return [(w, w.limit - self._store.used(self.key, w, now)) for w in self.windows]


class _Store:
    def reserve(
        self,
        key: str,
        now: float,
        interval: float,
        content: int,
        windows: tuple[ContentWindow, ...],
    ) -> Reservation:
        raise NotImplementedError

    def used(self, key: str, window: ContentWindow, now: float) -> int:
        raise NotImplementedError

    def push_next_write(self, key: str, at: float) -> None:
        raise NotImplementedError

    def restamp(
        self, key: str, items: tuple[str | int, ...], windows: tuple[ContentWindow, ...], at: float
    ) -> None:
        raise NotImplementedError


# One atomic step in Redis: check every window, then take a write slot and record
# the content. KEYS: next-write key, then one sorted set per window (member per item).
_RESERVE = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local content = tonumber(ARGV[3])
local room_at = now
local full = 0
for i = 2, #KEYS do
  local limit = tonumber(ARGV[2 + (i - 1) * 2])
  local window = tonumber(ARGV[3 + (i - 1) * 2])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local used = redis.call('ZCARD', KEYS[i])
  if content > 0 and used + content > limit then
    local oldest = redis.call('ZRANGE', KEYS[i], used + content - limit - 1,
                              used + content - limit - 1, 'WITHSCORES')
    local t = now + window
    if oldest[2] then t = tonumber(oldest[2]) + window end
    if t > room_at then room_at = t; full = i - 1 end
  end
end
if full > 0 then return {'room', tostring(room_at), full} end
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or now))
redis.call('SET', KEYS[1], tostring(slot + interval), 'EX', math.ceil(interval) + 60)
for i = 2, #KEYS do
  local window = tonumber(ARGV[3 + (i - 1) * 2])
  for n = 1, content do
    redis.call('ZADD', KEYS[i], slot, ARGV[#ARGV] .. ':' .. n)
  end
  redis.call('EXPIRE', KEYS[i], math.ceil(window) + 60)
end
return {'slot', tostring(slot), 0}
"""


class _RedisStore(_Store):
    def __init__(self, redis_url: str) -> None:
        from bot.queue import redis_connection

        self.redis = redis_connection(redis_url)
        self.script = self.redis.register_script(_RESERVE)

    def reserve(self, key, now, interval, content, windows):  # type: ignore[no-untyped-def]
        keys = [f"specbridge:pace:{key}:next"] + [
            f"specbridge:pace:{key}:content:{w.seconds:g}" for w in windows
        ]
        args: list[object] = [now, interval, content]
        for window in windows:
            args += [window.limit, window.seconds]
        args.append(uuid.uuid4().hex)
        member = args[-1]
        kind, at, full = self.script(keys=keys, args=args)
        if kind == b"slot":
            return Reservation(
                at=float(at), items=tuple(f"{member}:{n + 1}" for n in range(content))
            )
        return Reservation(room_at=float(at), full=windows[int(full) - 1])

    def used(self, key: str, window: ContentWindow, now: float) -> int:
        name = f"specbridge:pace:{key}:content:{window.seconds:g}"
        return int(self.redis.zcount(name, now - window.seconds, "+inf"))

    def restamp(self, key, items, windows, at):  # type: ignore[no-untyped-def]
        pipeline = self.redis.pipeline()
        for window in windows:
            name = f"specbridge:pace:{key}:content:{window.seconds:g}"
            pipeline.zadd(name, dict.fromkeys(items, at), xx=True)
        pipeline.execute()

    def push_next_write(self, key: str, at: float) -> None:
        name = f"specbridge:pace:{key}:next"
        current = self.redis.get(name)
        if current is None or float(current) < at:
            self.redis.set(name, str(at), ex=int(at - time.time()) + 60)


class _DatabaseStore(_Store):
    """The same budget in two tables, for processes that share a database but no Redis."""

    def __init__(self, settings: Settings) -> None:
        self.engine = get_engine(settings.database_url)
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        self.insert = dialect.insert

    def reserve(self, key, now, interval, content, windows):  # type: ignore[no-untyped-def]
        with self.engine.begin() as connection:
            connection.execute(
                self.insert(GitHubPace)
                .values(key=key, next_write_at=now)
                .on_conflict_do_nothing(index_elements=["key"])
            )
            # Writing the row first takes its lock (PostgreSQL) or the database's
            # (SQLite) before anything is read: reservations happen one at a time.
            connection.execute(
                update(GitHubPace).where(GitHubPace.key == key).values(key=GitHubPace.key)
            )
            longest = max((w.seconds for w in windows), default=0)
            connection.execute(
                delete(GitHubContentUse).where(
                    GitHubContentUse.key == key, GitHubContentUse.at < now - longest
                )
            )
            for window in windows:
                room_at = self._room_at(connection, key, window, now, content)
                if room_at is not None:
                    return Reservation(room_at=room_at, full=window)
            next_write = connection.scalar(
                select(GitHubPace.next_write_at).where(GitHubPace.key == key)
            )
            slot = max(now, next_write or now)
            connection.execute(
                update(GitHubPace)
                .where(GitHubPace.key == key)
                .values(next_write_at=slot + interval)
            )
            items: tuple[int, ...] = ()
            if content:
                inserted = connection.execute(
                    self.insert(GitHubContentUse)
                    .values([{"key": key, "at": slot}] * content)
                    .returning(GitHubContentUse.id)
                )
                items = tuple(inserted.scalars())
            return Reservation(at=slot, items=items)

    def _room_at(self, connection, key, window, now, content):  # type: ignore[no-untyped-def]
        if content == 0:
            return None
        recent = (
            select(GitHubContentUse.at)
            .where(GitHubContentUse.key == key, GitHubContentUse.at > now - window.seconds)
            .order_by(GitHubContentUse.at)
        )
        used = connection.scalar(select(func.count()).select_from(recent.subquery()))
        if used + content <= window.limit:
            return None
        # Room comes when enough of the oldest items leave the window.
        oldest = connection.scalar(recent.offset(used + content - window.limit - 1).limit(1))
        return (oldest if oldest is not None else now) + window.seconds

    def used(self, key: str, window: ContentWindow, now: float) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.scalar(
                    select(func.count()).where(
                        GitHubContentUse.key == key, GitHubContentUse.at > now - window.seconds
                    )
                )
                or 0
            )

    def restamp(self, key, items, windows, at):  # type: ignore[no-untyped-def]
        with self.engine.begin() as connection:
            connection.execute(
                update(GitHubContentUse).where(GitHubContentUse.id.in_(items)).values(at=at)
            )

    def push_next_write(self, key: str, at: float) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                self.insert(GitHubPace)
                .values(key=key, next_write_at=at)
                .on_conflict_do_nothing(index_elements=["key"])
            )
            connection.execute(
                update(GitHubPace)
                .where(GitHubPace.key == key, GitHubPace.next_write_at < at)
                .values(next_write_at=at)
            )
