"""POST /webhook: only signed deliveries get in; each is stored before it is
acknowledged and processed once."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.app import create_app
from bot.queue import EVENTS, embedded_queue, redis_connection
from bot.settings import get_settings, load_settings
from storage.db import session_scope
from storage.models import Delivery, DeliveryStatus
from tests.support import WEBHOOK_SECRET, github_payload, signature, webhook_headers


@pytest.fixture
def client(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlaskClient]:
    # Jobs read the process settings, as a worker would.
    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("GITHUB_TOKEN", "test-token")
    get_settings.cache_clear()
    settings = load_settings()
    if settings.redis_url:
        redis_connection(settings.redis_url).flushdb()
    yield create_app(settings).test_client()
    get_settings.cache_clear()


def _post(client: FlaskClient, event: str, payload: dict, delivery_id: str | None = None):  # type: ignore[no-untyped-def,type-arg]
    body = json.dumps(payload).encode()
    headers = webhook_headers(event, delivery_id or str(uuid.uuid4()), body)
    return client.post("/webhook", data=body, headers=headers)


def _deliveries(db: str) -> list[Delivery]:
    with session_scope(db) as session:
        return list(session.scalars(select(Delivery)))


def _wait_for_jobs(db: str) -> None:
    """Run what the webhook queued: an RQ worker in burst mode, or the embedded queue."""
    settings = load_settings()
    if settings.redis_url:
        from rq import SimpleWorker

        connection = redis_connection(settings.redis_url)
        SimpleWorker([EVENTS], connection=connection).work(burst=True)
    else:
        embedded_queue(EVENTS).join()


def test_signed_delivery_is_stored_queued_and_processed(client: FlaskClient, db: str) -> None:
    payload = github_payload("installation", "created.payload.json")
    response = _post(client, "installation", payload, "d-1")

    assert response.status_code == 202
    assert response.json == {"delivery": "d-1", "status": "queued"}
    [stored] = _deliveries(db)
    assert (stored.delivery_id, stored.event, stored.action) == ("d-1", "installation", "created")
    assert stored.payload == payload

    _wait_for_jobs(db)
    [processed] = _deliveries(db)
    assert processed.status is DeliveryStatus.DONE
    assert processed.attempts == 1


def test_event_without_handler_is_recorded_as_ignored(client: FlaskClient, db: str) -> None:
    _post(client, "issues", github_payload("issues", "labeled.payload.json"))
    _wait_for_jobs(db)
    [delivery] = _deliveries(db)
    assert delivery.status is DeliveryStatus.IGNORED


def test_repeated_delivery_is_acknowledged_not_processed_twice(
    client: FlaskClient, db: str
) -> None:
    payload = github_payload("installation", "created.payload.json")
    assert _post(client, "installation", payload, "same").status_code == 202
    _wait_for_jobs(db)
    again = _post(client, "installation", payload, "same")
    assert again.status_code == 200
    assert again.json["status"] == "duplicate"
    _wait_for_jobs(db)
    [delivery] = _deliveries(db)
    assert delivery.attempts == 1


def test_ping_answers_200_without_storing(client: FlaskClient, db: str) -> None:
    response = _post(client, "ping", github_payload("ping"))
    assert response.status_code == 200
    assert response.json["ok"] is True
    assert _deliveries(db) == []


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "missing X-Hub-Signature-256"),
        ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, 401, "does not match"),
        ({"X-Hub-Signature-256": signature(b"{}", "another secret")}, 401, "does not match"),
    ],
)
def test_unsigned_and_forged_deliveries_are_refused(
    client: FlaskClient, db: str, headers: dict[str, str], status: int, message: str
) -> None:
    body = b"{}"
    response = client.post(
        "/webhook",
        data=body,
        headers={"X-GitHub-Event": "issues", "X-GitHub-Delivery": "x", **headers},
        content_type="application/json",
    )
    assert response.status_code == status
    assert message in response.json["error"]
    assert _deliveries(db) == []


def test_malformed_json_is_refused(client: FlaskClient, db: str) -> None:
    body = b"{not json"
    response = client.post("/webhook", data=body, headers=webhook_headers("issues", "m", body))
    assert response.status_code == 400
    assert response.json == {"error": "the payload is not JSON"}


def test_missing_event_header_is_refused(client: FlaskClient) -> None:
    body = b"{}"
    headers = webhook_headers("issues", "m", body)
    del headers["X-GitHub-Event"]
    assert client.post("/webhook", data=body, headers=headers).status_code == 400


def test_oversized_payload_is_refused(client: FlaskClient, db: str) -> None:
    body = b" " * (25 * 1024 * 1024 + 1)
    response = client.post("/webhook", data=body, headers=webhook_headers("push", "big", body))
    assert response.status_code == 413
    assert _deliveries(db) == []


def test_without_a_secret_every_delivery_is_refused(db: str) -> None:
    app = create_app(load_settings({"DATABASE_URL": db}))
    body = b"{}"
    response = app.test_client().post(
        "/webhook", data=body, headers=webhook_headers("issues", "n", body)
    )
    assert response.status_code == 503
    assert "GITHUB_WEBHOOK_SECRET" in response.json["error"]


def test_healthz_reports_database_and_queue(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": True, "queue": True}


def test_healthz_fails_when_the_database_is_unreachable() -> None:
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
            "REDIS_URL": os.environ.get("REDIS_URL", ""),
        }
    )
    response = create_app(settings).test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["database"] is False
