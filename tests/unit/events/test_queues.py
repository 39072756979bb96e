"""Which queue a delivery goes to, what gets no job at all, and interactive work
taken before bulk work."""

from __future__ import annotations

import threading

import pytest
from flask.testing import FlaskClient

from bot.events import deliveries
from bot.events.deliveries import (
    NO_HANDLER,
    NOT_OURS,
    OWN_EVENT,
    delivery_queue,
    queue_delivery,
    store_delivery,
)
from bot.events.handlers.installation import FIRST_SYNC
from bot.events.heads import HEAD_SYNC
from bot.events.router import Event, router
from bot.queue import (
    EVENT_QUEUES,
    EVENTS,
    INTERACTIVE,
    QUEUES,
    EmbeddedQueue,
    embedded_queue,
    redis_connection,
)
from bot.settings import get_settings, load_settings
from bot.web.app import create_app
from bot.web.metrics import render_metrics
from storage.models import DeliveryStatus
from tests.support import github_payload, jobs_end_with_the_test
from tests.unit.conftest import post_webhook, run_queued_jobs, stored_deliveries

SECRET = "It's a Secret to Everybody"


def test_syncs_are_bulk_and_what_people_wait_for_is_interactive() -> None:
    for event in ("push", "installation", "installation_repositories", FIRST_SYNC, HEAD_SYNC):
        assert delivery_queue(event) == EVENTS
    for event in ("issue_comment", "projects_v2_item", "pull_request", "issues", "check_run"):
        assert delivery_queue(event) == INTERACTIVE
    assert QUEUES[0] == INTERACTIVE  # every worker takes it first
    assert QUEUES.index(INTERACTIVE) < QUEUES.index(EVENTS)


def _queued_anything(settings) -> bool:  # type: ignore[no-untyped-def]
    if settings.redis_url:
        connection = redis_connection(settings.redis_url)
        keys = [deliveries.INBOX, *(f"rq:queue:{name}" for name in EVENT_QUEUES)]
        return any(connection.llen(key) for key in keys)
    return any(embedded_queue(name).waiting for name in EVENT_QUEUES)


@pytest.mark.parametrize(
    ("event", "fixture", "change", "reason"),
    [
        ("issues", "unlabeled.payload.json", {}, NO_HANDLER),
        ("issues", "labeled.payload.json", {}, NOT_OURS),  # not the label of an idea
        ("check_suite", "requested.payload.json", {}, NO_HANDLER),
        (
            "issue_comment",
            "created.payload.json",
            {"comment.user": {"login": "ci-bot[bot]", "type": "Bot", "id": 9}},
            NOT_OURS,
        ),
        (
            "issues",
            "reopened.payload.json",
            {"sender": {"login": "specbridge[bot]", "type": "Bot", "id": 7}},
            OWN_EVENT,
        ),
    ],
)
def test_a_delivery_that_needs_no_work_is_answered_200_with_no_job(
    client: FlaskClient,
    db: str,
    event: str,
    fixture: str,
    change: dict,  # type: ignore[type-arg]
    reason: str,
) -> None:
    settings = load_settings(
        {"DATABASE_URL": db, "GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_APP_SLUG": "specbridge"}
    )
    app = create_app(settings)
    payload = github_payload(event, fixture)
    for path, value in change.items():
        target = payload
        *parents, last = path.split(".")
        for key in parents:
            target = target[key]
        target[last] = value

    response = post_webhook(app.test_client(), event, payload, f"no-work-{event}-{reason}")

    assert (response.status_code, response.json["status"]) == (200, "ignored")
    [delivery] = stored_deliveries(db)
    assert (delivery.status, delivery.error) == (DeliveryStatus.IGNORED, reason)
    assert not _queued_anything(settings)
    assert deliveries.requeue_unfinished(settings) == 0
    text = render_metrics(settings).decode()
    assert f'specbridge_deliveries_without_job_total{{event="{event}",reason="{reason}"}}' in text


def test_a_delivery_a_handler_takes_gets_a_job_on_its_queue(client: FlaskClient, db: str) -> None:
    payload = github_payload("issues", "reopened.payload.json")
    response = post_webhook(client, "issues", payload, "handled")
    assert (response.status_code, response.json["status"]) == (202, "queued")
    run_queued_jobs(db)
    [delivery] = stored_deliveries(db)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DONE, 1)  # a job ran it


BULK_TEST = "specbridge_test_bulk"
INTERACTIVE_TEST = "specbridge_test_interactive"


