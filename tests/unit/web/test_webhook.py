"""POST /webhook: only signed deliveries get in; each is stored before it is
acknowledged and processed once."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from bot.settings import load_settings
from bot.web.app import create_app
from storage.models import DeliveryStatus
from tests.support import github_payload, signature, webhook_headers
from tests.unit.conftest import post_webhook, run_queued_jobs, stored_deliveries


def test_signed_delivery_is_stored_queued_and_processed(client: FlaskClient, db: str) -> None:
    payload = github_payload("installation", "created.payload.json")
    payload["repositories"] = []  # no repository to sync: this test reaches no GitHub
    response = post_webhook(client, "installation", payload, "d-1")

    assert response.status_code == 202
    assert response.json == {"delivery": "d-1", "status": "queued"}
    [stored] = stored_deliveries(db)
    assert (stored.delivery_id, stored.event, stored.action) == ("d-1", "installation", "created")
    assert stored.payload == payload

    run_queued_jobs(db)
    [processed] = stored_deliveries(db)
    assert processed.status is DeliveryStatus.DONE
    assert processed.attempts == 1


def test_event_without_handler_is_recorded_as_ignored(client: FlaskClient, db: str) -> None:
    post_webhook(client, "issues", github_payload("issues", "unlabeled.payload.json"))
    run_queued_jobs(db)
    [delivery] = stored_deliveries(db)
    assert delivery.status is DeliveryStatus.IGNORED


def test_repeated_delivery_is_acknowledged_not_processed_twice(
    client: FlaskClient, db: str
) -> None:
    payload = github_payload("installation", "created.payload.json")
    payload["repositories"] = []  # no repository to sync: this test reaches no GitHub
    assert post_webhook(client, "installation", payload, "same").status_code == 202
    run_queued_jobs(db)
    again = post_webhook(client, "installation", payload, "same")
    assert again.status_code == 200
    assert again.json["status"] == "duplicate"
    run_queued_jobs(db)
    [delivery] = stored_deliveries(db)
    assert delivery.attempts == 1


def test_ping_answers_200_without_storing(client: FlaskClient, db: str) -> None:
    response = post_webhook(client, "ping", github_payload("ping"))
    assert response.status_code == 200
    assert response.json["ok"] is True
    assert stored_deliveries(db) == []


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
    assert stored_deliveries(db) == []


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
    assert stored_deliveries(db) == []


def test_without_a_secret_every_delivery_is_refused(db: str) -> None:
    app = create_app(load_settings({"DATABASE_URL": db}))
    body = b"{}"
    response = app.test_client().post(
        "/webhook", data=body, headers=webhook_headers("issues", "n", body)
    )
    assert response.status_code == 503
    assert "GITHUB_WEBHOOK_SECRET" in response.json["error"]


def test_healthz_answers_while_the_process_lives(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_signed_but_absurdly_deep_json_is_refused_with_400(client: FlaskClient, db: str) -> None:
    body = b'{"a":' * 200_000 + b"1" + b"}" * 200_000
    response = client.post("/webhook", data=body, headers=webhook_headers("push", "deep", body))
    assert response.status_code == 400
    assert response.json == {"error": "the payload is nested too deeply"}
    assert stored_deliveries(db) == []
