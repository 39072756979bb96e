"""Commands that plan a spec from an idea (bot/steer/planning.py): specify on any issue,
plan and tasks on a planned spec's tracking issue, status on an idea's issue, revise on
a planner's pull request."""

from __future__ import annotations

from bot.agents.planning import describe, run_of_spec
from bot.steer import planning
from bot.steer.commands.registry import CommandError, Context, Where, command
from storage.models import PlanningRun


@command(
    "specify",
    Where.ANYWHERE,
    "/specify <what and why> | /specify continue",
    "write a spec from this idea: the planner proposes its requirements in a pull request; "
    "`continue` runs it again once its questions are answered",
)
def specify(ctx: Context, args: str) -> str:
    words = args.strip()
    if words == "continue":
        run = ctx.planning or (run_of_spec(ctx.session, ctx.spec) if ctx.spec else None)
        if run is None:
            raise CommandError("Nothing to continue: `/specify <what and why>` starts planning.")
        return planning.continue_idea(ctx.session, ctx.steering.settings, ctx.repo, run, ctx.user)
    if ctx.ticket is not None or ctx.spec is not None:
        raise CommandError(
            "This issue is a spec's already: `/specify` starts from an idea's issue."
        )
    if not words:
        raise CommandError(
            "`/specify` needs the idea, what and why, e.g. `/specify let people sign in "
            "with a link by email, because passwords get lost`."
        )
    return planning.start_idea(
        ctx.session,
        ctx.steering.settings,
        ctx.repo,
        ctx.repository,
        ctx.issue_number,
        ctx.user,
        words,
    )


@command(
    "status",
    Where.IDEA,
    "/status",
    "where this idea's planning is",
    changes_things=False,
)
def status(ctx: Context, _args: str) -> str:
    return describe(_run(ctx))


@command(
    "plan",
    Where.TRACKING,
    "/plan",
    "once the requirements are merged: the planner writes the design in a pull request",
)
def plan(ctx: Context, _args: str) -> str:
    assert ctx.spec is not None
    return planning.plan_next(
        ctx.session, ctx.steering.settings, ctx.repo, ctx.spec, "design", ctx.user
    )


@command(
    "tasks",
    Where.TRACKING,
    "/tasks",
    "once the design is merged: the planner writes the tasks in a pull request",
)
def tasks(ctx: Context, _args: str) -> str:
    assert ctx.spec is not None
    return planning.plan_next(
        ctx.session, ctx.steering.settings, ctx.repo, ctx.spec, "tasks", ctx.user
    )


@command(
    "revise",
    Where.PLANNING,
    "/revise <what to change>",
    "run the planner again on this branch, told what to change (as a review that "
    "requests changes does)",
)
def revise(ctx: Context, args: str) -> str:
    text = args.strip()
    if not text:
        raise CommandError("`/revise` needs what to change, e.g. `/revise split REQ-2 in two`.")
    request = f"@{ctx.user} asked on pull request #{ctx.issue_number} (`/revise`):\n\n{text}"
    return planning.revise(ctx.session, ctx.steering.settings, ctx.repo, _run(ctx), request)


def _run(ctx: Context) -> PlanningRun:
    assert ctx.planning is not None
    return ctx.planning
