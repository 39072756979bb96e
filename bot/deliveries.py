"""Deliveries: stored before they are acknowledged, processed by a queue job."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import handlers
from bot.queue import EVENTS, enqueue
from bot.router import Event, router
from bot.settings import Settings, get_settings
from storage.db import session_scope
from storage.models import Delivery, DeliveryStatus

log = logging.getLogger(__name__)

# A delivery in these states is processed again when GitHub (or a person)
# redelivers it; one already done or under way is only acknowledged.
REPROCESSABLE = (DeliveryStatus.RECEIVED, DeliveryStatus.FAILED)


def record_delivery(
    session: Session, delivery_id: str, event: str, payload: dict[str, Any]
) -> tuple[Delivery, bool]:
    """Store the delivery; returns it and whether it should be processed now."""
    existing = session.scalars(select(Delivery).where(Delivery.delivery_id == delivery_id)).first()
    if existing is not None:
        return existing, existing.status in REPROCESSABLE
    delivery = Delivery(
        delivery_id=delivery_id,
        event=event,
        action=payload.get("action"),
        installation_github_id=(payload.get("installation") or {}).get("id"),
        repository_full_name=(payload.get("repository") or {}).get("full_name"),
        payload=payload,
    )
    try:
        with session.begin_nested():
            session.add(delivery)
    except IntegrityError:  # the same delivery, stored a moment ago by another request
        return session.scalars(
            select(Delivery).where(Delivery.delivery_id == delivery_id)
        ).one(), False
    return delivery, True


def queue_delivery(settings: Settings, delivery_pk: int) -> None:
    enqueue(settings, EVENTS, process_delivery, delivery_pk)


def requeue_unprocessed(settings: Settings) -> int:
    """At the start of the embedded queue: queue again what the last process left undone.

    Only that process ran jobs, so a delivery still marked processing was cut short.
    """
    unfinished = [DeliveryStatus.RECEIVED, DeliveryStatus.QUEUED, DeliveryStatus.PROCESSING]
    with session_scope(settings.database_url) as session:
        stuck = session.scalars(select(Delivery.id).where(Delivery.status.in_(unfinished))).all()
    for delivery_pk in stuck:
        queue_delivery(settings, delivery_pk)
    return len(stuck)


def process_delivery(delivery_pk: int) -> None:
    """The `events` queue job: route one stored delivery to its handlers."""
    settings = get_settings()
    handlers.load()
    with session_scope(settings.database_url) as session:
        delivery = session.get_one(Delivery, delivery_pk)
        delivery.status = DeliveryStatus.PROCESSING
        delivery.attempts += 1
        event_name, payload, delivery_id = delivery.event, delivery.payload, delivery.delivery_id
    try:
        with session_scope(settings.database_url) as session:
            event = Event(event_name, payload, delivery_id, settings, session)
            handled = router.dispatch(event)
    except Exception as error:
        log.exception("delivery %s (%s) failed", delivery_id, event_name)
        _finish(settings, delivery_pk, DeliveryStatus.FAILED, f"{type(error).__name__}: {error}")
        raise
    _finish(settings, delivery_pk, DeliveryStatus.DONE if handled else DeliveryStatus.IGNORED)


def _finish(
    settings: Settings, delivery_pk: int, status: DeliveryStatus, error: str | None = None
) -> None:
    with session_scope(settings.database_url) as session:
        delivery = session.get_one(Delivery, delivery_pk)
        delivery.status = status
        delivery.error = error
        delivery.processed_at = datetime.now(UTC)
