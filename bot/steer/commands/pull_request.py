"""Commands on an agent's pull request, where its reviewers are: revise."""

from __future__ import annotations

from bot.steer.commands.registry import CommandError, Context, Where, command


@command(
    "revise",
    Where.PULL_REQUEST,
    "/revise <what to change>",
    "run the agent again on this branch, told what to change (as a review that requests "
    "changes does)",
)
def revise(ctx: Context, args: str) -> str:
    text = args.strip()
    if not text:
        raise CommandError(
            "`/revise` needs what to change, e.g. `/revise reject an empty password too`."
        )
    assert ctx.ticket is not None
    request = f"@{ctx.user} asked on pull request #{ctx.issue_number} (`/revise`):\n\n{text}"
    return ctx.steering.revise(ctx.ticket, request)
