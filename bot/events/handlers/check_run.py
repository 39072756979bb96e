"""`check_run` rerequested (a person re-ran the `specbridge` check) → a new run;
created or completed, on the head of an agent's pull request (another App's check: a
CI) → the repository's checks close the loop (bot/agents/pull_checks.py)."""

from __future__ import annotations

from typing import Any

from bot.agents.pull_checks import follow_checks
from bot.events.router import Event, router
from bot.review.checks import CHECK_NAME, check_head, target_of


@router.register("check_run", "rerequested")
def on_check_run(event: Event) -> None:
    run = event.payload["check_run"]
    if run["name"] != CHECK_NAME:
        return  # another app's check
    check_head(event, target_of(event, run["head_sha"], run.get("pull_requests") or [], True))


def _on_no_pull_request(payload: dict[str, Any]) -> bool:
    """GitHub lists the run's pull requests (those of the same repository): none, no job."""
    return not (payload.get("check_run") or {}).get("pull_requests")


@router.register("check_run", "created", "completed", unless=_on_no_pull_request)
def on_check_news(event: Event) -> None:
    run = event.payload["check_run"]
    numbers = [pull["number"] for pull in run.get("pull_requests") or []]
    event.session.commit()
    follow_checks(
        event.session,
        event.settings,
        event.repository_gateway(),
        event.board_gateway(),
        numbers,
        run["head_sha"],
    )
