"""What each agent run cost and delivered, recorded on its Task row at the stage the run
ends: its usage when its agent ends (a cancel included), its wall time and exit reason
when the run ends (or its worker is found dead), its pull request's outcome when the
pull request closes. bot/agents/run.py, reaper.py and the pull_request handler call these.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.agents.profiles import AgentProfile
from bot.agents.usage import USAGE_FILE_NAME, Usage, read_usage_file, usage_of
from storage.models import Repository, Task, Ticket

# Why a run ended: the short codes the report groups by.
COMPLETED = "completed"
CANCELLED = "cancelled"
WORKER_LOST = "worker_lost"
OPEN, MERGED, CLOSED = "open", "merged", "closed"


def usage_file(checkout: Path) -> Path:
    """Where a `command:` profile may write its usage ($SPECBRIDGE_USAGE_FILE)."""
    return checkout / USAGE_FILE_NAME


def kind_of(profile: AgentProfile) -> str:
    """The preset's name; "command" for a command of the operator's; "hosted"."""
    if profile.hosted:
        return "hosted"
    return profile.preset or "command"


def run_usage(profile: AgentProfile, output: str, checkout: Path) -> Usage:
    """What the run used: from the CLI's own output for a preset, else from the usage file
    the command wrote (then removed, so it is never committed); priced by the profile's
    table when it gave no cost."""
    usage = usage_of(profile.preset, output)
    if profile.preset is None:
        usage = read_usage_file(checkout)
    # A folder of that name stays: ignored by git (the workspace's exclude), never read.
    with contextlib.suppress(OSError):
        usage_file(checkout).unlink(missing_ok=True)
    return usage.priced(profile.price)


def record_usage(task: Task, profile: AgentProfile, usage: Usage) -> None:
    """Add what one attempt used to the Task (a run again after a lost worker adds its own)."""
    task.preset = kind_of(profile)
    task.model = usage.model or profile.model or task.model
    task.input_tokens = _added(task.input_tokens, usage.input_tokens)
    task.output_tokens = _added(task.output_tokens, usage.output_tokens)
    task.cache_read_tokens = _added(task.cache_read_tokens, usage.cache_read_tokens)
    if usage.cost_usd is not None:
        task.cost_usd = round((task.cost_usd or 0.0) + usage.cost_usd, 6)
        task.cost_estimated = task.cost_estimated or usage.estimated
    if usage.turns is not None:
        task.turns = (task.turns or 0) + usage.turns


def record_end(task: Task, seconds: float, reason: str) -> None:
    """The run's wall time (every attempt's) and why it ended."""
    task.wall_seconds = round((task.wall_seconds or 0.0) + seconds, 3)
    task.exit_reason = reason[:32]
    if task.pull_request_number is not None and task.pull_request_outcome is None:
        task.pull_request_outcome = OPEN


def record_lost_attempt(task: Task) -> None:
    """A run whose worker died: its time until its last heartbeat, and why it ended."""
    lived = 0.0
    if task.started_at is not None and task.heartbeat_at is not None:
        lived = max(0.0, (task.heartbeat_at - task.started_at).total_seconds())
    record_end(task, lived, WORKER_LOST)


def record_pull_request_closed(
    session: Session, full_name: str, number: int, merged: bool, at: datetime
) -> int:
    """Every run on this pull request (a first run and its revisions) learns its outcome;
    a hosted agent's run, its time to it (all GitHub says of it). The runs recorded."""
    tasks = _runs_of(session, full_name, number)
    for task in tasks:
        task.pull_request_outcome = MERGED if merged else CLOSED
        task.merged_at = at if merged else None
        if task.preset == "hosted" and task.wall_seconds is None and task.started_at:
            started = task.started_at.replace(tzinfo=task.started_at.tzinfo or at.tzinfo)
            task.wall_seconds = max(0.0, (at - started).total_seconds())
    return len(tasks)


def record_pull_request_reopened(session: Session, full_name: str, number: int) -> int:
    tasks = _runs_of(session, full_name, number)
    for task in tasks:
        task.pull_request_outcome, task.merged_at = OPEN, None
    return len(tasks)


def _runs_of(session: Session, full_name: str, number: int) -> list[Task]:
    return list(
        session.scalars(
            select(Task)
            .join(Ticket, Task.ticket_id == Ticket.id)
            .join(Repository, Ticket.repository_id == Repository.id)
            .where(Repository.full_name == full_name, Task.pull_request_number == number)
        ).all()
    )


def cost_text(usd: float | None, estimated: bool = False) -> str:
    """A cost as people read it: `$0.42`; `~$0.42` when priced from tokens by the
    profile's table, not the agent's own figure; `unknown` when none was recorded."""
    if usd is None:
        return "unknown"
    return f"{'~' if estimated else ''}${usd:.2f}"


def _added(total: int | None, more: int | None) -> int | None:
    if more is None:
        return total
    return (total or 0) + more
