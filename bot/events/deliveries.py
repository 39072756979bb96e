"""Deliveries: an outbox. Each webhook is stored before it is acknowledged, and
the stored row, not the queue, says what is left to do.

A delivery is queued under the job id `delivery-<id>`. Until it is done (or
has failed every retry) the periodic sweep queues it again whenever no job for
it is pending: after Redis restarted empty, after its worker died mid-job, or
when it was stored while the queue was unreachable. Processing claims the row
first, so a delivery queued twice is still handled once at a time.

Each delivery goes to one of two queues (`delivery_queue`): syncs (pushes,
installations) to the bulk `events` queue, everything a person waits for
(comments, card moves, pull request checks, issues) to `interactive`, which
every worker takes first. A delivery that needs no work (the App's own
change, an event no handler takes) is stored as ignored at once, with no job.

A worker's death is read from the delivery's own lease, renewed every third of
SPECBRIDGE_DELIVERY_LEASE_SECONDS while the handlers run: once it ran out the
delivery is queued again even though RQ still calls the killed worker's job
`started` (it would until the job timeout, 15 minutes).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import and_, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session

from bot.beats import beating
from bot.counters import count_delivery_without_job, observe_delivery
from bot.events import handlers
from bot.events.router import Event, router
from bot.github.auth import pace_key
from bot.locks import LockBusy, SlotBusy, bulk_slot
from bot.logs import log_context
from bot.queue import (
    EVENT_QUEUES,
    EVENTS,
    INTERACTIVE,
    enqueue,
    move_due_jobs,
    note_people,
    pending,
    redis_connection,
)
from bot.settings import Settings, get_settings
from storage.db import session_scope, statement_engine
from storage.models import Delivery, DeliveryStatus

log = logging.getLogger(__name__)

# A failed delivery runs again after these delays, then stays failed.
RETRY_DELAYS = (5, 30, 120, 600, 1800)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# Waiting for a spec another job holds does not use up an attempt.
LOCK_BUSY_DELAY = 10
# Nor waiting for the installation's bulk slot (another of its syncs runs).
SLOT_BUSY_DELAY = 3
# The web process queues a new delivery itself; the sweep leaves it that long.
SWEEP_GRACE_SECONDS = 10
SWEEP_BATCH = 1000
MAX_DELIVERY_ID = 64  # the column's length

# Where the web process announces stored deliveries to the workers' dispatchers.
INBOX = "specbridge:deliveries:stored"
FINISHED = (DeliveryStatus.DONE, DeliveryStatus.IGNORED)
CLAIMABLE = (DeliveryStatus.RECEIVED, DeliveryStatus.QUEUED)
# Deliveries that need no work: stored as ignored, with the reason, never queued.
OWN_EVENT = "caused by specbridge itself"
NO_HANDLER = "no handler takes this event"
NOT_OURS = "its handlers have nothing to do for it"
# Events whose sender is specbridge when it asked for the work, but which report what
# others did since (a workflow it dispatched ran, and failed or not): not echoes.
REPORTS_OF_OTHERS = frozenset({"workflow_run"})
# Deliveries that sync specs, and may take minutes: the bulk queue. The last two
# are specbridge's own (bot/events/handlers/installation.py, bot/events/heads.py).
BULK_EVENTS = frozenset(
    {
        "push",
        "installation",
        "installation_repositories",
        "specbridge_first_sync",
        "specbridge_head_sync",
    }
)
# The database is away (down, unreachable, out of connections): what is not
# stored now can be later, so a delivery goes to the spool (bot/events/spool.py).
DATABASE_AWAY = (OperationalError, InterfaceError, PoolTimeoutError)


@dataclass(frozen=True)
class Stored:
    """What storing a delivery decided."""

    pk: int
    queue: bool  # hand it to the queue now
    status: str  # for the answer: queued, ignored, duplicate, in progress
    queue_name: str = EVENTS  # which queue


# What a person does and waits to see answered (a command's reply, a card's move).
PEOPLES_EVENTS = frozenset({"issue_comment", "projects_v2_item"})


def delivery_queue(event: str) -> str:
    """Syncs go to the bulk queue; what people wait for, to the interactive one."""
    return EVENTS if event in BULK_EVENTS else INTERACTIVE


def no_work_needed(settings: Settings, event: str, payload: dict[str, Any]) -> str | None:
    """Why this delivery needs no job (stored as ignored), or None when it needs one."""
    if caused_by_us(settings, payload) and event not in REPORTS_OF_OTHERS:
        return OWN_EVENT
    handlers.load()
    takers = router.handlers_for(event, payload.get("action"))
    if not takers:
        return NO_HANDLER
    if not router.wanted(event, payload):
        return NOT_OURS
    return None


def store_delivery(
    settings: Settings, delivery_id: str, event: str, payload: dict[str, Any]
) -> Stored:
    """Store a delivery (one statement for a new one) and decide whether to queue it."""
    why_not = no_work_needed(settings, event, payload)
    status = DeliveryStatus.IGNORED if why_not else DeliveryStatus.QUEUED
    values = _row(delivery_id, event, payload, status, why_not)
    pk = _insert_once(settings.database_url, values)
    if pk is not None:
        if why_not:
            _ignored_at_once(settings, values, why_not)
        return Stored(pk, not why_not, status.value, delivery_queue(event))
    return _redelivered(settings, delivery_id)


def store_spooled(
    settings: Settings, delivery_id: str, event: str, payload: dict[str, Any]
) -> bool:
    """A delivery the spool kept while the database was away: stored and queued
    unless the outbox has it already (False then: nothing is done twice)."""
    why_not = no_work_needed(settings, event, payload)
    status = DeliveryStatus.IGNORED if why_not else DeliveryStatus.QUEUED
    values = _row(delivery_id, event, payload, status, why_not)
    pk = _insert_once(settings.database_url, values)
    if pk is None:
        return False
    if why_not:
        _ignored_at_once(settings, values, why_not)
    else:
        queue_delivery(settings, pk, queue_name=delivery_queue(event))
    return True


def _ignored_at_once(settings: Settings, row: dict[str, Any], reason: str) -> None:
    """Counted for /metrics and logged as a processed delivery is, with no job."""
    count_delivery_without_job(settings, row["event"], reason)
    log.info(
        "delivery %s %s%s ignored: %s",
        row["delivery_id"],
        row["event"],
        f".{row['action']}" if row["action"] else "",
        reason,
        extra={
            "delivery": row["delivery_id"],
            "event": row["event"],
            "action": row["action"],
            "repository": row["repository_full_name"],
            "outcome": "ignored",
            "duration_ms": 0.0,
        },
    )


def hand_on(settings: Settings, parent: str, key: str, event: str, payload: dict[str, Any]) -> None:
    """Store work that follows from the delivery `parent` as a delivery of its own, and queue it.

    It has the outbox's guarantees (stored first, retried with backoff, queued again
    when lost) and attempts of its own: one failing never runs its siblings again.
    Its id is its parent's and `key`, so a parent that is retried stores nothing twice.
    """
    delivery_id = f"{parent}/{key}"
    if len(delivery_id) > MAX_DELIVERY_ID:
        delivery_id = hashlib.sha256(delivery_id.encode()).hexdigest()[:MAX_DELIVERY_ID]
    values = _row(delivery_id, event, payload, DeliveryStatus.QUEUED, None)
    pk = _insert_once(settings.database_url, values)
    if pk is not None:
        queue_delivery(settings, pk, queue_name=delivery_queue(event))


def _row(
    delivery_id: str,
    event: str,
    payload: dict[str, Any],
    status: DeliveryStatus,
    error: str | None,
) -> dict[str, Any]:
    return {
        "delivery_id": delivery_id,
        "event": event,
        "action": payload.get("action"),
        "installation_github_id": (payload.get("installation") or {}).get("id"),
        "repository_full_name": (payload.get("repository") or {}).get("full_name"),
        "payload": payload,
        "status": status,
        "attempts": 0,
        "error": error,
    }


def _insert_once(database_url: str, values: dict[str, Any]) -> int | None:
    """Insert the delivery unless it is known: one statement, committed by itself."""
    engine = statement_engine(database_url)
    for attempt in (1, 2):
        try:
            with engine.connect() as connection:
                result = connection.execute(_insert_statement(engine.dialect.name), values)
                if engine.dialect.name == "postgresql":
                    return result.scalar()
                return result.inserted_primary_key[0] if result.rowcount else None
        except DBAPIError as error:
            if attempt == 2 or not error.connection_invalidated:
                raise  # a connection that died in the pool is replaced once
    return None


@cache
def _insert_statement(dialect: str):  # type: ignore[no-untyped-def]
    if dialect == "postgresql":
        return (
            postgresql.insert(Delivery)
            .on_conflict_do_nothing(index_elements=["delivery_id"])
            .returning(Delivery.id)
        )
    # No RETURNING: SQLite ends the statement, and its write lock, within the execute
    # (a statement returning rows holds it until they are read; storage/sqlite_turns.py).
    return sqlite.insert(Delivery).on_conflict_do_nothing(index_elements=["delivery_id"])


def _redelivered(settings: Settings, delivery_id: str) -> Stored:
    """GitHub (or a person) sent it again: run it if it is not done or running."""
    now = datetime.now(UTC)
    with session_scope(settings.database_url) as session:
        delivery = session.scalars(
            select(Delivery).where(Delivery.delivery_id == delivery_id)
        ).one()
        kind = delivery_queue(delivery.event)
        if delivery.status in FINISHED:
            return Stored(delivery.id, False, "duplicate", kind)
        if delivery.status is DeliveryStatus.PROCESSING and _lease_live(delivery, now):
            return Stored(delivery.id, False, "in progress", kind)
        if delivery.status is DeliveryStatus.FAILED:
            delivery.attempts = 0  # a person asked for it: every retry again
        delivery.status, delivery.next_attempt_at = DeliveryStatus.QUEUED, None
        return Stored(delivery.id, True, "queued", kind)


def caused_by_us(settings: Settings, payload: dict[str, Any]) -> bool:
    """Sent by the App's own bot account: the change was ours and is already applied."""
    sender = payload.get("sender") or {}
    slug = settings.github_app_slug
    return bool(slug) and sender.get("type") == "Bot" and sender.get("login") == f"{slug}[bot]"


