"""Handlers fed GitHub's own published payloads, with the exact requests they make."""

from __future__ import annotations

import json

import responses
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.events.router import Event, router
from bot.settings import Settings
from storage.models import (
    Installation,
    IssueState,
    Repository,
    Spec,
    SpecStatus,
    Ticket,
    TicketPhase,
)
from tests.support import MOCK_API, github_payload

API = MOCK_API


def dispatch(session: Session, settings: Settings, event: str, payload: dict) -> bool:  # type: ignore[type-arg]
    return router.dispatch(Event(event, payload, "delivery-1", settings, session))


def _repository_without_specs(full_name: str) -> None:
    """What the first sync of a newly installed repository reads: no spec file there."""
    api = f"{API}/repos/{full_name}"
    responses.get(api, json={"default_branch": "main"})
    responses.get(f"{api}/commits/main", json={"sha": "c0ffee"})
    for path in (".github/specbridge.yml", "specs"):
        responses.get(f"{api}/contents/{path}", status=404, json={"message": "Not Found"})


@responses.activate
def test_installation_repositories_added_and_removed(
    session: Session, handler_settings: Settings
) -> None:
    _repository_without_specs("Codertocat/Space")
    added = github_payload("installation_repositories", "added.payload.json")
    dispatch(session, handler_settings, "installation_repositories", added)
    repository = session.scalars(select(Repository)).one()
    assert repository.full_name == "Codertocat/Space"
    assert repository.installation is not None and repository.installation.github_id == 957387
    removed = github_payload("installation_repositories", "removed.payload.json")
    removed["repositories_removed"][0]["full_name"] = "Codertocat/Space"
    dispatch(session, handler_settings, "installation_repositories", removed)
    assert repository.removed_at is not None


@responses.activate
def test_installation_deleted_marks_it_and_its_repositories(
    session: Session, handler_settings: Settings
) -> None:
    _repository_without_specs("Codertocat/Hello-World")
    created = github_payload("installation", "created.payload.json")
    deleted = github_payload("installation", "deleted.payload.json")
    created["installation"]["id"] = deleted["installation"]["id"]
    dispatch(session, handler_settings, "installation", created)
    dispatch(session, handler_settings, "installation", deleted)
    installation = session.scalars(select(Installation)).one()
    assert [r.full_name for r in installation.repositories] == ["Codertocat/Hello-World"]
    assert installation.removed_at is not None
    assert all(r.removed_at is not None for r in installation.repositories)


@responses.activate
def test_a_push_of_a_tag_or_another_branch_does_nothing(
    session: Session, handler_settings: Settings
) -> None:
    payload = github_payload("push", "payload.json")  # a tag push
    assert payload["ref"].startswith("refs/tags/")
    dispatch(session, handler_settings, "push", payload)
    assert len(responses.calls) == 0
    assert session.scalars(select(Repository)).all() == []


@responses.activate
def test_closing_an_issue_that_is_no_ticket_does_nothing(
    session: Session, handler_settings: Settings
) -> None:
    dispatch(session, handler_settings, "issues", github_payload("issues", "reopened.payload.json"))
    assert len(responses.calls) == 0


def _spec_with_two_tickets(session: Session) -> tuple[Spec, list[Ticket]]:
    repository = Repository(full_name="Codertocat/Hello-World")
    spec = Spec(
        repository=repository,
        key="login",
        path="specs/login.yaml",
        title="Login",
        phase="tasks",
        status=SpecStatus.PLANNED,
        tracking_issue_number=10,
    )
    tickets = [Ticket(repository=repository, spec=spec, issue_number=n) for n in (1, 2)]
    session.add_all([repository, spec, *tickets])
    session.commit()
    return spec, tickets


def _issue(number: int, state: str, reason: str | None = None) -> dict:  # type: ignore[type-arg]
    return {
        "number": number,
        "id": number,
        "node_id": f"I_{number}",
        "title": "t",
        "body": "",
        "state": state,
        "state_reason": reason,
        "labels": [],
    }


@responses.activate
def test_the_last_ticket_closing_closes_the_tracking_issue(
    session: Session, handler_settings: Settings
) -> None:
    spec, tickets = _spec_with_two_tickets(session)
    tickets[0].state, tickets[0].state_reason = IssueState.CLOSED, "completed"
    session.commit()
    responses.get(
        f"{API}/repos/Codertocat/Hello-World/issues/2", json=_issue(2, "closed", "completed")
    )
    comment = responses.post(
        f"{API}/repos/Codertocat/Hello-World/issues/10/comments", json={}, status=201
    )
    close = responses.patch(
        f"{API}/repos/Codertocat/Hello-World/issues/10", json=_issue(10, "closed")
    )
    payload = github_payload("issues", "reopened.payload.json")
    payload["action"] = "closed"
    payload["issue"]["number"] = 2

    dispatch(session, handler_settings, "issues", payload)

    assert tickets[1].state is IssueState.CLOSED
    assert tickets[1].phase is TicketPhase.DONE
    assert "complete" in json.loads(comment.calls[0].request.body)["body"]
    assert json.loads(close.calls[0].request.body) == {
        "state": "closed",
        "state_reason": "completed",
    }
    assert spec.status is SpecStatus.COMPLETED
    assert (spec.tickets_total, spec.tickets_closed) == (2, 2)


@responses.activate
def test_an_event_is_applied_as_the_issue_is_now(
    session: Session, handler_settings: Settings
) -> None:
    """A late `closed` event for an issue reopened since changes nothing."""
    _, tickets = _spec_with_two_tickets(session)
    responses.get(f"{API}/repos/Codertocat/Hello-World/issues/1", json=_issue(1, "open"))
    payload = github_payload("issues", "reopened.payload.json")
    payload["action"] = "closed"
    dispatch(session, handler_settings, "issues", payload)
    assert tickets[0].state is IssueState.OPEN
    assert [c.request.method for c in responses.calls] == ["GET"]
