"""Commands on a spec's tracking issue: approve all, status, sync, add-task."""

from __future__ import annotations

from bot.agents.planning import describe, run_of_spec
from bot.agents.scheduler import agent_for
from bot.steer.commands.registry import CommandError, Context, Where, command
from bot.sync.proposals import propose_adding
from storage.models import Approval, Spec, Task


def _spec(ctx: Context) -> Spec:
    assert ctx.spec is not None
    return ctx.spec


@command(
    "approve",
    Where.TRACKING,
    "/approve all",
    "approve every task of this spec that waits for approval",
)
def approve_all(ctx: Context, args: str) -> str:
    if args.strip() != "all":
        raise CommandError("On a tracking issue, `/approve all` approves every ticket of the spec.")
    pending = [t for t in _spec(ctx).tickets if t.approval is Approval.PENDING]
    if not pending:
        return "No ticket of this spec waits for approval."
    for ticket in pending:
        ctx.steering.approve(ticket, ctx.user)
    return f"Approved {len(pending)} ticket(s): " + ", ".join(f"#{t.issue_number}" for t in pending)


@command(
    "status",
    Where.TRACKING,
    "/status",
    "the spec's progress: its tickets by phase, blocked and running",
    changes_things=False,
)
def status(ctx: Context, _args: str) -> str:
    spec = _spec(ctx)
    progress = f"{spec.tickets_closed} of {spec.tickets_total} closed"
    lines = [
        f"**{spec.title}**: {spec.status.value}, {progress}",
        "",
        "| task | issue | phase | state | approval | agent | last task |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for ticket in sorted(spec.tickets, key=lambda t: t.issue_number):
        task_key = ticket.spec_task.key if ticket.spec_task else "?"
        last: Task | None = ticket.tasks[-1] if ticket.tasks else None
        last_text = f"{last.status.value} ({last.attempts})" if last else "-"
        lines.append(
            f"| {task_key} | #{ticket.issue_number} | {ticket.phase.value} | {ticket.state.value} "
            f"| {ticket.approval.value.replace('_', ' ')} | `{agent_for(ticket)}` | {last_text} |"
        )
    planned = run_of_spec(ctx.session, spec)  # a spec written from an idea: its phase too
    if planned is not None:
        lines[1:1] = ["", describe(planned)]
    return "\n".join(lines)


@command("sync", Where.TRACKING, "/sync", "sync this spec from the default branch now")
def sync(ctx: Context, _args: str) -> str:
    from bot.sync import GitHubSide, record_settings, sync_files

    spec = _spec(ctx)
    ctx.session.commit()
    commit, config = record_settings(
        ctx.session, ctx.steering.settings, ctx.repo, ctx.repository, ctx.repository.default_branch
    )
    github = GitHubSide(ctx.repo, ctx.steering.boards, config)
    report = sync_files(
        ctx.session,
        ctx.steering.settings,
        github,
        ctx.repository,
        commit,
        [spec.path],
        report_invalid_on_commit=False,
    )
    return f"Synced `{spec.path}` at {commit[:7]}:\n\n```\n{report}\n```"


@command(
    "add-task",
    Where.TRACKING,
    "/add-task <title>",
    "propose a task for this spec: a pull request adds it to the spec file",
)
def add_task(ctx: Context, args: str) -> str:
    title = " ".join(args.split())
    if not title:
        raise CommandError("`/add-task` needs the task's title, e.g. `/add-task Export as CSV`.")
    spec = _spec(ctx)
    asked_on = ctx.issue_number
    proposed = propose_adding(ctx.session, ctx.repo, spec, title, ctx.user, asked_on=asked_on)
    if proposed.left:
        raise CommandError(proposed.said())
    return (
        f"{proposed.said()} adds the task `{proposed.task_key}` to `{spec.path}`. "
        "Merging it opens the task's issue."
    )
