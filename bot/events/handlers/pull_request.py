"""`pull_request` opened, synchronize or reopened → the `specbridge` check on its head."""

from __future__ import annotations

from bot.events.router import Event, router
from bot.review.checks import CheckTarget, check_head


@router.register("pull_request", "opened", "synchronize", "reopened")
def on_pull_request(event: Event) -> None:
    pull = event.payload["pull_request"]
    check_head(
        event,
        CheckTarget(
            head_sha=pull["head"]["sha"],
            base_sha=pull["base"]["sha"],
            base_ref=pull["base"]["ref"],
            pull_number=pull["number"],
        ),
    )
