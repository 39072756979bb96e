"""`status` (a commit status from a CI: pending, success, failure, error) on the head of
an agent's pull request → the repository's checks close the loop
(bot/agents/pull_checks.py). A status names the branches whose head it is, not pull
requests: the agents' pull requests are found by their branch."""

from __future__ import annotations

from typing import Any

from bot.agents.pull_checks import follow_checks, pulls_of_branches
from bot.events.router import Event, router


def _on_no_branch(payload: dict[str, Any]) -> bool:
    return not payload.get("branches")


@router.register("status", unless=_on_no_branch)
def on_status(event: Event) -> None:
    branches = [branch["name"] for branch in event.payload.get("branches") or []]
    numbers = pulls_of_branches(event.session, event.repository_full_name or "", branches)
    event.session.commit()
    if not numbers:
        return  # no agent's pull request
    follow_checks(
        event.session,
        event.settings,
        event.repository_gateway(),
        event.board_gateway(),
        numbers,
        event.payload["sha"],
    )
