"""A spec's progress, and its tracking issue closing when every ticket has."""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot import render
from bot.github import RepositoryGateway
from storage.models import IssueState, Spec, SpecStatus


def refresh_progress(session: Session, spec: Spec, repo: RepositoryGateway) -> None:
    """Count the spec's tickets; close or reopen its tracking issue to match."""
    tickets = list(spec.tickets)
    closed = [t for t in tickets if t.state is not IssueState.OPEN]
    spec.tickets_total, spec.tickets_closed = len(tickets), len(closed)
    if spec.status is SpecStatus.CANCELLED or spec.tracking_issue_number is None:
        return
    if tickets and len(closed) == len(tickets):
        if not spec.tracking_issue_closed:
            repo.comment_on_issue(
                spec.tracking_issue_number, render.completion_comment(spec, tickets)
            )
            repo.close_issue(spec.tracking_issue_number, "completed")
            spec.tracking_issue_closed = True
        spec.status = SpecStatus.COMPLETED
    else:
        if spec.tracking_issue_closed:
            reopened = next(t for t in tickets if t.state is IssueState.OPEN)
            repo.reopen_issue(spec.tracking_issue_number)
            repo.comment_on_issue(spec.tracking_issue_number, render.reopened_comment(reopened))
            spec.tracking_issue_closed = False
        spec.status = SpecStatus.EXECUTING if closed else SpecStatus.PLANNED
    session.flush()
