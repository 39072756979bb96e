"""The stored delivery, not the queue, decides what is left to do: nothing stored
is lost when the queue or a worker fails, and nothing is processed twice."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import responses
from flask.testing import FlaskClient
from rq.job import Job
from sqlalchemy import update

from bot.events import deliveries, maintenance
from bot.events.deliveries import requeue_unfinished, store_delivery
from bot.github.auth import pace_key
from bot.locks import bulk_slot
from bot.queue import move_due_jobs
from bot.settings import get_settings, load_settings
from bot.web.app import create_app
from storage.db import session_scope
from storage.models import Delivery, DeliveryStatus
from tests.support import MOCK_API, github_payload
from tests.unit.conftest import post_webhook, run_queued_jobs, stored_deliveries

INSTALLATION = github_payload("installation", "created.payload.json")
INSTALLATION["repositories"] = []  # no repository to sync: these tests reach no GitHub


def _set(db: str, **values: object) -> None:
    with session_scope(db) as session:
        session.execute(update(Delivery).values(**values))


def test_a_delivery_the_queue_could_not_take_is_stored_then_processed(
    client: FlaskClient, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    if not settings.redis_url:
        pytest.skip("the embedded queue cannot be unreachable (REDIS_URL is not set)")
    # Redis is down: nothing listens on port 1.
    down = load_settings({"DATABASE_URL": db, "REDIS_URL": "redis://127.0.0.1:1/0"})
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "It's a Secret to Everybody")
    offline = create_app(load_settings({**_env(db), "REDIS_URL": down.redis_url})).test_client()

    response = post_webhook(offline, "installation", INSTALLATION, "while-down")

    assert response.status_code == 202
    assert response.json == {"delivery": "while-down", "status": "stored"}
    [stored] = stored_deliveries(db)
    assert stored.status is DeliveryStatus.RECEIVED

    # Redis is back: the sweep queues it, with nobody pressing Redeliver.
    assert requeue_unfinished(settings) == 1
    run_queued_jobs(db)
    [processed] = stored_deliveries(db)
    assert (processed.status, processed.attempts) == (DeliveryStatus.DONE, 1)


def _env(db: str) -> dict[str, str]:
    return {"DATABASE_URL": db, "GITHUB_WEBHOOK_SECRET": "It's a Secret to Everybody"}


def test_a_queued_delivery_whose_job_vanished_is_queued_again(client: FlaskClient, db: str) -> None:
    """Redis restarted with nothing in it: the row still says queued."""
    _stored_without_job("lost-job")
    _set(db, received_at=datetime.now(UTC) - timedelta(minutes=5))

    assert requeue_unfinished(get_settings()) == 1
    run_queued_jobs(db)
    assert [d.status for d in stored_deliveries(db)] == [DeliveryStatus.DONE]


def test_a_delivery_whose_worker_died_is_processed_after_its_lease(
    client: FlaskClient, db: str
) -> None:
    _stored_without_job("dead-worker")
    lapsed = datetime.now(UTC) - timedelta(seconds=1)
    _set(db, status=DeliveryStatus.PROCESSING, attempts=1, lease_until=lapsed)

    assert requeue_unfinished(get_settings()) == 1
    run_queued_jobs(db)
    [delivery] = stored_deliveries(db)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DONE, 2)


def test_a_killed_workers_delivery_runs_again_after_its_lease_not_rqs_timeout(
    client: FlaskClient, db: str
) -> None:
    """SIGKILLed mid-job, a worker leaves its RQ job `started` until the job timeout
    (15 minutes): the delivery's lease, not RQ, says it is dead."""
    settings = get_settings()
    if not settings.redis_url:
        pytest.skip("the embedded queue's jobs run in this process: they die with it")
    _stored_without_job("killed-worker")
    [stored] = stored_deliveries(db)
    lapsed = datetime.now(UTC) - timedelta(seconds=1)
    _set(db, status=DeliveryStatus.PROCESSING, attempts=1, lease_until=lapsed)
    job = Job.key_for(f"delivery-{stored.id}")
    deliveries.redis_connection(settings.redis_url).hset(job, "status", "started")

    assert requeue_unfinished(settings) == 1
    run_queued_jobs(db)
    [delivery] = stored_deliveries(db)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DONE, 2)


