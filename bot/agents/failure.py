"""A task that failed, shown where people look, and taken back when a new run starts.

The ticket records why (`Ticket.failure`): the tracking issue counts, draws and lists it
as failed, the status page too, and GitHub shows it on the card and with a label
(bot/github/failures.py). A run that starts again (`/retry`, a card moved to Analyzing
or Building, a revision) clears all of it; so does the issue closing as completed.
"""

from __future__ import annotations

import logging

from github import GithubException
from requests import RequestException
from sqlalchemy.orm import Session

from bot.github import BoardGateway, RepositoryGateway, github_client
from bot.github.failures import phase_after_failure, show_failure, unshow_failure
from bot.hooks import ticket_changed
from bot.locks import Lease, LockBusy, LockLost, card_lock, exclusive
from bot.settings import Settings
from storage.db import session_scope
from storage.models import Task, Ticket

log = logging.getLogger(__name__)

# The reason as the board's neighbours show it: a line, not a log.
MAX_REASON_CHARS = 500


def show_failed(
    session: Session,
    settings: Settings,
    boards: BoardGateway,
    repo: RepositoryGateway,
    ticket: Ticket,
    reason: str,
    lease: Lease | None = None,
) -> None:
    """Record why the ticket's run failed and show it: card, label, tracking issue. The
    failure is recorded first; the card's phase under its lock (`lease`: the caller holds
    it already); GitHub's part is best effort (logged when GitHub fails: the tracking
    issue and the status page still say it)."""
    full_name, number = ticket.repository.full_name, ticket.issue_number
    ticket.failure = _one_line(reason)
    session.commit()
    ticket_changed(settings, ticket)  # the tracking issue, within seconds
    try:
        if lease is not None:
            _show(session, settings, boards, repo, ticket, lease)
        else:
            with exclusive(settings, card_lock(full_name, number)) as held:
                _show(session, settings, boards, repo, ticket, held)
    except (GithubException, RequestException, LockBusy, LockLost) as error:
        session.rollback()
        log.warning("%s#%s failed, not shown on GitHub: %s", full_name, number, error)
        return
    log.info("%s#%s shown failed: %s", full_name, number, ticket.failure)


def show_task_failed(settings: Settings, task_id: int, reason: str) -> None:
    """The same, for a task known by its id (the reaper's: its worker died too often)."""
    with session_scope(settings.database_url) as session:
        ticket = session.get_one(Task, task_id).ticket
        repository = ticket.repository
        installation = repository.installation_github_id
        full_name = repository.full_name
        session.commit()
        connection = github_client(settings, installation)
        repo = RepositoryGateway(connection, full_name)
        show_failed(session, settings, BoardGateway(connection), repo, ticket, reason)


def _show(
    session: Session,
    settings: Settings,
    boards: BoardGateway,
    repo: RepositoryGateway,
    ticket: Ticket,
    lease: Lease,
) -> None:
    session.refresh(ticket, ["phase", "state", "failure"])
    session.commit()
    if ticket.failure is None:  # a new run started meanwhile
        return
    phase = phase_after_failure(boards, ticket)
    shown_as, ticket.phase = ticket.phase, phase
    session.commit()
    ticket_changed(settings, ticket)
    lease.check()
    show_failure(boards, repo, ticket, shown_as)


def clear_failed(
    session: Session,
    settings: Settings,
    boards: BoardGateway,
    repo: RepositoryGateway,
    ticket: Ticket,
) -> None:
    """A new run starts (or the issue closed as completed): the failure is no more.
    Nothing is asked of GitHub when none was shown."""
    ticket.repository  # noqa: B018 - loaded now, read after the commit
    session.refresh(ticket, ["failure"])
    session.commit()
    if ticket.failure is None:
        return
    ticket.failure = None
    session.commit()
    ticket_changed(settings, ticket)
    unshow_failure(boards, repo, ticket)


def _one_line(reason: str) -> str:
    text = " ".join(reason.split())
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"
