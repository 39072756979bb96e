"""A push lost for longer than GitHub keeps deliveries is caught by comparing each
repository's head with the one its specs were synced at: one request per
repository when nothing changed, and a sync only when the heads differ."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import responses
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.events import chore_runs
from bot.events.heads import HEAD_SYNC, check_heads, check_heads_when_due
from bot.events.router import Event, router
from bot.settings import Settings, load_settings
from storage.db import session_scope
from storage.models import Delivery, DeliveryStatus, Installation, Repository
from tests.support import MOCK_API, github_payload
from tests.unit.conftest import HeldJob

API = f"{MOCK_API}/repos/acme/rocket"


@pytest.fixture(autouse=True)
def _a_process_just_started() -> Iterator[None]:
    chore_runs.forget_start()
    yield
    chore_runs.forget_start()


def _repository(db: str, synced_head: str | None, **fields: object) -> int:
    with session_scope(db) as session:
        repository = Repository(
            full_name="acme/rocket", github_id=77, default_branch="main", synced_head=synced_head
        )
        for name, value in fields.items():
            setattr(repository, name, value)
        session.add(repository)
        session.flush()
        return repository.id


def _head(sha: str) -> responses.BaseResponse:
    return responses.get(f"{API}/commits/main", json={"sha": sha})


def _deliveries(db: str) -> list[Delivery]:
    with session_scope(db) as session:
        return list(session.scalars(select(Delivery)))


@responses.activate
def test_a_repository_at_its_synced_head_costs_one_request(
    db: str, handler_settings: Settings, held_jobs: list[HeldJob]
) -> None:
    _repository(db, "abc123")
    read = _head("abc123")

    assert check_heads(handler_settings) == 0

    assert read.call_count == 1 and len(responses.calls) == 1
    assert _deliveries(db) == [] and held_jobs == []


@responses.activate
def test_a_repository_whose_head_moved_is_synced_in_a_delivery_once(
    db: str, handler_settings: Settings, held_jobs: list[HeldJob]
) -> None:
    pk = _repository(db, "abc123")
    read = _head("def456")

    assert check_heads(handler_settings) == 1
    assert check_heads(handler_settings) == 0  # its sync is waiting: not read again

    [delivery] = _deliveries(db)
    assert (delivery.delivery_id, delivery.event, delivery.status) == (
        f"head-check/{pk}-def456",
        HEAD_SYNC,
        DeliveryStatus.QUEUED,
    )
    assert delivery.payload["repository"] == {"id": 77, "full_name": "acme/rocket"}
    assert [job.job_id for job in held_jobs] == [f"delivery-{delivery.id}"]
    assert read.call_count == 1


@responses.activate
def test_a_repository_never_synced_is_synced(
    db: str, handler_settings: Settings, held_jobs: list[HeldJob]
) -> None:
    _repository(db, None)
    _head("abc123")
    assert check_heads(handler_settings) == 1


@responses.activate
def test_repositories_the_app_left_are_not_read(
    db: str, handler_settings: Settings, held_jobs: list[HeldJob]
) -> None:
    with session_scope(db) as session:
        session.add(Installation(github_id=5, account_login="acme", suspended_at=_now()))
    with session_scope(db) as session:
        installation = session.scalars(select(Installation)).one()
        session.add(Repository(full_name="acme/rocket", installation_id=installation.id))
        session.add(Repository(full_name="acme/gone", removed_at=_now()))

    assert check_heads(handler_settings) == 0
    assert len(responses.calls) == 0


@responses.activate
def test_one_repository_out_of_reach_does_not_stop_the_others(
    db: str, handler_settings: Settings, held_jobs: list[HeldJob]
) -> None:
    with session_scope(db) as session:
        session.add(Repository(full_name="acme/gone", default_branch="main"))
        session.add(Repository(full_name="acme/rocket", default_branch="main"))
    responses.get(f"{MOCK_API}/repos/acme/gone/commits/main", status=404, json={})
    _head("abc123")

    assert check_heads(handler_settings) == 1
    assert [d.repository_full_name for d in _deliveries(db)] == ["acme/rocket"]


@responses.activate
def test_one_process_checks_per_interval_and_not_without_credentials(
    db: str, handler_settings: Settings, held_jobs: list[HeldJob]
) -> None:
    _repository(db, "abc123")
    read = _head("abc123")
    check_heads_when_due(handler_settings)
    check_heads_when_due(handler_settings)
    assert read.call_count == 1
    chore_runs.forget_start()
    assert check_heads_when_due(load_settings({"DATABASE_URL": db})) == 0  # no GitHub access
    assert read.call_count == 1


# -- the sync at the head, and pushes that keep the recorded head current ----------------


def _dispatch(session: Session, settings: Settings, event: str, payload: dict) -> None:  # type: ignore[type-arg]
    router.dispatch(Event(event, payload, "d-1", settings, session))


@responses.activate
def test_the_head_sync_records_the_head_it_synced(
    db: str, session: Session, handler_settings: Settings
) -> None:
    _repository(db, "abc123")
    responses.get(API, json={"default_branch": "main"})
    _head("def456")
    for path in (".github/specbridge.yml", "specs", ".kiro/specs"):
        responses.get(f"{API}/contents/{path}", status=404, json={"message": "Not Found"})

    payload = {"repository": {"id": 77, "full_name": "acme/rocket"}, "installation": {"id": None}}
    _dispatch(session, handler_settings, HEAD_SYNC, payload)
    session.commit()

    assert session.scalars(select(Repository.synced_head)).one() == "def456"


def _push(before: str, after: str, **fields: object) -> dict:  # type: ignore[type-arg]
    payload = github_payload("push", "with-new-branch.payload.json")
    payload["repository"] = {
        **payload["repository"],
        "full_name": "acme/rocket",
        "id": 77,
        "default_branch": "main",
    }
    payload.pop("installation", None)
    commit = {"id": after, "added": ["README.md"], "modified": [], "removed": []}
    payload.update(ref="refs/heads/main", before=before, after=after, commits=[commit])
    payload.update({"deleted": False, "forced": False, **fields})
    return payload


@pytest.mark.parametrize(
    ("push", "recorded"),
    [
        (_push("abc123", "def456"), "def456"),  # from the synced head: still all synced
        (_push("999999", "def456"), "abc123"),  # one was missed: the head check syncs
        (_push("abc123", "def456", forced=True), "abc123"),  # its commits need not say all
        (_push("abc123", "def456", ref="refs/heads/topic"), "abc123"),
    ],
)
def test_a_push_moves_the_synced_head_only_from_the_synced_head(
    db: str,
    session: Session,
    handler_settings: Settings,
    push: dict,
    recorded: str,  # type: ignore[type-arg]
) -> None:
    _repository(db, "abc123")
    _dispatch(session, handler_settings, "push", push)
    session.commit()
    assert session.scalars(select(Repository.synced_head)).one() == recorded


def _now() -> datetime:
    return datetime.now(UTC)
