"""What the checks that count say of a head commit: the required ones (by the base
branch's protection), else every check but specbridge's own. The loop on an agent's pull
request (bot/agents/pull_checks.py) acts on it; the comparison of several attempts
(bot/agents/attempts.py) shows it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.github.checks import CHECK_NAME
from bot.github.pull_requests import CheckResult, PullHead, PullRequestGateway

PASSED = ("success", "neutral", "skipped")


@dataclass(frozen=True)
class Verdict:
    """What the checks that count say of a head commit."""

    state: str  # none | pending | failed | passed
    counted: list[CheckResult] = field(default_factory=list)
    failed: list[CheckResult] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # names still running or not reported

    @property
    def names(self) -> list[str]:
        return [c.name for c in (self.failed or self.counted)]


def read_verdict(pulls: PullRequestGateway, pull: PullHead, own_app: str | None) -> Verdict:
    """The verdict on the pull request's head, as GitHub has its checks now."""
    results = pulls.check_runs(pull.head_sha) + pulls.statuses(pull.head_sha)
    return judge(results, pulls.required_checks(pull.base_ref), own_app)


def judge(results: Sequence[CheckResult], required: Sequence[str], own_app: str | None) -> Verdict:
    """The verdict of the checks that count: the required ones, else all but our own."""
    others = [r for r in results if not _ours(r, own_app)]
    if required:
        wanted = {name.casefold(): name for name in required}
        counted = [r for r in others if r.name.casefold() in wanted]
        reported = {r.name.casefold() for r in counted}
        missing = [name for key, name in wanted.items() if key not in reported]
    else:
        counted, missing = others, []
    if not counted and not missing:
        return Verdict("none")
    waiting = missing + [r.name for r in counted if r.conclusion is None]
    if waiting:
        return Verdict("pending", counted, waiting=waiting)
    failed = [r for r in counted if r.conclusion not in PASSED]
    return Verdict("failed" if failed else "passed", counted, failed)


def _ours(result: CheckResult, own_app: str | None) -> bool:
    if result.kind != "check run":
        return False
    return result.app == own_app if own_app else result.name == CHECK_NAME
