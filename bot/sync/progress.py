"""A spec's progress, and its tracking issue closing when every ticket has.

Counting is two aggregate queries, whatever the spec's size; the tracking
issue's body (which lists and draws every ticket) is rewritten by a job of
its own a few seconds later, once for a burst of changes (`refresh_tracking`).
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.github import RepositoryGateway
from bot.hooks import on_ticket_changed
from bot.locks import exclusive, spec_lock
from bot.logs import log_context
from bot.queue import INTERACTIVE, enqueue_coalesced
from bot.repo_config import RepoConfig
from bot.settings import Settings, get_settings
from bot.sync import render
from bot.sync.github_side import github_side_for
from bot.sync.writer import SpecWriter
from storage.db import session_scope
from storage.models import IssueState, Spec, SpecStatus, Ticket

log = logging.getLogger(__name__)

# Changes within this many seconds share one rewrite of the tracking issue.
TRACKING_REFRESH_DELAY = 3


def refresh_progress(session: Session, spec: Spec, repo: RepositoryGateway) -> None:
    """Count the spec's tickets; close or reopen its tracking issue to match."""
    total, closed = session.execute(
        select(func.count(), func.count().filter(Ticket.state != IssueState.OPEN)).where(
            Ticket.spec_id == spec.id
        )
    ).one()
    spec.tickets_total, spec.tickets_closed = total, closed
    if spec.status is SpecStatus.CANCELLED or spec.tracking_issue_number is None:
        session.commit()
        return
    if total and closed == total:
        spec.status = SpecStatus.COMPLETED
        if not spec.tracking_issue_closed:
            tickets = list(spec.tickets)
            said = render.completion_comment(spec, tickets)  # read before the commit
            spec.tracking_issue_closed = True
            session.commit()
            repo.comment_on_issue(spec.tracking_issue_number, said)
            repo.close_issue(spec.tracking_issue_number, "completed")
    else:
        spec.status = SpecStatus.EXECUTING if closed else SpecStatus.PLANNED
        if spec.tracking_issue_closed:
            reopened = session.scalars(
                select(Ticket)
                .where(Ticket.spec_id == spec.id, Ticket.state == IssueState.OPEN)
                .limit(1)
            ).one()
            spec.tracking_issue_closed = False
            session.commit()
            repo.reopen_issue(spec.tracking_issue_number)
            repo.comment_on_issue(spec.tracking_issue_number, render.reopened_comment(reopened))
    session.commit()


@on_ticket_changed
def ticket_changed(settings: Settings, ticket: Ticket) -> None:
    """A ticket's phase (a card moved, an agent run's step) or block changed: its spec's
    tracking issue shows it within seconds, once for a burst of changes. Best effort: the
    change itself is recorded already, and the next change or sync shows it otherwise."""
    if ticket.spec_id is None:
        return
    try:
        queue_tracking_refresh(settings, ticket.spec_id)
    except Exception:  # the queue is away: not worth failing the person's move for
        log.warning("could not queue the tracking issue's refresh", exc_info=True)


def queue_tracking_refresh(settings: Settings, spec_id: int) -> None:
    """Rewrite the tracking issue soon, once for however many changes come meanwhile
    (people closed issues and look at it: interactive work)."""
    enqueue_coalesced(
        settings,
        INTERACTIVE,
        refresh_tracking,
        spec_id,
        f"tracking-{spec_id}",
        TRACKING_REFRESH_DELAY,
    )


def refresh_tracking(spec_id: int) -> None:
    """The queue job: the tracking issue (and group issues) as the spec is now."""
    settings = get_settings()
    with session_scope(settings.database_url) as session:
        spec = session.get(Spec, spec_id)
        if spec is None:
            return
        full_name = spec.repository.full_name
        session.commit()
        github = github_side_for(
            settings, spec.repository, RepoConfig.from_dict(spec.repository.settings)
        )
        with (
            log_context(repository=full_name, spec=spec.key),
            exclusive(settings, spec_lock(full_name, spec.key)) as lease,
        ):
            session.refresh(spec)
            SpecWriter(session, settings, github, spec, lease).refresh_groups_and_tracking()
