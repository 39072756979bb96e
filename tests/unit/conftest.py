from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

from bot.events import handlers
from bot.events.deliveries import dispatch_announced
from bot.queue import (
    EVENT_QUEUES,
    EmbeddedQueue,
    OurJob,
    embedded_queue,
    redis_connection,
    rq_queue,
)
from bot.settings import Settings, get_settings, load_settings
from bot.web.app import create_app
from fakehub import FakeHub
from storage.db import session_scope
from storage.models import Delivery
from tests.support import MOCK_API, WEBHOOK_SECRET, webhook_headers


@dataclass
class HeldJob:
    name: str
    args: tuple[Any, ...]
    job_id: str | None


@pytest.fixture
def held_jobs(monkeypatch: pytest.MonkeyPatch) -> list[HeldJob]:
    """Jobs queued by the code under test, kept instead of run (they would talk to GitHub)."""
    held: list[HeldJob] = []

    def put(self, job, args, job_id=None, delay=0, retry_intervals=None) -> None:  # type: ignore[no-untyped-def]
        held.append(HeldJob(job.__name__, args, job_id))

    def pending(self, job_ids) -> set[str]:  # type: ignore[no-untyped-def]
        return {job.job_id for job in held if job.job_id in set(job_ids)}

    monkeypatch.setattr(EmbeddedQueue, "put", put)
    monkeypatch.setattr(EmbeddedQueue, "pending", pending)
    monkeypatch.setattr(EmbeddedQueue, "not_started", pending)  # held: none has started
    return held


@pytest.fixture
def handler_settings(db: str, held_jobs: list[HeldJob]) -> Settings:
    """Settings for handlers talking to `responses` mocks of GitHub; queued jobs are held."""
    handlers.load()
    return load_settings(
        {
            "DATABASE_URL": db,
            "GITHUB_TOKEN": "t",
            "GITHUB_API_URL": MOCK_API,
            "GITHUB_WRITE_INTERVAL": "0",
        }
    )


@pytest.fixture
def client(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlaskClient]:
    """The web app; jobs read the process settings, as a worker would."""
    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("GITHUB_TOKEN", "test-token")
    get_settings.cache_clear()
    settings = load_settings()
    if settings.redis_url:
        redis_connection(settings.redis_url).flushdb()
    yield create_app(settings).test_client()
    get_settings.cache_clear()


def post_webhook(
    client: FlaskClient,
    event: str,
    payload: dict,  # type: ignore[type-arg]
    delivery_id: str | None = None,
) -> TestResponse:
    body = json.dumps(payload).encode()
    headers = webhook_headers(event, delivery_id or str(uuid.uuid4()), body)
    return client.post("/webhook", data=body, headers=headers)


def stored_deliveries(db: str) -> list[Delivery]:
    with session_scope(db) as session:
        return list(session.scalars(select(Delivery)))


def run_queued_jobs(db: str) -> None:
    """Run what the webhook queued: an RQ worker in burst mode, or the embedded queue."""
    settings = load_settings()
    if settings.redis_url:
        from rq import SimpleWorker
        from rq.serializers import JSONSerializer

        dispatch_announced(settings, wait=0.01)
        SimpleWorker(
            [rq_queue(settings.redis_url, name) for name in EVENT_QUEUES],
            connection=redis_connection(settings.redis_url),
            job_class=OurJob,
            serializer=JSONSerializer,
        ).work(burst=True)
    else:
        for _ in range(2):  # a job on one queue may queue one on the other
            for name in EVENT_QUEUES:
                embedded_queue(name).join()


@pytest.fixture
def bot_and_hub(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """The web app served on a port, and the GitHub double sending it its webhooks
    (run_queued_jobs then runs what they queued)."""
    hub = FakeHub(None, WEBHOOK_SECRET, tmp_path / "hub")
    hub.start()
    for name, value in {
        "DATABASE_URL": db,
        "GITHUB_API_URL": hub.url,
        "GITHUB_TOKEN": "logs-token",
        "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "GITHUB_WRITE_INTERVAL": "0",
        "GITHUB_CONTENT_LIMITS": "none",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SPECBRIDGE_AGENTS", raising=False)  # no agents, unless a test says
    get_settings.cache_clear()
    settings = get_settings()
    if settings.redis_url:
        redis_connection(settings.redis_url).flushdb()
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hub.webhooks.url = f"http://127.0.0.1:{server.server_port}/webhook"
    yield hub
    server.shutdown()
    hub.stop()
    get_settings.cache_clear()