def test_an_interactive_delivery_is_taken_before_queued_bulk_ones(
    client: FlaskClient, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three bulk deliveries are queued, then one interactive: a worker takes the
    interactive one first (RQ takes queues in the order given; without Redis the
    interactive queue has a thread of its own, so it runs while bulk work does)."""
    monkeypatch.setattr(deliveries, "BULK_EVENTS", deliveries.BULK_EVENTS | {BULK_TEST})
    settings = get_settings()
    order: list[str] = []
    bulk_may_end = threading.Event()

    def bulk(event: Event) -> None:
        order.append(f"bulk {event.delivery_id}")
        if settings.redis_url is None:  # the embedded bulk thread is busy meanwhile
            bulk_may_end.wait(30)

    def interactive(event: Event) -> None:
        order.append("interactive")
        bulk_may_end.set()

    monkeypatch.setitem(router._handlers, (BULK_TEST, None), [bulk])
    monkeypatch.setitem(router._handlers, (INTERACTIVE_TEST, None), [interactive])

    for name in ("b1", "b2", "b3"):
        stored = store_delivery(settings, name, BULK_TEST, {})
        assert stored.queue_name == EVENTS
        queue_delivery(settings, stored.pk, queue_name=stored.queue_name)
    stored = store_delivery(settings, "i1", INTERACTIVE_TEST, {})
    assert stored.queue_name == INTERACTIVE
    queue_delivery(settings, stored.pk, queue_name=stored.queue_name)

    if settings.redis_url:
        from rq import SimpleWorker
        from rq.serializers import JSONSerializer

        from bot.queue import OurJob, rq_queue

        SimpleWorker(
            [rq_queue(settings.redis_url, name) for name in QUEUES],
            connection=redis_connection(settings.redis_url),
            job_class=OurJob,
            serializer=JSONSerializer,
        ).work(burst=True)
        assert order == ["interactive", "bulk b1", "bulk b2", "bulk b3"]
    else:
        run_queued_jobs(db)
        # b1 holds the bulk thread until the interactive one has run beside it.
        assert order.index("interactive") < order.index("bulk b2")
    assert {d.status for d in stored_deliveries(db)} == {DeliveryStatus.DONE}


def test_an_installation_runs_one_bulk_job_at_a_time_and_the_next_waits_its_turn(
    client: FlaskClient, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second bulk delivery of an installation whose sync runs is queued again a few
    seconds later, without using an attempt; another installation's runs at once."""
    from datetime import UTC, datetime

    from bot.github.auth import pace_key
    from bot.locks import bulk_slot
    from storage.db import session_scope
    from storage.models import Delivery

    monkeypatch.setattr(deliveries, "BULK_EVENTS", deliveries.BULK_EVENTS | {BULK_TEST})
    monkeypatch.setattr(deliveries, "queue_delivery", lambda *args, **kwargs: True)
    ran: list[str] = []
    monkeypatch.setitem(router._handlers, (BULK_TEST, None), [lambda e: ran.append(e.delivery_id)])
    monkeypatch.delenv("GITHUB_TOKEN")  # as an App: each installation has its own budget
    get_settings.cache_clear()
    settings = get_settings()
    busy = store_delivery(settings, "busy", BULK_TEST, {"installation": {"id": 1}})
    free = store_delivery(settings, "free", BULK_TEST, {"installation": {"id": 2}})

    held, release = threading.Event(), threading.Event()

    def a_sync_of_installation_1() -> None:
        with bulk_slot(settings, pace_key(settings, 1)):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=a_sync_of_installation_1)
    holder.start()
    try:
        assert held.wait(10)
        for stored in (busy, free):
            worker = threading.Thread(target=deliveries.process_delivery, args=(stored.pk,))
            worker.start()
            worker.join(30)
    finally:
        release.set()
        holder.join()

    assert ran == ["free"]
    with session_scope(db) as session:
        waiting = session.get_one(Delivery, busy.pk)
        assert (waiting.status, waiting.attempts) == (DeliveryStatus.QUEUED, 0)
        assert "bulk job" in (waiting.error or "")
        due = waiting.next_attempt_at
        assert due is not None
        due = due if due.tzinfo else due.replace(tzinfo=UTC)
        assert (due - datetime.now(UTC)).total_seconds() <= deliveries.SLOT_BUSY_DELAY


def test_a_job_a_test_left_on_the_embedded_queue_does_not_run_in_the_next() -> None:
    """The queue outlives a test: what it had not run when the test ended would run in
    the next one, with that test's settings and on its rows (tests/support.py)."""
    queue = EmbeddedQueue("ended-test")
    gate, ran, next_ran = threading.Event(), threading.Event(), threading.Event()
    with jobs_end_with_the_test():  # the earlier test
        queue.put(gate.wait, ())  # holds the worker until that test has ended
        queue.put(ran.set, ())
    queue.put(next_ran.set, ())  # the next test's own job
    gate.set()
    queue.join()
    assert next_ran.is_set()
    assert not ran.is_set()