def announce_delivery(settings: Settings, delivery_pk: int, queue_name: str = EVENTS) -> bool:
    """From the web process: tell the workers a delivery is stored, in one Redis command.

    Making the queue job is the dispatcher's work (`dispatch_announced`), off the
    path of the answer GitHub waits for. Without Redis the job is queued at once.
    """
    if settings.redis_url is None:
        return queue_delivery(settings, delivery_pk, queue_name=queue_name)
    try:
        redis_connection(settings.redis_url).lpush(INBOX, f"{delivery_pk}:{queue_name}")
        return True
    except RedisError:
        return _left_for_the_sweep(settings, delivery_pk)


def dispatch_announced(settings: Settings, wait: float = 1, within: float = 1) -> int:
    """Turn announced deliveries into queue jobs; returns how many (0 after `wait` idle).

    Returns after `within` seconds of dispatching too, so the caller's other work
    (`move_due_jobs`) is never held up by a stream of deliveries.
    """
    assert settings.redis_url is not None
    connection = redis_connection(settings.redis_url)
    dispatched = 0
    deadline = time.monotonic() + wait + within
    while popped := connection.brpop([INBOX], timeout=wait if not dispatched else 0.001):
        pk, _, queue_name = popped[1].decode().partition(":")
        queue_delivery(settings, int(pk), queue_name=queue_name or EVENTS)
        dispatched += 1
        if time.monotonic() > deadline:
            break
    return dispatched


