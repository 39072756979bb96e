"""`sub_issues` → tasks proposed from GitHub (bot/sync/proposals.py).

A person adds an existing issue as a sub-issue of a spec's tracking issue (or of one
of its group issues): a pull request adds the task to the spec file, and merging it
makes that issue the task's ticket. A person takes a ticket out of it: a pull request
removes the task. The bot's own links (sent by a bot: specbridge's when it files its
tickets) do nothing, nor do links of issues specbridge does not follow.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from bot.events.router import Event, router
from bot.locks import exclusive, spec_lock
from bot.repositories import find_repository, spec_tracked_by
from bot.sync.proposals import propose_adding, propose_removal
from storage.models import Ticket

log = logging.getLogger(__name__)


@router.register("sub_issues", "sub_issue_added", "sub_issue_removed")
def on_sub_issue(event: Event) -> None:
    payload = event.payload
    sender = payload.get("sender") or {}
    if sender.get("type") == "Bot" or sender.get("login", "").endswith("[bot]"):
        return  # specbridge's own links, and other bots'
    repository = find_repository(event.session, event.repository_full_name or "")
    child = payload.get("sub_issue") or {}
    if repository is None or not child:
        return
    if (payload.get("sub_issue_repo") or {}).get("full_name", repository.full_name) != (
        repository.full_name
    ):
        return  # an issue of another repository: a spec's tasks are its repository's
    spec = spec_tracked_by(event.session, repository.id, payload["parent_issue"]["number"])
    if spec is None:
        return
    session = event.session
    ticket = session.scalars(
        select(Ticket).where(
            Ticket.repository_id == repository.id, Ticket.issue_number == child["number"]
        )
    ).first()
    adding = event.action == "sub_issue_added"
    if adding and ticket is not None:
        return  # a ticket already (moved between a spec's parents)
    if not adding and (ticket is None or ticket.spec_id != spec.id):
        return
    full_name, key, parent = repository.full_name, spec.key, payload["parent_issue"]["number"]
    session.commit()
    repo = event.repository_gateway()
    with exclusive(event.settings, spec_lock(full_name, key)):
        session.refresh(spec)
        if adding:
            proposed = propose_adding(
                session,
                repo,
                spec,
                child.get("title") or f"Issue #{child['number']}",
                event.sender,
                issue=(child["number"], child["node_id"]),
            )
            said = (
                f"@{event.sender} added this issue to the spec `{key}` (#{parent}): "
                f"{proposed.said()} adds it to the spec as task `{proposed.task_key}`. "
                "Once merged, this issue is that task's issue."
            )
        else:
            assert ticket is not None
            session.refresh(ticket)
            why = f"took #{ticket.issue_number} out of #{parent}"
            proposed = propose_removal(session, repo, spec, ticket, event.sender, why)
            said = (
                f"@{event.sender} took this issue out of the spec `{key}` (#{parent}): "
                f"{proposed.said()} removes its task `{proposed.task_key}` from the spec. "
                "Close that pull request to keep the task."
            )
        if proposed.left:
            said = f"@{event.sender}: {proposed.said()}"
        if not proposed.again:
            repo.comment_on_issue(child["number"], said)
