"""`specbridge reconcile`: read each board and apply the moves people made.

Boards owned by a user send no `projects_v2_item` webhooks; run this from
cron (or any scheduler) so such boards steer tickets too.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.github import BoardGateway, RepositoryGateway, github_client
from bot.github.projects import BoardNotFound
from bot.locks import exclusive, spec_lock
from bot.settings import Settings
from bot.steer.steering import Steering
from storage.db import session_scope
from storage.models import Repository, Ticket


def reconcile(settings: Settings, full_name: str | None = None) -> list[str]:
    """Apply every card's column to its ticket; one line per change made."""
    changes: list[str] = []
    with session_scope(settings.database_url) as session:
        query = select(Repository).where(Repository.removed_at.is_(None))
        if full_name:
            query = query.where(Repository.full_name == full_name)
        repositories = session.scalars(query).all()
        for repository in repositories:
            project = (repository.settings or {}).get("project")
            if not project:
                continue
            installation = repository.installation_github_id
            session.commit()
            client = github_client(settings, installation)
            boards = BoardGateway(client)
            try:
                board = boards.find_board(project["owner"], project["number"])
            except BoardNotFound as error:
                changes.append(f"{repository.full_name}: {error}")
                continue
            steering = Steering(
                session, settings, RepositoryGateway(client, repository.full_name), boards
            )
            tickets = {
                t.issue_node_id: t
                for t in session.scalars(
                    select(Ticket).where(Ticket.repository_id == repository.id)
                )
            }
            session.commit()
            for _item, issue_node_id, column in boards.items(board):
                ticket = tickets.get(issue_node_id)
                if ticket is None or ticket.spec is None:
                    continue
                with exclusive(settings, spec_lock(repository.full_name, ticket.spec.key)):
                    session.refresh(ticket)
                    result = steering.apply_column(ticket, column, "board")
                    session.commit()
                if result:
                    changes.append(f"{repository.full_name}#{ticket.issue_number}: {result}")
    return changes