def run_dispatcher(settings: Settings) -> None:
    """A worker's dispatcher, for as long as the worker lives (bot/events/worker.py starts
    it again if it dies): announced deliveries, and delayed jobs whose time has come
    (`move_due_jobs`), become queue jobs within a second."""
    parent = os.getppid()
    while os.getppid() == parent:
        try:
            dispatch_announced(settings)
            move_due_jobs(settings)
        except RedisError:
            time.sleep(1)  # Redis is away: what was announced meanwhile the sweep finds
        except Exception:  # the database away (a delivery left for the sweep): go on
            log.exception("the dispatcher's round failed; trying again")
            time.sleep(1)


def queue_delivery(
    settings: Settings,
    delivery_pk: int,
    queue_name: str = EVENTS,
    due: datetime | None = None,
) -> bool:
    """Hand a stored delivery to its queue (`delivery_queue`), to run now or at `due`;
    False (and left for the sweep) when it cannot."""
    if queue_name not in EVENT_QUEUES:
        queue_name = EVENTS
    delay = (due - datetime.now(UTC)).total_seconds() if due is not None else 0
    try:
        enqueue(
            settings,
            queue_name,
            process_delivery,
            delivery_pk,
            job_id=_job_id(delivery_pk, due),
            delay=delay,
        )
        return True
    except Exception:  # the queue is unreachable: the row is kept, the sweep queues it later
        return _left_for_the_sweep(settings, delivery_pk)


