"""/help: the commands that apply where it is typed."""

from __future__ import annotations

from bot.steer.commands.registry import Context, Where, available, command


@command(
    "help",
    Where.ANYWHERE,
    "/help",
    "list the commands that work here, with what each does",
    changes_things=False,
)
def help_(ctx: Context, _args: str) -> str:
    where = {
        Where.TICKET: "on a ticket",
        Where.TRACKING: "on a spec's tracking issue",
        Where.PULL_REQUEST: "on an agent's pull request",
        Where.ANYWHERE: "here",
        Where.IDEA: "on an idea's issue",
        Where.PLANNING: "on a planner's pull request",
    }[ctx.where]
    lines = [f"Commands {where} (those that change anything need write access):", ""]
    lines += [f"- `{c.usage}` — {c.summary}" for c in available(ctx.where)]
    return "\n".join(lines)
