"""`check_run` rerequested (a person re-ran the `specbridge` check) → a new run."""

from __future__ import annotations

from bot.events.router import Event, router
from bot.review.checks import CHECK_NAME, check_head, target_of


@router.register("check_run", "rerequested")
def on_check_run(event: Event) -> None:
    run = event.payload["check_run"]
    if run["name"] != CHECK_NAME:
        return  # another app's check
    check_head(event, target_of(event, run["head_sha"], run.get("pull_requests") or [], True))