def _left_for_the_sweep(settings: Settings, delivery_pk: int) -> bool:
    log.warning("could not queue delivery %s now; it stays stored", delivery_pk, exc_info=True)
    with session_scope(settings.database_url) as session:
        session.execute(
            update(Delivery)
            .execution_options(synchronize_session=False)
            .where(Delivery.id == delivery_pk, Delivery.status == DeliveryStatus.QUEUED)
            .values(status=DeliveryStatus.RECEIVED)
        )
    return False


def requeue_unfinished(settings: Settings, after_restart: bool = False) -> int:
    """Queue again every delivery that is not done and has no pending job.

    `after_restart`: the embedded queue's process just started, so nothing of
    its own can be running and every lease is void.
    """
    now = datetime.now(UTC)
    is_due = or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now)
    waiting = and_(
        Delivery.status.in_(CLAIMABLE),
        is_due,
        or_(
            Delivery.status == DeliveryStatus.RECEIVED,
            Delivery.received_at <= now - timedelta(seconds=SWEEP_GRACE_SECONDS),
            Delivery.next_attempt_at.is_not(None),
        ),
    )
    dropped = and_(
        Delivery.status == DeliveryStatus.PROCESSING,
        true() if after_restart else Delivery.lease_until < now,
    )
    with session_scope(settings.database_url) as session:
        rows = session.execute(
            select(Delivery.id, Delivery.status, Delivery.event, Delivery.next_attempt_at)
            .where(or_(waiting, dropped))
            .order_by(Delivery.id)
            .limit(SWEEP_BATCH)
        ).all()
    if not rows:
        return 0
    # A delivery put off to a time has a job of its own for it (`_job_id`).
    jobs = {pk: _job_id(pk, at if status in CLAIMABLE else None) for pk, status, _, at in rows}
    running = pending(
        settings, EVENTS, [jobs[pk] for pk, status, _, _ in rows if status in CLAIMABLE]
    ) | pending(
        settings,
        EVENTS,
        [jobs[pk] for pk, status, _, _ in rows if status is DeliveryStatus.PROCESSING],
        started=False,  # its lease ran out: the worker running it is dead
    )
    requeued = [row for row in rows if jobs[row.id] not in running]
    for pk, status, event, at in requeued:
        again = at if status in CLAIMABLE else None  # due already: it runs at once
        if not queue_delivery(settings, pk, queue_name=delivery_queue(event), due=again):
            break  # the queue is down: the next sweep tries again
    if requeued:
        log.info("queued again %d stored deliveries", len(requeued))
    return len(requeued)


