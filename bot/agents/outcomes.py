"""What agents cost and deliver, from what each run recorded (bot/agents/costs.py): per
profile and model over a window, per spec, and in all. `specbridge report`, `/metrics`,
the status page and the tracking issue read these, so their totals agree.

A pull request counts once, however many runs (a first run and its revisions) made it;
its time to merge runs from the first run of its ticket queued (the ticket ready) to
its merge. Of several attempts at one task (bot/agents/attempts.py), a profile's
attempts run count their first runs, and those won the ones whose pull request merged.
"""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, case, func, select
from sqlalchemy.orm import Session

from bot.agents.costs import CLOSED, MERGED
from storage.models import Repository, Task, TaskStatus, Ticket

ENDED = (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED)
_WINDOW = re.compile(r"^(\d+)([hdw])$")


def window(text: str) -> timedelta:
    """`7d`, `12h`, `2w` as a timedelta; ValueError otherwise."""
    found = _WINDOW.match(text.strip())
    if found is None:
        raise ValueError(f"{text!r} is not a window such as 7d, 12h or 2w")
    hours = {"h": 1, "d": 24, "w": 24 * 7}[found[2]]
    return timedelta(hours=int(found[1]) * hours)


@dataclass
class Outcome:
    """One profile and model's runs and what became of them."""

    profile: str
    model: str
    runs: int = 0
    succeeded: int = 0
    merged: int = 0
    closed_unmerged: int = 0
    open: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float = 0.0
    revisions_per_merged: float | None = None
    median_hours_to_merge: float | None = None
    cost_per_merged_usd: float | None = None
    # Of several attempts at one task (bot/agents/attempts.py): those it ran, those kept.
    attempts_run: int = 0
    attempts_won: int = 0
    _pulls: dict[tuple[int, int], str] = field(default_factory=dict, repr=False)
    _revisions: dict[tuple[int, int], int] = field(default_factory=dict, repr=False)
    _to_merge: list[float] = field(default_factory=list, repr=False)

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.runs if self.runs else None

    def record(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        data["success_rate"] = _rounded(self.success_rate, 4)
        data["cost_usd"] = round(self.cost_usd, 6)
        return data


def outcomes(
    session: Session, since: datetime | None = None, repo: str | None = None
) -> list[Outcome]:
    """Per profile and model, the ended runs queued since `since` (of one repository)."""
    # Columns, not Task rows: the status page asks for this every few seconds.
    first = (
        select(Task.ticket_id, func.min(Task.queued_at).label("ready"))
        .group_by(Task.ticket_id)
        .subquery()
    )
    query = (
        select(*_COLUMNS, first.c.ready)
        .join(Ticket, Task.ticket_id == Ticket.id)
        .join(first, first.c.ticket_id == Task.ticket_id)
        .where(Task.status.in_(ENDED))
        .order_by(Task.id)
    )
    if since is not None:
        query = query.where(Task.queued_at >= since)
    if repo is not None:
        query = query.join(Repository, Ticket.repository_id == Repository.id).where(
            Repository.full_name == repo
        )
    groups: dict[tuple[str, str], Outcome] = {}
    for run in session.execute(query):
        key = (run.agent, run.model or "")
        _add(groups.setdefault(key, Outcome(*key)), run)
    for outcome in groups.values():
        _finish(outcome)
    return sorted(groups.values(), key=lambda o: (o.profile, o.model))


_COLUMNS = (
    Task.agent,
    Task.model,
    Task.status,
    Task.ticket_id,
    Task.input_tokens,
    Task.output_tokens,
    Task.cache_read_tokens,
    Task.cost_usd,
    Task.pull_request_number,
    Task.pull_request_outcome,
    Task.revision,
    Task.merged_at,
    Task.attempt_number,
    Task.attempt_won,
)


def _add(outcome: Outcome, task: Row[Any]) -> None:
    """One run (its columns, and `ready`: when its ticket's first run was queued)."""
    outcome.runs += 1
    outcome.succeeded += task.status is TaskStatus.SUCCEEDED
    outcome.input_tokens += task.input_tokens or 0
    outcome.output_tokens += task.output_tokens or 0
    outcome.cache_read_tokens += task.cache_read_tokens or 0
    outcome.cost_usd += task.cost_usd or 0.0
    if task.attempt_number and task.revision == 0:
        outcome.attempts_run += 1
        outcome.attempts_won += task.attempt_won
    if task.pull_request_number is None:
        return
    pull = (task.ticket_id, task.pull_request_number)
    outcome._pulls[pull] = task.pull_request_outcome or "open"
    outcome._revisions[pull] = max(outcome._revisions.get(pull, 0), task.revision)
    if task.pull_request_outcome == MERGED and task.merged_at and task.revision == 0:
        hours = (_aware(task.merged_at) - _aware(task.ready)).total_seconds() / 3600
        outcome._to_merge.append(hours)


def _finish(outcome: Outcome) -> None:
    states = list(outcome._pulls.values())
    outcome.merged = states.count(MERGED)
    outcome.closed_unmerged = states.count(CLOSED)
    outcome.open = len(states) - outcome.merged - outcome.closed_unmerged
    if outcome.merged:
        merged = [p for p, state in outcome._pulls.items() if state == MERGED]
        revisions = sum(outcome._revisions[p] for p in merged)
        outcome.revisions_per_merged = round(revisions / outcome.merged, 2)
        outcome.cost_per_merged_usd = round(outcome.cost_usd / outcome.merged, 6)
    if outcome._to_merge:
        outcome.median_hours_to_merge = round(statistics.median(outcome._to_merge), 2)


@dataclass(frozen=True)
class SpecCost:
    runs: int
    cost_usd: float
    tokens: int
    tasks_merged: int
    tasks_with_pull_request: int

    @property
    def merged_share(self) -> float | None:
        if not self.tasks_with_pull_request:
            return None
        return self.tasks_merged / self.tasks_with_pull_request


@dataclass(frozen=True)
class TicketCost:
    runs: int
    cost_usd: float
    pull_request: int | None
    pull_request_outcome: str | None


def ticket_cost(ticket: Ticket) -> TicketCost:
    """A ticket's runs (every one that started), their cost, and its newest pull request."""
    ran = [t for t in ticket.tasks if t.started_at is not None or t.dispatched_at is not None]
    pulls = [t for t in ticket.tasks if t.pull_request_number]
    newest = max(pulls, key=lambda t: t.id, default=None)
    return TicketCost(
        runs=len(ran),
        cost_usd=round(sum(t.cost_usd or 0.0 for t in ticket.tasks), 6),
        pull_request=newest.pull_request_number if newest else None,
        pull_request_outcome=(newest.pull_request_outcome or "open") if newest else None,
    )


def spec_cost(tickets: list[Ticket]) -> SpecCost:
    costs = [ticket_cost(t) for t in tickets]
    tokens = sum(
        (task.input_tokens or 0) + (task.output_tokens or 0) for t in tickets for task in t.tasks
    )
    return SpecCost(
        runs=sum(c.runs for c in costs),
        cost_usd=round(sum(c.cost_usd for c in costs), 6),
        tokens=tokens,
        tasks_merged=sum(c.pull_request_outcome == MERGED for c in costs),
        tasks_with_pull_request=sum(c.pull_request is not None for c in costs),
    )


@dataclass(frozen=True)
class Totals:
    """Every run ever recorded, for `/metrics` (counters: they only grow)."""

    tokens: dict[tuple[str, str], int]  # (profile, direction) → tokens
    cost_usd: dict[str, float]  # profile → USD
    pull_requests: dict[tuple[str, str], int]  # (profile, outcome) → pull requests
    attempts: dict[tuple[str, str], int]  # (profile, "run" | "won") → attempts at a task


def totals(session: Session) -> Totals:
    tokens: dict[tuple[str, str], int] = defaultdict(int)
    cost: dict[str, float] = defaultdict(float)
    pulls: dict[tuple[str, int, int], tuple[str, str]] = {}
    rows = session.execute(
        select(
            Task.agent,
            Task.ticket_id,
            Task.input_tokens,
            Task.output_tokens,
            Task.cache_read_tokens,
            Task.cost_usd,
            Task.pull_request_number,
            Task.pull_request_outcome,
        ).order_by(Task.id)
    )
    for agent, ticket, tokens_in, tokens_out, cached, usd, pull, state in rows:
        tokens[(agent, "input")] += tokens_in or 0
        tokens[(agent, "output")] += tokens_out or 0
        tokens[(agent, "cache_read")] += cached or 0
        cost[agent] += usd or 0.0
        if pull is not None:
            pulls[(agent, ticket, pull)] = (agent, state or "open")
    outcomes_: dict[tuple[str, str], int] = defaultdict(int)
    for key in pulls.values():
        outcomes_[key] += 1
    costs = {k: round(v, 6) for k, v in cost.items()}
    return Totals(dict(tokens), costs, dict(outcomes_), _attempts(session))


def _attempts(session: Session) -> dict[tuple[str, str], int]:
    """Per profile, the attempts at a task it ran (first runs) and those kept."""
    rows = session.execute(
        select(Task.agent, func.count(), func.sum(case((Task.attempt_won, 1), else_=0)))
        .where(Task.attempt_number.is_not(None), Task.revision == 0)
        .group_by(Task.agent)
    )
    found: dict[tuple[str, str], int] = {}
    for agent, ran, won in rows:
        found[(agent, "run")], found[(agent, "won")] = ran, won or 0
    return found


# -- `specbridge report` -----------------------------------------------------------------

COLUMNS = (
    ("PROFILE", "profile"),
    ("MODEL", "model"),
    ("RUNS", "runs"),
    ("SUCCESS", "success_rate"),
    ("MERGED", "merged"),
    ("CLOSED", "closed_unmerged"),
    ("OPEN", "open"),
    ("REV/MERGED", "revisions_per_merged"),
    ("H TO MERGE", "median_hours_to_merge"),
    ("ATTEMPTS", "attempts_run"),
    ("WON", "attempts_won"),
    ("TOKENS IN", "input_tokens"),
    ("TOKENS OUT", "output_tokens"),
    ("COST USD", "cost_usd"),
    ("USD/MERGED", "cost_per_merged_usd"),
)


def report(found: list[Outcome], form: str) -> str:
    records = [o.record() for o in found]
    if form == "json":
        return json.dumps(records, indent=2)
    if form == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, [key for _, key in COLUMNS], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
        return out.getvalue().rstrip("\n")
    rows = [[title for title, _ in COLUMNS]]
    rows += [[_cell(r[key], key) for _, key in COLUMNS] for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    total = sum(o.cost_usd for o in found)
    lines.append(f"\n{sum(o.runs for o in found)} runs, ${total:.2f} in all")
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any, key: str) -> str:
    if value is None or value == "":
        return "-"
    if key == "success_rate":
        return f"{value:.0%}"
    if key in ("cost_usd", "cost_per_merged_usd"):
        return f"{value:.2f}"
    return str(value)


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)
