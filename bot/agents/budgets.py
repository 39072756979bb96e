"""Budgets that stop spending: a run does not start past its spec's cap (`budget:` in
`.github/specbridge.yml`, plus what `/budget` added) or past its profile's cap for the
day (UTC, across repositories; `budget:` in the profiles file).

The counter is the database: what every run recorded (bot/agents/costs.py), summed when
the next run would start, so every worker sees the same total. A run in progress is
never stopped; its cost counts when it ends. The budget is a condition of the fleet's
admission pass (bot/agents/fleet.py): a run the pass would start past a cap stays
`waiting`, with `budget_hold` saying which cap and one comment on its issue, and takes no
slot; every pass looks again, so it goes on when the cap no longer holds: settings
pushed, `/budget`, a run's end, a new day, or the profiles file edited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.agents.profiles import load_profiles
from bot.github import RepositoryGateway, github_client
from bot.repo_config import CONFIG_PATH, RepoConfig
from bot.settings import Settings, SettingsError
from storage.models import Spec, Task, TaskStatus, Ticket

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Spent:
    """What ended runs used, and about what the runs going will: each as much as the
    average run so far (with several workers, a run starting while others run counts
    them before their cost is known)."""

    usd: float
    tokens: int
    going: int = 0  # runs going whose usage is not recorded yet
    going_usd: float = 0.0
    going_tokens: int = 0
    # No run has recorded its usage yet: what a run costs is not known.
    unknown: bool = False


PAUSED = "its spec is paused"
# Under a cap, while the first run goes and what a run costs is not known yet, a second
# one waits for it (runs started together would each start, whatever the cap).
FIRST_RUN = "a first run is going: what a run costs is not known yet"
SILENT = (PAUSED, FIRST_RUN)


@dataclass(frozen=True)
class Hold:
    cap: str  # which cap, in a few words (kept on the task)
    said: str  # the comment on the task's issue


def spec_caps(spec: Spec) -> dict[str, float]:
    """The spec's caps: its own in the settings, else every spec's, plus what `/budget`
    added; no cap, no key."""
    budget = RepoConfig.from_dict(spec.repository.settings).budget
    caps = dict(budget.get("specs", {}).get(spec.key) or _every_spec(budget))
    if "usd" in caps:
        caps["usd"] += spec.budget_extra_usd or 0.0
    if "tokens" in caps:
        caps["tokens"] += spec.budget_extra_tokens or 0
    return caps


def _every_spec(budget: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in budget.items() if k in ("usd", "tokens")}


def spent_on_spec(session: Session, spec_id: int) -> Spent:
    of_spec = Task.ticket_id.in_(select(Ticket.id).where(Ticket.spec_id == spec_id))
    return _spent(session, of_spec, of_spec)


def spent_by_profile_today(session: Session, profile: str) -> Spent:
    midnight = datetime.combine(datetime.now(UTC).date(), time(), UTC)
    ended = func.coalesce(Task.agent_ended_at, Task.finished_at)
    return _spent(session, (Task.agent == profile) & (ended >= midnight), Task.agent == profile)


def _spent(session: Session, counted: Any, going_of: Any) -> Spent:
    usd, tokens, runs = session.execute(
        select(
            func.coalesce(func.sum(Task.cost_usd), 0.0),
            func.coalesce(func.sum(Task.input_tokens), 0)
            + func.coalesce(func.sum(Task.output_tokens), 0),
            func.count().filter(Task.agent_ended_at.is_not(None)),  # runs whose agent ended
        ).where(counted)
    ).one()
    going = session.scalar(
        select(func.count()).where(
            going_of,
            # admitted by the fleet (queued) or running: a slot taken, its cost to come
            Task.status.in_((TaskStatus.QUEUED, TaskStatus.RUNNING)),
            Task.agent_ended_at.is_(None),
            Task.dispatched_at.is_(None),  # an agent GitHub runs costs nothing we count
        )
    )
    usd, tokens = float(usd), int(tokens)
    if not going or not runs:
        return Spent(round(usd, 6), tokens, going or 0, unknown=not runs)
    return Spent(round(usd, 6), tokens, going, usd / runs * going, tokens * going // runs)


def hold_of(session: Session, settings: Settings, task: Task) -> Hold | None:
    """The cap the task's next run would start past (or its spec's pause), or None."""
    spec = task.ticket.spec
    if spec is not None and spec.paused:
        return Hold(PAUSED, "")  # the tracking issue says so; no comment on each task
    if spec is not None:
        caps, spent = spec_caps(spec), spent_on_spec(session, spec.id)
        if caps and spent.going and spent.unknown:
            return Hold(FIRST_RUN, "")  # for seconds: the chore looks again when it ends
        over = _over(caps, spent)
        if over:
            return _spec_hold(spec, *over)
    try:
        profile = load_profiles(settings).get(task.agent)
    except SettingsError:
        return None  # the run itself says what is wrong with the file
    if profile is not None and profile.budget:
        spent = spent_by_profile_today(session, task.agent)
        if spent.going and spent.unknown:
            return Hold(FIRST_RUN, "")
        over = _over(profile.budget, spent)
        if over:
            return _profile_hold(task.agent, *over)
    return None


def _over(caps: dict[str, float], spent: Spent) -> tuple[str, str] | None:
    """(what was spent of what cap, the unit) for the first cap reached, or None."""
    going = f" and {spent.going} run(s) going" if spent.going else ""
    if "usd" in caps and spent.usd + spent.going_usd >= caps["usd"]:
        about = f" (about ${spent.usd + spent.going_usd:.2f}{going})" if spent.going_usd else ""
        return f"${spent.usd:.2f}{about} of ${caps['usd']:.2f}", "usd"
    if "tokens" in caps and spent.tokens + spent.going_tokens >= caps["tokens"]:
        total = spent.tokens + spent.going_tokens
        about = f" (about {total:,}{going})" if spent.going_tokens else ""
        return f"{spent.tokens:,}{about} of {int(caps['tokens']):,} tokens", "tokens"
    return None


def _spec_hold(spec: Spec, used: str, unit: str) -> Hold:
    more = "+N` (N more USD)" if unit == "usd" else "+N tokens` (N more tokens)"
    return Hold(
        f"the spec `{spec.key}`: {used}",
        f"This task waits: the spec `{spec.key}` has spent {used}, its budget (`budget:` in "
        f"`{CONFIG_PATH}`). Its run starts when the cap is raised there, or when a "
        f"maintainer (admin access) comments `/budget {spec.key} {more}. A run already "
        "going is not stopped.",
    )


def _profile_hold(profile: str, used: str, _unit: str) -> Hold:
    return Hold(
        f"the agent profile `{profile}` today: {used}",
        f"This task waits: the agent profile `{profile}` has spent {used} today (UTC), its "
        "budget for a day (`budget:` of the profile in the agents file, SPECBRIDGE_AGENTS). "
        "Its run starts tomorrow, or as soon as the operator raises that budget.",
    )


def hold_waiting(task: Task, hold: Hold) -> Notice | None:
    """Record on the waiting task the cap that holds it (the admission pass,
    bot/agents/fleet.py, calls this under the fleet's lock, and commits); what to say on its
    issue, once (not again while it stays held, nor for a silent hold), to say after."""
    told = task.budget_hold is not None and task.budget_hold not in SILENT
    task.budget_hold = hold.cap
    log.info("task %s waits: %s", task.id, hold.cap)
    if told or not hold.said:
        return None
    repository = task.ticket.repository
    installation = repository.installation_github_id
    return Notice(hold.said, installation, repository.full_name, task.ticket.issue_number)


@dataclass(frozen=True)
class Notice:
    """A task held: what to say on its issue, after the pass has committed (never with a
    transaction open, nor under the fleet's lock)."""

    said: str
    installation: int | None
    full_name: str
    issue: int

    def tell(self, settings: Settings) -> None:
        gateway = RepositoryGateway(github_client(settings, self.installation), self.full_name)
        gateway.comment_on_issue(self.issue, self.said)
