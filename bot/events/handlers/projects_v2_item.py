"""`projects_v2_item` → a card moved by a person becomes the ticket's phase; a card
moved by someone without write access to the repository is put back, with a comment.

GitHub sends these for organization-owned boards only; `specbridge reconcile`
applies the same moves for boards owned by a user.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from bot.events.router import Event, router
from bot.locks import exclusive, spec_lock
from bot.steer.permissions import may_steer, permission_to_steer
from bot.steer.steering import Steering
from storage.models import Ticket


def _not_a_persons_issue_card(payload: dict[str, Any]) -> bool:
    if (payload.get("projects_v2_item") or {}).get("content_type") != "Issue":
        return True
    return (payload.get("sender") or {}).get("type") == "Bot"


@router.register("projects_v2_item", "edited", "deleted", unless=_not_a_persons_issue_card)
def on_card(event: Event) -> None:
    item = event.payload["projects_v2_item"]
    if _not_a_persons_issue_card(event.payload):
        return  # drafts and pull requests; specbridge's own moves, and project automations'
    ticket = event.session.scalars(
        select(Ticket).where(
            or_(
                Ticket.project_item_id == item["node_id"],
                Ticket.issue_node_id == item["content_node_id"],
            )
        )
    ).first()
    if ticket is None or ticket.spec is None:
        return
    if event.action == "deleted":
        ticket.project_item_id = None  # the next sync puts it back on the board
        return
    if "field_value" not in (event.payload.get("changes") or {}):
        return
    session = event.session
    lock = spec_lock(ticket.repository.full_name, ticket.spec.key)
    full_name = ticket.repository.full_name
    session.commit()
    boards = event.board_gateway()
    repo = event.repository_gateway(full_name)
    with exclusive(event.settings, lock):
        # The payload names the field, not its value: read the card as it is now.
        column = boards.item_status(item["node_id"])
        session.refresh(ticket)
        steering = Steering(session, event.settings, repo, boards)
        if steering.phase_moved_to(ticket, column) is None:
            return
        session.commit()  # no transaction while GitHub answers
        permission = permission_to_steer(repo, event.sender)
        session.refresh(ticket)
        if may_steer(permission):
            steering.apply_column(ticket, column, event.sender)
        else:
            steering.refuse_move(ticket, column, event.sender, permission)
        session.commit()