def process_delivery(delivery_pk: int) -> None:
    """The `events` queue job: route one stored delivery to its handlers."""
    settings = get_settings()
    handlers.load()
    delivery = _claim(settings, delivery_pk)
    if delivery is None:
        return  # done already, or another worker holds it
    # Every line logged while it is processed, here and in the handlers, names it.
    with log_context(
        delivery=delivery.delivery_id,
        event=delivery.event,
        repository=delivery.repository_full_name,
    ):
        started = time.monotonic()
        outcome = "done"
        if delivery.event in PEOPLES_EVENTS:
            note_people(settings)  # syncs keep their requests short for a while
        try:
            with (
                _slot(settings, delivery),
                _lease_kept(settings, delivery_pk),
                session_scope(settings.database_url) as session,
            ):
                handled = router.dispatch(
                    Event(delivery.event, delivery.payload, delivery.delivery_id, settings, session)
                )
                # Finished in the handlers' last transaction: what they recorded and
                # the delivery's being done are committed together.
                status = DeliveryStatus.DONE if handled else DeliveryStatus.IGNORED
                _mark_finished(session, delivery_pk, status)
            outcome = status.value
        except LockBusy as busy:
            outcome = "waiting"
            delay = SLOT_BUSY_DELAY if isinstance(busy, SlotBusy) else LOCK_BUSY_DELAY
            _later(settings, delivery, delivery_pk, delay, str(busy), used_attempt=False)
        except Exception as error:
            outcome = "failed"
            log.exception("delivery %s (%s) failed", delivery.delivery_id, delivery.event)
            _retry_or_fail(settings, delivery, delivery_pk, error)
        finally:
            seconds = time.monotonic() - started
            observe_delivery(settings, delivery.event, outcome, seconds)
            duration_ms = round(seconds * 1000, 1)
            log.info(
                "delivery %s %s%s %s%s in %gms",
                delivery.delivery_id,
                delivery.event,
                f".{delivery.action}" if delivery.action else "",  # push has none
                f"{delivery.repository_full_name} " if delivery.repository_full_name else "",
                outcome,
                duration_ms,
                extra={
                    "delivery": delivery.delivery_id,
                    "event": delivery.event,
                    "action": delivery.action,
                    "repository": delivery.repository_full_name,
                    "outcome": outcome,
                    "duration_ms": duration_ms,
                },
            )


@dataclass(frozen=True)
class _Claimed:
    delivery_id: str
    event: str
    action: str | None
    repository_full_name: str | None
    payload: dict[str, Any]
    attempts: int
    installation_github_id: int | None = None


def _slot(settings: Settings, delivery: _Claimed) -> AbstractContextManager[None]:
    """A bulk delivery holds one of its installation's bulk slots (bot/locks.py)."""
    if delivery_queue(delivery.event) != EVENTS:
        return nullcontext()
    return bulk_slot(settings, pace_key(settings, delivery.installation_github_id))


def _claim(settings: Settings, delivery_pk: int) -> _Claimed | None:
    """Take the delivery for this worker: one UPDATE … RETURNING, so only one worker wins."""
    now = datetime.now(UTC)
    claimable = or_(
        Delivery.status.in_(CLAIMABLE),
        and_(Delivery.status == DeliveryStatus.PROCESSING, Delivery.lease_until < now),
    )
    # Here and below, the session holds no Delivery to bring up to date with the UPDATE:
    # synchronize_session=False spares the ORM's search for one.
    with session_scope(settings.database_url) as session:
        row = session.execute(
            update(Delivery)
            .execution_options(synchronize_session=False)
            .where(Delivery.id == delivery_pk, claimable)
            .values(
                status=DeliveryStatus.PROCESSING,
                attempts=Delivery.attempts + 1,
                lease_until=now + timedelta(seconds=settings.delivery_lease_seconds),
                next_attempt_at=None,
            )
            .returning(
                Delivery.delivery_id,
                Delivery.event,
                Delivery.action,
                Delivery.repository_full_name,
                Delivery.payload,
                Delivery.attempts,
                Delivery.installation_github_id,
            )
        ).one_or_none()
        return None if row is None else _Claimed(*row)


