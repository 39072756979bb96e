"""`check_suite` rerequested (a person re-ran every check of a commit) → a new
`specbridge` run on its head; completed on the head of an agent's pull request (another
App's suite: a CI) → the repository's checks close the loop (bot/agents/pull_checks.py).

Only the re-run: a suite GitHub requests for a pushed commit comes with the
`pull_request` event for that push, which already checks it. GitHub lists a
suite's pull requests only when they come from the same repository; a suite
with none is checked against the default branch.
"""

from __future__ import annotations

from typing import Any

from bot.agents.pull_checks import follow_checks
from bot.events.router import Event, router
from bot.review.checks import check_head, target_of


@router.register("check_suite", "rerequested")
def on_check_suite(event: Event) -> None:
    suite = event.payload["check_suite"]
    check_head(event, target_of(event, suite["head_sha"], suite.get("pull_requests") or [], True))


def _on_no_pull_request(payload: dict[str, Any]) -> bool:
    return not (payload.get("check_suite") or {}).get("pull_requests")


@router.register("check_suite", "completed", unless=_on_no_pull_request)
def on_suite_completed(event: Event) -> None:
    suite = event.payload["check_suite"]
    numbers = [pull["number"] for pull in suite.get("pull_requests") or []]
    event.session.commit()
    follow_checks(
        event.session,
        event.settings,
        event.repository_gateway(),
        event.board_gateway(),
        numbers,
        suite["head_sha"],
    )
