"""`check_suite` rerequested (a person re-ran every check of a commit) → a new
`specbridge` run on its head.

Only the re-run: a suite GitHub requests for a pushed commit comes with the
`pull_request` event for that push, which already checks it. GitHub lists a
suite's pull requests only when they come from the same repository; a suite
with none is checked against the default branch.
"""

from __future__ import annotations

from bot.events.router import Event, router
from bot.review.checks import check_head, target_of


@router.register("check_suite", "rerequested")
def on_check_suite(event: Event) -> None:
    suite = event.payload["check_suite"]
    check_head(event, target_of(event, suite["head_sha"], suite.get("pull_requests") or [], True))