def _lease_kept(settings: Settings, delivery_pk: int) -> AbstractContextManager[None]:
    """Renew the processing lease while the handlers run (a sync can take minutes)."""

    lease = settings.delivery_lease_seconds

    def renew() -> None:
        with session_scope(settings.database_url) as session:
            session.execute(
                update(Delivery)
                .execution_options(synchronize_session=False)
                .where(Delivery.id == delivery_pk, Delivery.status == DeliveryStatus.PROCESSING)
                .values(lease_until=datetime.now(UTC) + timedelta(seconds=lease))
            )

    return beating(lease / 3, renew, f"lease-delivery-{delivery_pk}")


def _retry_or_fail(
    settings: Settings, delivery: _Claimed, delivery_pk: int, error: Exception
) -> None:
    reason = f"{type(error).__name__}: {error}"
    if delivery.attempts >= MAX_ATTEMPTS:
        _finish(settings, delivery_pk, DeliveryStatus.FAILED, reason)
        return
    _later(settings, delivery, delivery_pk, RETRY_DELAYS[delivery.attempts - 1], reason)


def _later(
    settings: Settings,
    claimed: _Claimed,
    delivery_pk: int,
    delay: float,
    reason: str,
    used_attempt: bool = True,
) -> None:
    due = datetime.now(UTC) + timedelta(seconds=delay)
    with session_scope(settings.database_url) as session:
        session.execute(
            update(Delivery)
            .execution_options(synchronize_session=False)
            .where(Delivery.id == delivery_pk)
            .values(
                status=DeliveryStatus.QUEUED,
                error=reason,
                lease_until=None,
                next_attempt_at=due,
                # Waiting for a lock gives back the attempt its claim counted.
                attempts=Delivery.attempts - (0 if used_attempt else 1),
            )
        )
    queue_delivery(settings, delivery_pk, queue_name=delivery_queue(claimed.event), due=due)


def _finish(
    settings: Settings, delivery_pk: int, status: DeliveryStatus, error: str | None = None
) -> None:
    with session_scope(settings.database_url) as session:
        _mark_finished(session, delivery_pk, status, error)


def _mark_finished(
    session: Session, delivery_pk: int, status: DeliveryStatus, error: str | None = None
) -> None:
    session.execute(
        update(Delivery)
        .execution_options(synchronize_session=False)
        .where(Delivery.id == delivery_pk)
        .values(status=status, error=error, lease_until=None, processed_at=datetime.now(UTC))
    )


def _lease_live(delivery: Delivery, now: datetime) -> bool:
    lease = delivery.lease_until
    if lease is None:
        return False
    if lease.tzinfo is None:  # SQLite keeps no zone
        lease = lease.replace(tzinfo=UTC)
    return lease > now


def _job_id(delivery_pk: int, due: datetime | None = None) -> str:
    """The delivery's job; put off to `due`, a job of its own for that time.

    Never the id of the job that puts it off: RQ deletes a job that ends with a
    result kept for 0 s under its id, and with it a retry queued under the same id.
    """
    if due is None:
        return f"delivery-{delivery_pk}"
    if due.tzinfo is None:  # SQLite keeps no zone
        due = due.replace(tzinfo=UTC)
    return f"delivery-{delivery_pk}-{round(due.timestamp() * 1000)}"