def test_a_delivery_whose_lease_is_live_is_left_to_its_worker(client: FlaskClient, db: str) -> None:
    _stored_without_job("busy")
    live = datetime.now(UTC) + timedelta(seconds=30)
    _set(db, status=DeliveryStatus.PROCESSING, attempts=1, lease_until=live)

    assert requeue_unfinished(get_settings()) == 0


def test_a_dead_workers_delivery_is_taken_back_within_a_minute_by_default() -> None:
    """The lease runs out, then the next sweep (every two heartbeats) queues it."""
    settings = load_settings({})
    assert settings.delivery_lease_seconds + maintenance.interval(settings) <= 60


def test_a_redelivery_of_an_unfinished_delivery_processes_it(client: FlaskClient, db: str) -> None:
    _stored_without_job("redelivered")  # its job was lost; GitHub (or a person) sends it again

    response = post_webhook(client, "installation", INSTALLATION, "redelivered")

    assert (response.status_code, response.json["status"]) == (202, "queued")
    run_queued_jobs(db)
    assert [d.status for d in stored_deliveries(db)] == [DeliveryStatus.DONE]


def test_a_failing_delivery_is_retried_then_kept_as_failed(
    client: FlaskClient, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures = []

    def broken(event) -> None:  # type: ignore[no-untyped-def]
        failures.append(event.delivery_id)
        raise ConnectionError("GitHub is unreachable")

    monkeypatch.setattr(deliveries.router, "dispatch", broken)
    monkeypatch.setattr(deliveries, "RETRY_DELAYS", (0, 0))
    monkeypatch.setattr(deliveries, "MAX_ATTEMPTS", 3)
    post_webhook(client, "installation", INSTALLATION, "flaky")
    for _ in range(3):
        run_queued_jobs(db)
        requeue_unfinished(get_settings())

    [delivery] = stored_deliveries(db)
    assert failures == ["flaky"] * 3
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 3)
    assert "GitHub is unreachable" in (delivery.error or "")


def test_events_the_app_itself_caused_are_stored_not_queued(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db)
    app = create_app(load_settings({**_env(db), "GITHUB_APP_SLUG": "specbridge"}))
    payload = github_payload("issues", "opened.payload.json")
    payload["sender"] = {**payload["sender"], "login": "specbridge[bot]", "type": "Bot"}

    response = post_webhook(app.test_client(), "issues", payload, "own")

    assert (response.status_code, response.json["status"]) == (200, "ignored")
    [delivery] = stored_deliveries(db)
    assert delivery.status is DeliveryStatus.IGNORED
    assert requeue_unfinished(get_settings()) == 0


def _stored_without_job(delivery_id: str) -> None:
    """A delivery stored and marked queued whose job is gone, as after a crash."""
    stored = store_delivery(get_settings(), delivery_id, "installation", INSTALLATION)
    assert stored.queue


