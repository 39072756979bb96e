"""`pull_request` opened, synchronize or reopened → the `specbridge` check on its head;
any change of a pull request that closes a hosted agent's issue → its card and task;
closed or reopened → the outcome of the agent runs that made it."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.agents.costs import record_pull_request_closed, record_pull_request_reopened
from bot.agents.hosted import PullRequest, follow_pull_request
from bot.events.router import Event, router
from bot.repositories import find_repository
from bot.review.checks import CheckTarget, check_head
from bot.sync.proposals import is_proposal_branch, settle_proposal


@router.register("pull_request", "closed", "reopened")
def on_agent_pull_request_outcome(event: Event) -> None:
    """Merged, closed unmerged, or open again: recorded on every run of its task first, so
    a handler after this one failing never loses it (a redelivery records it again)."""
    pull = event.payload["pull_request"]
    full_name = event.repository_full_name or ""
    if event.action == "reopened":
        record_pull_request_reopened(event.session, full_name, pull["number"])
    else:
        merged = bool(pull.get("merged"))
        at = _timestamp(pull.get("merged_at")) or datetime.now(UTC)
        record_pull_request_closed(event.session, full_name, pull["number"], merged, at)
    event.session.commit()


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


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
    """The pull request of a task proposed from GitHub closed (bot/sync/proposals.py):
    unmerged, the proposal is dropped, so a task given that id later adopts nothing."""
    pull = event.payload["pull_request"]
    if not is_proposal_branch(pull["head"]["ref"]):
        return
    repository = find_repository(event.session, event.repository_full_name or "")
    if repository is not None:
        settle_proposal(event.session, repository, pull["head"]["ref"], bool(pull.get("merged")))
