"""`pull_request` opened, synchronize or reopened → the `specbridge` check on its head;
any change of a pull request that closes a hosted agent's issue → its card and task."""

from __future__ import annotations

from bot.agents.hosted import PullRequest, follow_pull_request
from bot.events.router import Event, router
from bot.repositories import find_repository
from bot.review.checks import CheckTarget, check_head
from bot.sync.proposals import drop_proposal, is_proposal_branch


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


@router.register(
    "pull_request",
    "opened",
    "reopened",
    "edited",
    "ready_for_review",
    "converted_to_draft",
    "closed",
)
def on_hosted_agent_pull_request(event: Event) -> None:
    """Follow the pull request of an agent GitHub runs (bot/agents/hosted.py)."""
    pull = PullRequest.from_payload(event.action or "", event.payload["pull_request"])
    event.session.commit()
    follow_pull_request(
        event.session,
        event.settings,
        event.repository_gateway(),
        event.board_gateway(),
        pull,
    )


@router.register("pull_request", "closed")
def on_proposal_closed(event: Event) -> None:
    """A task proposed from GitHub whose pull request closed without merging: dropped, so
    a task given that id later does not adopt the issue (bot/sync/proposals.py)."""
    pull = event.payload["pull_request"]
    if pull.get("merged") or not is_proposal_branch(pull["head"]["ref"]):
        return
    repository = find_repository(event.session, event.repository_full_name or "")
    if repository is not None:
        drop_proposal(event.session, repository, pull["head"]["ref"])