def test_the_dispatcher_outlives_redis_and_stops_with_its_worker(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run in its own process beside the worker: a Redis error must not end it, and
    it must end when the worker that started it is gone."""
    calls: list[str] = []

    def dispatch(_settings: object) -> int:
        calls.append("dispatch")
        if len(calls) == 1:
            raise deliveries.RedisError("Connection refused")
        return 0

    parents = iter([100, 100, 100, 1])  # the worker (pid 100) dies after two rounds
    monkeypatch.setattr(deliveries, "dispatch_announced", dispatch)
    monkeypatch.setattr(deliveries.os, "getppid", lambda: next(parents))
    monkeypatch.setattr(deliveries.time, "sleep", lambda _seconds: calls.append("sleep"))

    deliveries.run_dispatcher(load_settings(_env(db)))

    assert calls == ["dispatch", "sleep", "dispatch"]


def test_an_announced_delivery_lost_with_redis_is_queued_by_the_sweep(
    client: FlaskClient, db: str
) -> None:
    settings = get_settings()
    if not settings.redis_url:
        pytest.skip("deliveries are announced through Redis only when REDIS_URL is set")
    post_webhook(client, "installation", INSTALLATION, "announced")
    deliveries.redis_connection(settings.redis_url).flushdb()  # Redis restarted empty
    _set(db, received_at=datetime.now(UTC) - timedelta(minutes=5))

    assert requeue_unfinished(settings) == 1
    run_queued_jobs(db)
    assert [d.status for d in stored_deliveries(db)] == [DeliveryStatus.DONE]


@responses.activate
def test_each_new_repository_is_synced_in_a_delivery_of_its_own(
    client: FlaskClient, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One repository GitHub cannot show fails alone: the other is synced once, even
    when the installation's delivery comes again."""
    monkeypatch.setenv("GITHUB_API_URL", MOCK_API)
    get_settings.cache_clear()
    installed = github_payload("installation", "created.payload.json")
    broken = {**installed["repositories"][0], "id": 7, "full_name": "Codertocat/Gone"}
    installed["repositories"].append(broken)
    api = f"{MOCK_API}/repos/Codertocat/Hello-World"
    reads = [
        responses.get(api, json={"default_branch": "main"}),
        responses.get(f"{api}/commits/main", json={"sha": "c0ffee"}),
    ]
    for path in (".github/specbridge.yml", "specs", ".kiro/specs"):
        responses.get(f"{api}/contents/{path}", status=404, json={"message": "Not Found"})
    responses.get(f"{MOCK_API}/repos/Codertocat/Gone", status=404, json={"message": "Not Found"})

    post_webhook(client, "installation", installed, "installed")
    run_queued_jobs(db)
    post_webhook(client, "installation", installed, "installed")  # GitHub redelivers it
    run_queued_jobs(db)

    rows = {d.delivery_id: d for d in stored_deliveries(db)}
    assert set(rows) == {"installed", "installed/sync-186853002", "installed/sync-7"}
    assert rows["installed"].status is DeliveryStatus.DONE
    synced, failed = rows["installed/sync-186853002"], rows["installed/sync-7"]
    assert (synced.event, synced.repository_full_name) == (
        "specbridge_first_sync",
        "Codertocat/Hello-World",
    )
    assert (synced.status, synced.attempts) == (DeliveryStatus.DONE, 1)
    assert [r.call_count for r in reads] == [1, 1]
    assert failed.attempts == 1 and failed.next_attempt_at is not None  # retried on its own
    assert "Not Found" in (failed.error or "")


def test_a_delivery_put_off_for_its_installations_busy_slot_runs_by_itself_once_due(
    client: FlaskClient, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its retry is a delayed job of its own, which RQ does not delete with the job that
    queued it: it runs when due, with no sweep to find it (finding 11 of issue 29: the
    pushes stored when PostgreSQL came back waited behind the installation's sync, and
    each retry waited for the sweep)."""
    settings = get_settings()
    if not settings.redis_url:
        pytest.skip("the embedded queue's delays are timers of this process")
    monkeypatch.setattr(deliveries, "SLOT_BUSY_DELAY", 1)
    held, release = threading.Event(), threading.Event()

    def a_sync_of_the_installation() -> None:
        owner = pace_key(settings, INSTALLATION["installation"]["id"])
        with bulk_slot(settings, owner):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=a_sync_of_the_installation)
    holder.start()
    try:
        assert held.wait(10)
        post_webhook(client, "installation", INSTALLATION, "behind-a-sync")
        run_queued_jobs(db)  # its job finds the slot taken and puts the delivery off
    finally:
        release.set()
        holder.join()
    [waiting] = stored_deliveries(db)
    assert (waiting.status, waiting.attempts) == (DeliveryStatus.QUEUED, 0)

    time.sleep(1.1)  # its time comes
    assert move_due_jobs(settings) == 1  # as every worker's dispatcher does each second
    run_queued_jobs(db)

    [delivery] = stored_deliveries(db)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DONE, 1)
