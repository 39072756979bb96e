"""Commands on a ticket's issue: approve, retry, revise, cancel, status, phase, block,
unblock, agent."""

from __future__ import annotations

from bot.agents.fleet import waits_for
from bot.agents.profiles import load_profiles
from bot.agents.scheduler import agent_for, not_ready_because
from bot.github.text import shown
from bot.steer.commands.registry import CommandError, Context, Where, command
from bot.sync.progress import ticket_changed
from specs.model import MANUAL_AGENT
from storage.models import IssueState, TaskStatus, Ticket, TicketPhase


def _ticket(ctx: Context) -> Ticket:
    assert ctx.ticket is not None
    return ctx.ticket


@command(
    "approve",
    Where.TICKET,
    "/approve",
    "let this task start (its agent runs once its dependencies are done)",
)
def approve(ctx: Context, _args: str) -> str:
    return ctx.steering.approve(_ticket(ctx), ctx.user)


@command("retry", Where.TICKET, "/retry", "run this task's agent again (after a failure, say)")
def retry(ctx: Context, _args: str) -> str:
    return ctx.steering.start(_ticket(ctx))


@command(
    "revise",
    Where.TICKET,
    "/revise <what to change>",
    "run the agent again on its pull request's branch, told what to change "
    "(as a review that requests changes does)",
)
def revise(ctx: Context, args: str) -> str:
    text = args.strip()
    if not text:
        raise CommandError(
            "`/revise` needs what to change, e.g. `/revise reject an empty password too`."
        )
    request = f"@{ctx.user} asked on issue #{ctx.issue_number} (`/revise`):\n\n{text}"
    return ctx.steering.revise(_ticket(ctx), request)


@command(
    "cancel",
    Where.TICKET,
    "/cancel",
    "stop its queued or running agent; the ticket goes back to the backlog",
)
def cancel(ctx: Context, _args: str) -> str:
    return ctx.steering.cancel(_ticket(ctx), ctx.user)


@command(
    "status",
    Where.TICKET,
    "/status",
    "this ticket's phase, approval and agent attempts",
    changes_things=False,
)
def status(ctx: Context, _args: str) -> str:
    ticket = _ticket(ctx)
    lines = [
        f"- phase: **{ticket.phase.value}**, issue {ticket.state.value}",
        f"- approval: {ticket.approval.value.replace('_', ' ')}",
        f"- agent: `{agent_for(ticket)}`",
        f"- {'blocked: ' + (ticket.blocked_reason or '') if ticket.blocked else 'not blocked'}",
        f"- {_readiness(ctx, ticket)}",
    ]
    if ticket.failure and ticket.state is IssueState.OPEN:
        lines.insert(1, f"- **failed**: {ticket.failure} (`/retry` runs it again)")
    for task in ticket.tasks[-3:]:
        outcome = f" → #{task.pull_request_number}" if task.pull_request_number else ""
        error = f" ({shown(task.error)})" if task.error else ""  # may quote an agent
        lines.append(
            f"- task {task.id}: {task.status.value}, attempt {task.attempts}{outcome}{error}"
        )
    return "\n".join(lines)


def _readiness(ctx: Context, ticket: Ticket) -> str:
    """Whether the agent would run now; after its run succeeded, that its work waits for
    people (it is not "ready to run": it ran, and `/retry` would start over)."""
    last = ticket.tasks[-1] if ticket.tasks else None
    if last is not None and last.status is TaskStatus.WAITING:
        settings = ctx.steering.settings
        return f"waiting: task {last.id} waits for {waits_for(ctx.session, settings, last)}"
    reason = not_ready_because(ticket, ctx.steering.settings)
    if reason is None and last is not None and last.status is TaskStatus.SUCCEEDED:
        pull = f"#{last.pull_request_number}" if last.pull_request_number else "its work"
        return (
            f"the agent's run succeeded: {pull} waits for review and merge (`/retry` runs it again)"
        )
    return "ready to run" if reason is None else f"not ready: {reason}"


@command(
    "phase",
    Where.TICKET,
    "/phase <backlog|analyzing|building|testing|done>",
    "move the ticket (and its card) to a phase",
)
def phase(ctx: Context, args: str) -> str:
    try:
        wanted = TicketPhase(args.strip().lower())
    except ValueError:
        names = ", ".join(p.value for p in TicketPhase)
        raise CommandError(f"`/phase` takes one of {names}, not `{args.strip()}`.") from None
    return ctx.steering.set_phase(_ticket(ctx), wanted, ctx.user)


@command(
    "block",
    Where.TICKET,
    "/block <reason>",
    "mark the ticket blocked, with why: nothing new is queued for it",
)
def block(ctx: Context, args: str) -> str:
    if not args.strip():
        raise CommandError("`/block` needs a reason, e.g. `/block waiting for the API keys`.")
    ticket = _ticket(ctx)
    ticket.blocked, ticket.blocked_reason = True, args.strip()
    ctx.session.commit()
    ticket_changed(ctx.steering.settings, ticket)  # the tracking issue lists it, within seconds
    return f"Blocked: {ticket.blocked_reason}. Nothing new is queued until `/unblock`."


@command(
    "unblock", Where.TICKET, "/unblock", "clear the blocked mark; the task is queued if it is ready"
)
def unblock(ctx: Context, _args: str) -> str:
    ticket = _ticket(ctx)
    if not ticket.blocked:
        return "The ticket was not blocked."
    ticket.blocked, ticket.blocked_reason = False, None
    ctx.session.commit()
    ticket_changed(ctx.steering.settings, ticket)
    return "Unblocked. " + ctx.steering.start(ticket, explicit=False)


@command(
    "agent",
    Where.TICKET,
    "/agent <profile>",
    "work this task with another agent profile, or manual",
)
def agent(ctx: Context, args: str) -> str:
    name = args.strip()
    profiles = load_profiles(ctx.steering.settings)
    if name != MANUAL_AGENT and name not in profiles:
        known = ", ".join([*sorted(profiles), MANUAL_AGENT])
        raise CommandError(f"No agent profile named `{name}`; the operator defines: {known}.")
    _ticket(ctx).agent_override = name
    return f"This ticket's agent is now `{name}`."


@command(
    "attempt",
    Where.TICKET,
    "/attempt <profile> <profile> [...]",
    "run several agents on this task, each on its own branch and draft pull request, "
    "and keep the best",
)
def attempt(ctx: Context, args: str) -> str:
    return ctx.steering.attempt(_ticket(ctx), args.split())
