"""POST /webhook: verify, store, enqueue, answer — in milliseconds.

What needs no work (the App's own change, an event no handler takes) is stored
as ignored and answered 200 with no job (bot/events/deliveries.py decides).

When the database cannot store a verified delivery, it is spooled (bot/events/spool.py)
and still answered 202: GitHub does not send a delivery again by itself.
"""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Response, current_app, jsonify, request

from bot.counters import observe_delivery
from bot.events.deliveries import DATABASE_AWAY, announce_delivery, store_delivery
from bot.events.spool import spool_delivery
from bot.logs import log_context
from bot.settings import Settings
from bot.signatures import signature_matches

log = logging.getLogger(__name__)
blueprint = Blueprint("webhook", __name__)

# GitHub caps webhook payloads at 25 MB.
MAX_PAYLOAD_BYTES = 25 * 1024 * 1024


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status


@blueprint.post("/webhook")
def receive_webhook() -> tuple[Response, int]:
    # What GitHub says it sends, before anything is verified: so a refusal names it too.
    with log_context(
        delivery=request.headers.get("X-GitHub-Delivery"),
        event=request.headers.get("X-GitHub-Event"),
    ):
        return _receive()


def _receive() -> tuple[Response, int]:
    settings: Settings = current_app.config["SPECBRIDGE_SETTINGS"]
    if not settings.github_webhook_secret:
        return _error(503, "GITHUB_WEBHOOK_SECRET is not set: deliveries cannot be verified")
    if (request.content_length or 0) > MAX_PAYLOAD_BYTES:
        return _error(413, f"payload larger than {MAX_PAYLOAD_BYTES} bytes")
    body = request.get_data(cache=False)
    if len(body) > MAX_PAYLOAD_BYTES:
        return _error(413, f"payload larger than {MAX_PAYLOAD_BYTES} bytes")

    signature = request.headers.get("X-Hub-Signature-256")
    if not signature:
        return _refused("missing X-Hub-Signature-256")
    if not signature_matches(settings.github_webhook_secret, body, signature):
        return _refused("X-Hub-Signature-256 does not match the payload")

    event = request.headers.get("X-GitHub-Event")
    delivery_id = request.headers.get("X-GitHub-Delivery")
    if not event or not delivery_id:
        return _error(400, "missing X-GitHub-Event or X-GitHub-Delivery")
    if request.mimetype != "application/json":
        return _error(415, "the webhook's content type must be application/json")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _error(400, "the payload is not JSON")
    except RecursionError:  # nesting deeper than any of GitHub's payloads
        return _error(400, "the payload is nested too deeply")
    if not isinstance(payload, dict):
        return _error(400, "the payload is not a JSON object")

    if event == "ping":
        return jsonify(ok=True, zen=payload.get("zen")), 200

    try:
        stored = store_delivery(settings, delivery_id, event, payload)
    except DATABASE_AWAY:
        log.warning("the database cannot store delivery %s", delivery_id, exc_info=True)
        if spool_delivery(settings, delivery_id, event, body, signature):
            return jsonify(delivery=delivery_id, status="spooled"), 202
        return _error(503, "the database is unreachable and the delivery could not be spooled")
    try:
        announced = not stored.queue or announce_delivery(settings, stored.pk, stored.queue_name)
    except DATABASE_AWAY:
        announced = False  # the database went away after storing it
    if not announced:
        # Stored, so not lost: the outbox sweep queues it once the queue is back.
        return jsonify(delivery=delivery_id, status="stored"), 202
    return jsonify(delivery=delivery_id, status=stored.status), 202 if stored.queue else 200


def _refused(reason: str) -> tuple[Response, int]:
    """A delivery not signed with our secret: said once in the log, with where it came from
    (a secret that differs from the App's, a proxy that rewrites bodies, or a stranger)."""
    # Its headers are not to be believed (nor their values made labels): one bucket for all.
    observe_delivery(current_app.config["SPECBRIDGE_SETTINGS"], "unverified", "refused")
    log.warning(
        "refused a delivery from %s: %s (is GITHUB_WEBHOOK_SECRET the App's webhook secret?)",
        request.remote_addr,
        reason,
        extra={"outcome": "refused", "remote_addr": request.remote_addr},
    )
    return _error(401, reason)
