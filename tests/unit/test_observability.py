"""What an operator sees: log lines, /metrics, /healthz and /readyz, delivery pruning."""

from __future__ import annotations

import io
import json
import logging
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import responses
from flask.testing import FlaskClient
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import __version__, counters
from bot.events import maintenance
from bot.events.maintenance import prune_deliveries
from bot.github import github_client
from bot.github.auth import pace_key
from bot.github.pacing import Pacer
from bot.logs import JsonFormatter, configure_logging
from bot.queue import AGENTS, redis_connection, rq_queue
from bot.settings import Settings, SettingsError, load_settings
from bot.web.app import create_app
from storage.db import session_scope
from storage.models import (
    Delivery,
    DeliveryStatus,
    Repository,
    Spec,
    Task,
    TaskStatus,
    Ticket,
)
from tests.support import MOCK_API, WEBHOOK_SECRET, github_payload
from tests.unit.conftest import post_webhook, run_queued_jobs
from tests.unit.steer.test_commands import REPO as COMMAND_REPO
from tests.unit.steer.test_commands import comment, dispatch

# -- logs ---------------------------------------------------------------------------------


def test_a_delivery_is_logged_with_its_id_through_the_webhook_and_the_queue(
    client: FlaskClient, db: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    delivery_id = str(uuid.uuid4())
    payload = github_payload("issues", "reopened.payload.json")  # handled: it gets a job
    assert post_webhook(client, "issues", payload, delivery_id).status_code == 202

    run_queued_jobs(db)

    [line] = [r for r in caplog.records if getattr(r, "delivery", None) == delivery_id]
    assert delivery_id in line.getMessage()
    assert (line.event, line.action) == ("issues", "reopened")
    assert line.repository == payload["repository"]["full_name"]
    assert line.outcome in ("done", "ignored")
    assert line.duration_ms >= 0
    as_json = json.loads(JsonFormatter().format(line))
    assert as_json["delivery"] == delivery_id
    assert as_json["message"] == line.getMessage()


@responses.activate
def test_a_command_is_logged_with_who_what_and_whether_it_was_allowed(
    session: Session, handler_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    repository = Repository(full_name=COMMAND_REPO)
    spec = Spec(repository=repository, key="login", path="specs/login.yaml", title="Login")
    session.add(Ticket(repository=repository, spec=spec, issue_number=1))
    session.commit()
    api = f"{MOCK_API}/repos/{COMMAND_REPO}"
    responses.post(f"{api}/issues/comments/7/reactions", json={}, status=201)
    responses.get(f"{api}/collaborators/stranger/permission", json={"permission": "read"})
    responses.post(f"{api}/issues/1/comments", json={}, status=201)

    dispatch(session, handler_settings, "issue_comment", comment("/approve", "NONE", "stranger"))

    [line] = [r for r in caplog.records if getattr(r, "command", None) == "approve"]
    assert (line.user, line.allowed, line.repository) == ("stranger", False, COMMAND_REPO)
    assert "refused" in line.getMessage()


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Leave the root logger as pytest set it up."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:], root.level = handlers, level


def test_json_logs_are_one_json_object_a_line_with_the_record_s_fields(
    root_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging(load_settings({"SPECBRIDGE_LOG_FORMAT": "json"}))
    configure_logging(load_settings({"SPECBRIDGE_LOG_FORMAT": "json"}))  # replaces, not adds

    logging.getLogger("bot.sync").info(
        "synced %s", "login", extra={"spec": "login", "opened": 3, "writes": 4}
    )

    [line] = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"] == "synced login"
    assert (record["level"], record["logger"]) == ("INFO", "bot.sync")
    assert (record["spec"], record["opened"], record["writes"]) == ("login", 3, 4)


def test_text_logs_are_plain_lines(root_logging: None, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging(load_settings({}))

    logging.getLogger("bot.steer.commands").info("command /approve by octocat: allowed")

    assert (
        stream.getvalue()
        .rstrip()
        .endswith("INFO bot.steer.commands command /approve by octocat: allowed")
    )


def test_an_unknown_log_format_is_a_one_line_error() -> None:
    with pytest.raises(SettingsError, match="SPECBRIDGE_LOG_FORMAT must be text or json"):
        load_settings({"SPECBRIDGE_LOG_FORMAT": "xml"})
    with pytest.raises(SettingsError, match="SPECBRIDGE_DELIVERY_RETENTION_DAYS"):
        load_settings({"SPECBRIDGE_DELIVERY_RETENTION_DAYS": "a month"})


# -- /metrics -----------------------------------------------------------------------------


@pytest.fixture
def metrics_settings(db: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings = load_settings(
        {
            "DATABASE_URL": db,
            "REDIS_URL": os.environ.get("REDIS_URL", ""),
            "GITHUB_TOKEN": "metrics-token",
            "GITHUB_API_URL": MOCK_API,
            "GITHUB_WRITE_INTERVAL": "0",
        }
    )
    if settings.redis_url:
        redis_connection(settings.redis_url).flushdb()
    return settings


def _samples(settings: Settings) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = create_app(settings).test_client().get("/metrics").get_data(as_text=True)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _seed_rows(database_url: str) -> None:
    with session_scope(database_url) as session:
        repository = Repository(full_name="acme/web")
        ticket = Ticket(repository=repository, issue_number=7)
        session.add_all(
            [
                Delivery(delivery_id="d1", event="push", payload={}, status=DeliveryStatus.DONE),
                Delivery(delivery_id="d2", event="push", payload={}, status=DeliveryStatus.DONE),
                Delivery(delivery_id="d3", event="issues", payload={}, status="failed"),
                Task(ticket=ticket, agent="default", status=TaskStatus.RUNNING),
                Task(ticket=ticket, agent="default", status=TaskStatus.FAILED),
                Task(ticket=ticket, agent="default", status=TaskStatus.FAILED),
            ]
        )


def test_metrics_count_stored_deliveries_and_tasks(metrics_settings: Settings) -> None:
    _seed_rows(metrics_settings.database_url)

    samples = _samples(metrics_settings)

    stored = "specbridge_stored_deliveries"
    assert samples[stored, (("event", "push"), ("status", "done"))] == 2
    assert samples[stored, (("event", "issues"), ("status", "failed"))] == 1
    assert samples["specbridge_tasks", (("status", "failed"),)] == 2
    assert samples["specbridge_tasks", (("status", "running"),)] == 1
    assert ("specbridge_tasks", (("status", "queued"),)) not in samples


@responses.activate
def test_metrics_count_github_requests_by_kind_and_answer(metrics_settings: Settings) -> None:
    responses.get(f"{MOCK_API}/repos/acme/web", json={"full_name": "acme/web"})
    responses.get(f"{MOCK_API}/repos/acme/gone", status=404, json={"message": "Not Found"})
    responses.post(f"{MOCK_API}/repos/acme/web/issues/1/comments", status=201, json={"id": 1})
    read_ok = ("specbridge_github_requests_total", (("kind", "rest_read"), ("status", "200")))
    missing = ("specbridge_github_requests_total", (("kind", "rest_read"), ("status", "404")))
    wrote = ("specbridge_github_requests_total", (("kind", "rest_write"), ("status", "201")))
    before = _samples(metrics_settings)

    connection = github_client(metrics_settings, None)
    connection.rest("GET", "/repos/acme/web")
    connection.rest("GET", "/repos/acme/web")
    with pytest.raises(Exception, match="404"):
        connection.rest("GET", "/repos/acme/gone")
    connection.rest("POST", "/repos/acme/web/issues/1/comments", {"body": "hi"}, content=1)

    after = _samples(metrics_settings)
    assert after[read_ok] - before.get(read_ok, 0) == 2
    assert after[missing] - before.get(missing, 0) == 1
    assert after[wrote] - before.get(wrote, 0) == 1


def test_metrics_show_sync_durations(metrics_settings: Settings) -> None:
    under_5s = ("specbridge_sync_duration_seconds_bucket", (("le", "5.0"),))
    under_1s = ("specbridge_sync_duration_seconds_bucket", (("le", "1.0"),))
    count = ("specbridge_sync_duration_seconds_count", ())
    total = ("specbridge_sync_duration_seconds_sum", ())
    before = _samples(metrics_settings)

    counters.observe_sync(metrics_settings, 2.5)
    counters.observe_sync(metrics_settings, 4.0)  # a whole number added to a fraction
    counters.observe_sync(metrics_settings, 0.5)  # counting did not pause after it

    after = _samples(metrics_settings)
    assert after[under_5s] - before[under_5s] == 3
    assert after[under_1s] - before[under_1s] == 1
    assert after[count] - before[count] == 3
    assert after[total] - before[total] == pytest.approx(7.0)


def test_metrics_show_the_github_budget_left(metrics_settings: Settings) -> None:
    key = pace_key(metrics_settings, None)
    Pacer(metrics_settings, key).before_write(content=3)

    samples = _samples(metrics_settings)

    minute = (
        "specbridge_github_content_budget_remaining",
        (("budget", key), ("window_seconds", "60")),
    )
    hour = (
        "specbridge_github_content_budget_remaining",
        (("budget", key), ("window_seconds", "3600")),
    )
    assert (samples[minute], samples[hour]) == (77, 497)


def test_metrics_show_queue_depths(metrics_settings: Settings) -> None:
    if metrics_settings.redis_url:
        agents = rq_queue(metrics_settings.redis_url, AGENTS)
        agents.enqueue("bot.agents.run.run_task", 1)
        agents.enqueue("bot.agents.run.run_task", 2)
        expected = 2
    else:
        expected = 0  # the embedded queue runs what it is given at once

    assert _samples(metrics_settings)["specbridge_queue_depth", (("queue", AGENTS),)] == expected


def test_metrics_count_deliveries_by_outcome_with_their_durations_pruning_aside(
    client: FlaskClient, db: str
) -> None:
    """specbridge_deliveries_total counts what was processed; pruning the rows leaves it."""
    settings = load_settings()
    if settings.redis_url is None:
        counters._memory._hashes.clear()  # one process's counts: this test's alone
    payload = github_payload("issues", "reopened.payload.json")  # handled: it gets a job
    for _ in range(2):
        assert post_webhook(client, "issues", payload).status_code == 202
    run_queued_jobs(db)
    refused = client.post(
        "/webhook",
        data=b"{}",
        headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "x", "X-Hub-Signature-256": "no"},
    )
    assert refused.status_code == 401
    with session_scope(db) as session:  # pruned: the stored rows go, the counts stay
        session.execute(Delivery.__table__.delete())

    text = client.get("/metrics").get_data(as_text=True)
    families = {(f.name, f.type): f for f in text_string_to_metric_families(text)}
    total = {
        tuple(sorted(s.labels.items())): s.value
        for s in families["specbridge_deliveries", "counter"].samples
    }
    processed = sum(v for labels, v in total.items() if ("event", "issues") in labels)
    assert processed == 2, total
    assert total[("event", "unverified"), ("outcome", "refused")] == 1
    assert ("specbridge_stored_deliveries", "gauge") in families  # the stored rows, by status
    histogram = {
        (s.name, s.labels.get("le")): s.value
        for s in families["specbridge_delivery_duration_seconds", "histogram"].samples
    }
    assert histogram["specbridge_delivery_duration_seconds_count", None] == 2
    assert histogram["specbridge_delivery_duration_seconds_bucket", "+Inf"] == 2
    assert histogram["specbridge_delivery_duration_seconds_sum", None] > 0


def test_metrics_show_the_version_the_process_and_the_oldest_queued_job(
    metrics_settings: Settings,
) -> None:
    settings = metrics_settings
    with session_scope(settings.database_url) as session:
        ticket = Ticket(repository=Repository(full_name="acme/web"), issue_number=7)
        session.add(
            Task(
                ticket=ticket,
                agent="default",
                status=TaskStatus.QUEUED,
                queued_at=datetime.now(UTC) - timedelta(minutes=5),
            )
        )
    if settings.redis_url:
        # RQ's own record of when a job was queued: made five minutes ago.
        job = rq_queue(settings.redis_url, AGENTS).enqueue("bot.agents.run.run_task", 1)
        job.enqueued_at = datetime.now(UTC) - timedelta(minutes=5)
        job.save()

    text = create_app(settings).test_client().get("/metrics").get_data(as_text=True)
    families = {f.name: f for f in text_string_to_metric_families(text)}

    ages = {
        s.labels["queue"]: s.value
        for s in families["specbridge_queue_oldest_job_age_seconds"].samples
    }
    assert 290 < ages[AGENTS] < 400
    assert ages["events"] == 0
    [info] = families["specbridge_build_info"].samples
    assert info.value == 1 and info.labels["version"] == __version__
    assert families["process_resident_memory_bytes"].samples[0].value > 0
    assert "process_cpu_seconds" in families


def test_metrics_answer_openmetrics_when_the_scraper_asks_for_it(
    client: FlaskClient, db: str
) -> None:
    """Prometheus asks for OpenMetrics first; its parser refuses a name used by two families."""
    _seed_rows(db)
    assert post_webhook(client, "issues", github_payload("issues", "reopened.payload.json"))
    run_queued_jobs(db)
    accept = (
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.1"
    )

    asked = client.get("/metrics", headers={"Accept": accept})

    assert asked.content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert "Accept" in asked.headers["Vary"]
    text = asked.get_data(as_text=True)
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in openmetrics_families(text)}  # raises on any clash
    assert families["specbridge_deliveries"].type == "counter"
    assert families["specbridge_stored_deliveries"].type == "gauge"
    assert families["specbridge_tasks"].type == "gauge"
    # Without the header: Prometheus' text format, as before.
    plain = client.get("/metrics")
    assert plain.content_type.startswith("text/plain; version=0.0.4")
    assert not plain.get_data(as_text=True).endswith("# EOF\n")


# -- /healthz and /readyz -----------------------------------------------------------------


def _ready_settings(db: str, **overrides: str) -> Settings:
    environ = {
        "DATABASE_URL": db,
        "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "GITHUB_TOKEN": "t",
    }
    return load_settings({**environ, **overrides})


def test_readyz_names_the_missing_webhook_secret_while_healthz_stays_ok(db: str) -> None:
    client = create_app(_ready_settings(db, GITHUB_WEBHOOK_SECRET="")).test_client()

    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert list(ready.json["failed"]) == ["webhook_secret"]
    assert "GITHUB_WEBHOOK_SECRET" in ready.json["failed"]["webhook_secret"]
    assert client.get("/healthz").status_code == 200


def test_readyz_names_missing_github_credentials(db: str) -> None:
    ready = create_app(_ready_settings(db, GITHUB_TOKEN="")).test_client().get("/readyz")
    assert ready.status_code == 503
    assert list(ready.json["failed"]) == ["github_credentials"]


def test_readyz_warns_of_an_agent_profiles_file_broken_under_a_running_process(
    db: str, tmp_path: Path
) -> None:
    profiles = tmp_path / "agents.yaml"
    profiles.write_text("default:\n  command: make\n")
    client = create_app(_ready_settings(db, SPECBRIDGE_AGENTS=str(profiles))).test_client()
    assert client.get("/readyz").status_code == 200
    profiles.write_text("default:\n  preset: cursor\n")  # edited while it runs
    ready = client.get("/readyz")
    assert ready.status_code == 200  # still taking deliveries: a warning, not unreadiness
    assert "unknown preset 'cursor'" in ready.json["warnings"]["agents"]


def test_readyz_is_ok_when_everything_is_in_place(db: str) -> None:
    ready = create_app(_ready_settings(db)).test_client().get("/readyz")
    assert (ready.status_code, ready.json["status"]) == (200, "ok")


def test_an_unreachable_database_fails_readyz_not_healthz() -> None:
    client = create_app(_ready_settings("postgresql://nobody@127.0.0.1:1/none")).test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "database" in ready.json["failed"]
    assert client.get("/healthz").status_code == 200


# -- pruning ------------------------------------------------------------------------------


def test_pruning_keeps_unfinished_and_recent_deliveries(db: str) -> None:
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=31), now - timedelta(days=2)
    rows = {
        "old-done": (DeliveryStatus.DONE, old, old),
        "old-ignored-never-processed": (DeliveryStatus.IGNORED, old, None),
        "old-failed": (DeliveryStatus.FAILED, old, old),
        "old-received": (DeliveryStatus.RECEIVED, old, None),
        "old-queued": (DeliveryStatus.QUEUED, old, None),
        "old-processing": (DeliveryStatus.PROCESSING, old, None),
        "recent-done": (DeliveryStatus.DONE, recent, recent),
        "received-long-ago-done-lately": (DeliveryStatus.DONE, old, recent),
    }
    with session_scope(db) as session:
        session.add_all(
            Delivery(
                delivery_id=name,
                event="push",
                payload={},
                status=status,
                received_at=received,
                processed_at=processed,
            )
            for name, (status, received, processed) in rows.items()
        )

    assert prune_deliveries(load_settings({"DATABASE_URL": db})) == 3

    with session_scope(db) as session:
        kept = set(session.scalars(select(Delivery.delivery_id)))
    assert kept == {
        "old-received",
        "old-queued",
        "old-processing",
        "recent-done",
        "received-long-ago-done-lately",
    }


def test_a_retention_of_zero_keeps_every_delivery(db: str) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=3650)
    with session_scope(db) as session:
        session.add(
            Delivery(
                delivery_id="ancient",
                event="push",
                payload={},
                status=DeliveryStatus.DONE,
                received_at=long_ago,
                processed_at=long_ago,
            )
        )

    settings = load_settings({"DATABASE_URL": db, "SPECBRIDGE_DELIVERY_RETENTION_DAYS": "0"})
    assert prune_deliveries(settings) == 0


def test_the_chores_prune_once_an_hour(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(maintenance, "_last_prune", None)
    pruned: list[Settings] = []
    monkeypatch.setattr(maintenance, "prune_deliveries", pruned.append)
    settings = load_settings({"DATABASE_URL": db})

    maintenance.run_chores(settings)
    maintenance.run_chores(settings)

    assert pruned == [settings]
