"""Each repository's specs, checked against its default branch's head.

A push GitHub gave up on longer ago than it keeps its deliveries (a few days)
cannot be redelivered. So every SPECBRIDGE_HEAD_CHECK_SECONDS (and at start;
one process per round) each repository's head commit is read, one REST
request per repository, and compared with `repositories.synced_head`, the head
whose spec files are all known synced. Only when they differ is the repository
synced, in a delivery of its own (`specbridge_head_sync`, its id naming the
head, so one head is synced once): every spec file at the head, as
`specbridge sync` does, and the specs whose files are gone cancelled.

`synced_head` moves with each push delivery handled whose `before` is the
recorded head (bot/events/handlers/heads.py): while no push is lost, the heads
agree and nothing is synced twice. A repository with a delivery still being
worked on is checked next round.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from bot.events.chore_runs import claim_round
from bot.events.deliveries import hand_on
from bot.github import RepositoryGateway, github_client, installation_id_for
from bot.settings import Settings
from storage.db import session_scope
from storage.models import Delivery, DeliveryStatus, Installation, Repository

log = logging.getLogger(__name__)

CHORE = "head-check"
# The event of the deliveries handed on to sync a repository at its head (not one of GitHub's).
HEAD_SYNC = "specbridge_head_sync"
UNFINISHED = (DeliveryStatus.RECEIVED, DeliveryStatus.QUEUED, DeliveryStatus.PROCESSING)


def check_heads_when_due(settings: Settings) -> int:
    """The periodic chore: one process per interval runs `check_heads`."""
    if settings.head_check_seconds == 0:
        return 0
    if settings.github_token is None and not settings.uses_app_auth:
        return 0  # no way to read GitHub
    if not claim_round(settings, CHORE, settings.head_check_seconds):
        return 0
    return check_heads(settings)


def check_heads(settings: Settings) -> int:
    """Queue a sync of each repository whose head is not the synced one; returns how many."""
    with session_scope(settings.database_url) as session:
        repositories = session.execute(
            select(
                Repository.id,
                Repository.github_id,
                Repository.full_name,
                Repository.default_branch,
                Repository.synced_head,
                Installation.github_id,
            )
            .outerjoin(Installation, Repository.installation_id == Installation.id)
            .where(
                Repository.removed_at.is_(None),
                Installation.removed_at.is_(None),
                Installation.suspended_at.is_(None),
            )
            .order_by(Repository.id)
        ).all()
        busy = set(
            session.scalars(
                select(Delivery.repository_full_name)
                .where(Delivery.status.in_(UNFINISHED), Delivery.repository_full_name.is_not(None))
                .distinct()
            )
        )
    queued = 0
    for pk, github_id, full_name, branch, synced_head, installation in repositories:
        if full_name in busy:
            continue  # what is being worked on may move it: next round
        try:
            installation = installation or installation_id_for(settings, full_name)
            head = RepositoryGateway(github_client(settings, installation), full_name).commit_sha(
                branch
            )
        except Exception:  # one repository out of reach must not stop the others
            log.warning("could not read the head of %s", full_name, exc_info=True)
            continue
        if head == synced_head:
            continue
        log.info(
            "%s is at %s but its specs were synced at %s: syncing",
            full_name,
            head[:7],
            (synced_head or "no known head")[:13],
        )
        payload = {
            "repository": {"id": github_id, "full_name": full_name},
            "installation": {"id": installation},
            "head": head,
        }
        hand_on(settings, "head-check", f"{pk}-{head}", HEAD_SYNC, payload)
        queued += 1
    return queued
