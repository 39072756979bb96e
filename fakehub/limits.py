"""GitHub's documented limits, as the double enforces them.

- Content creation (issues, comments, pull requests, labels), per token: 80 a
  minute and 500 an hour. A request made when the budget is spent is answered
  403 with the secondary-rate-limit message and Retry-After; creations that run
  past it inside one GraphQL request fail with "was submitted too quickly".
  Each created item counts, at the moment the double creates it: a GraphQL
  request with 10 `createIssue` counts 10, each stamped as it runs, in order.
  The windows slide: an item counts for the 60 s (3,600 s) after it was made,
  and a new one fits while fewer than 80 (500) items fall in the last 60 s
  (3,600 s). GitHub documents "no more than 80 content-generating requests per
  minute and no more than 500 content-generating requests per hour"
  (https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits)
  and not whether its minute is sliding or on the clock; the sliding window is
  the reading that holds under both (a client kept within it is within any
  calendar minute too; not the other way round, which lets 160 through across a
  minute's boundary).
- Secondary points per token: a GraphQL request with mutations costs 5 points,
  a query 1, of 2,000 a minute; REST GET 1 and other methods 5, of 900 a minute.
- A parent issue holds at most 100 sub-issues (closed ones count), 8 levels deep.
- Connections: `first`/`last` between 1 and 100; titles at most 256 characters,
  bodies and comments at most 65,536.

`time_scale` shrinks every window (0.01: a "minute" lasts 0.6 s) so tests and
benches reach the hourly budget.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

SUB_ISSUES_PER_PARENT = 100
NESTING_LEVELS = 8
MAX_TITLE = 256
MAX_BODY = 65_536
MAX_LABEL = 50  # a label's name
MAX_PAGE = 100
SECONDARY_LIMITED = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID."
)
TOO_QUICKLY = "was submitted too quickly"


@dataclass
class Limits:
    content_per_minute: int = 80
    content_per_hour: int = 500
    graphql_points_per_minute: int = 2000
    rest_points_per_minute: int = 900
    time_scale: float = 1.0

    def update(self, values: dict[str, float]) -> None:
        for name, value in values.items():
            if not hasattr(self, name):
                raise KeyError(f"no limit named {name}")
            setattr(self, name, type(getattr(self, name))(value))


class RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(SECONDARY_LIMITED)
        self.retry_after = retry_after


@dataclass
class _Window:
    seconds: float
    used: deque[tuple[float, int]] = field(default_factory=deque)

    def total(self, now: float) -> int:
        while self.used and self.used[0][0] <= now - self.seconds:
            self.used.popleft()
        return sum(amount for _, amount in self.used)

    def room_at(self, now: float) -> float:
        return self.used[0][0] + self.seconds if self.used else now


class Budgets:
    """Per-token windows; thread-safe."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], _Window] = {}
        self.created: dict[str, int] = {}
        self.refused = 0  # creations refused for going past the budget

    def _window(self, token: str, kind: str, seconds: float) -> _Window:
        key = (token, kind)
        window = self._windows.get(key)
        scaled = seconds * self.limits.time_scale
        if window is None or window.seconds != scaled:
            window = self._windows[key] = _Window(scaled)
        return window

    def charge_points(self, token: str, graphql: bool, mutation: bool, method: str) -> None:
        """Secondary points of one request; RateLimited when the minute's points are spent."""
        if graphql:
            points, limit, kind = (
                (5 if mutation else 1),
                self.limits.graphql_points_per_minute,
                "gql",
            )
        else:
            points = 1 if method in ("GET", "HEAD") else 5
            limit, kind = self.limits.rest_points_per_minute, "rest"
        now = time.time()
        with self._lock:
            window = self._window(token, kind, 60)
            if window.total(now) + points > limit:
                raise RateLimited(max(window.room_at(now) - now, 1))
            window.used.append((now, points))

    def check_content(self, token: str) -> None:
        """Before a request that creates content: 403 when nothing can be created now."""
        now = time.time()
        with self._lock:
            for window, limit in self._content_windows(token):
                if window.total(now) >= limit:
                    raise RateLimited(max(window.room_at(now) - now, 1))

    def create_one(self, token: str) -> bool:
        """Spend one item of content; False when the budget is spent."""
        now = time.time()
        with self._lock:
            windows = self._content_windows(token)
            if any(window.total(now) >= limit for window, limit in windows):
                self.refused += 1
                return False
            for window, _ in windows:
                window.used.append((now, 1))
            self.created[token] = self.created.get(token, 0) + 1
            return True

    def _content_windows(self, token: str) -> list[tuple[_Window, int]]:
        return [
            (self._window(token, "content-minute", 60), self.limits.content_per_minute),
            (self._window(token, "content-hour", 3600), self.limits.content_per_hour),
        ]
