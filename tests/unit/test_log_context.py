"""Log lines keep the thread: every line logged while a delivery is processed names it
(and its repository), in JSON; a refused signature is a line of its own; an invalid spec
file is logged; RQ's per-job chatter is left out."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import responses
from rq.serializers import JSONSerializer

from bot import queue as queue_module
from bot.agents.reaper import reap_stale_tasks
from bot.events.worker import WarmWorker
from bot.logs import TextFormatter, configure_logging, log_context, quiet_rq
from bot.queue import EVENTS, EmbeddedQueue, OurJob, job_name, redis_connection, rq_queue
from bot.settings import get_settings, load_settings
from bot.sync.write_back import write_back
from bot.web.app import create_app
from fakehub import FakeHub
from storage.db import session_scope
from storage.models import Repository, Spec, SpecPhase, Task, TaskStatus, Ticket
from tests.support import MOCK_API, SPECBRIDGE_COLUMNS, WEBHOOK_SECRET, signature
from tests.unit.conftest import run_queued_jobs

REPO = "acme/logs"
SPEC = "title: Login\nphase: tasks\ntasks:\n  - {id: T-1, title: Build it}\n"
INVALID = "title: Broken\nphase: tasks\ntasks: 7\n"


class JsonLines:
    """What configure_logging writes to stderr in JSON, as parsed lines."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def read(self) -> list[dict[str, Any]]:
        err = self.capsys.readouterr().err
        return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


@pytest.fixture
def json_lines(capsys: pytest.CaptureFixture[str]) -> Iterator[JsonLines]:
    """JSON logging to stderr (the handler follows sys.stderr); the root logger restored after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging(load_settings({"SPECBRIDGE_LOG_FORMAT": "json"}))
    yield JsonLines(capsys)
    root.handlers[:], root.level = handlers, level


def test_every_line_of_a_deliverys_processing_carries_its_id_in_json(
    bot_and_hub: FakeHub, db: str, json_lines: JsonLines
) -> None:
    hub = bot_and_hub
    requests.post(
        f"{hub.url}/_admin/repos",
        json={
            "owner": "acme",
            "name": "logs",
            "project": {"number": 1},
            "status_options": SPECBRIDGE_COLUMNS,
            "files": {"README.md": "logs\n"},
        },
        timeout=30,
    ).raise_for_status()
    requests.post(f"{hub.url}/_admin/wait", timeout=60)
    run_queued_jobs(db)
    json_lines.read()  # the repository's creation: not this test's

    requests.post(
        f"{hub.url}/_admin/repos/{REPO}/commits",
        json={"files": {"specs/login.yaml": SPEC, "specs/broken.yaml": INVALID}},
        timeout=30,
    ).raise_for_status()
    requests.post(f"{hub.url}/_admin/wait", timeout=60)
    run_queued_jobs(db)

    lines = json_lines.read()
    # One summary line a delivery: the push, then the double's webhooks of what the sync did.
    summaries = {
        line["delivery"]: line for line in lines if line["message"].startswith("delivery ")
    }
    [summary] = [line for line in summaries.values() if line["event"] == "push"]
    delivery = summary["delivery"]
    assert summary["repository"] == REPO
    # Every line but an RQ worker's own start and stop belongs to a delivery and names it.
    processing = [line for line in lines if not line["logger"].startswith("rq.")]
    assert len(processing) > len(summaries)
    for line in processing:
        assert line.get("delivery") in summaries, line
        assert line.get("repository") == REPO, line
    processing = [line for line in processing if line["delivery"] == delivery]
    [synced] = [line for line in processing if line["message"].startswith("synced login")]
    assert synced["writes"] > 0 and synced["commit"]
    [invalid] = [line for line in processing if line.get("outcome") == "invalid"]
    assert invalid["level"] == "WARNING" and invalid["path"] == "specs/broken.yaml"
    assert "does not validate" in invalid["message"]
    # Text lines say where and how long too.
    assert f" {REPO} done in " in summary["message"]


def test_a_refused_signature_is_logged_with_the_delivery_it_claimed(
    db: str, json_lines: JsonLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings({"DATABASE_URL": db, "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET})
    body = b'{"zen": "hi"}'
    delivery = str(uuid.uuid4())
    answer = (
        create_app(settings)
        .test_client()
        .post(
            "/webhook",
            data=body,
            headers={
                "X-GitHub-Event": "issues",
                "X-GitHub-Delivery": delivery,
                "X-Hub-Signature-256": signature(body, "another secret"),
                "Content-Type": "application/json",
            },
        )
    )
    assert answer.status_code == 401
    [line] = json_lines.read()
    assert line["level"] == "WARNING" and line["outcome"] == "refused"
    assert (line["delivery"], line["event"]) == (delivery, "issues")
    assert "GITHUB_WEBHOOK_SECRET" in line["message"]


def test_context_nests_and_an_explicit_field_wins(json_lines: JsonLines) -> None:
    log = logging.getLogger("bot.test")
    with log_context(delivery="d-1", repository="acme/web"):
        with log_context(task=7, repository=None):
            log.info("inner")
        log.info("outer", extra={"repository": "acme/other"})
    log.info("after")
    inner, outer, after = json_lines.read()
    assert (inner["delivery"], inner["task"], inner["repository"]) == ("d-1", 7, "acme/web")
    assert "task" not in outer and outer["repository"] == "acme/other"
    assert "delivery" not in after


def test_text_lines_show_the_ids_the_message_lacks() -> None:
    with log_context(delivery="d-9", task=3, event="push"):
        record = logging.getLogger("bot.test").makeRecord(
            "bot.test", logging.INFO, __file__, 1, "task 3 started", (), None
        )
    line = TextFormatter().format(record)
    assert line.endswith("INFO bot.test task 3 started [delivery=d-9]")


def test_rq_s_per_job_lines_are_left_out_but_its_start_and_warnings_stay() -> None:
    def record(name: str, level: int, message: str) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, message, (), None)

    assert not quiet_rq(record("rq.worker", logging.INFO, "Worker %s: %s: %s (%s)"))
    assert not quiet_rq(record("rq.worker", logging.INFO, "Worker %s: job %s result is kept"))
    assert quiet_rq(record("rq.worker", logging.INFO, "Worker %s: started with PID %d, version"))
    assert quiet_rq(record("rq.worker", logging.WARNING, "Worker %s: moving job"))
    assert quiet_rq(record("bot.sync", logging.INFO, "synced %s"))


# -- failures, reported after their work's context is gone -------------------------------


def fail_in_context() -> None:
    """A job as ours are: its work in a log context, failing there."""
    with log_context(task=7, repository="acme/web", issue=3):
        raise RuntimeError("GitHub said no")


def test_a_failed_jobs_line_names_what_it_was_working_on(
    json_lines: JsonLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The queue's "job … failed" line is logged after the job's context is gone: it takes
    the ids from the error, in the embedded queue and in RQ's workers alike."""
    queue = EmbeddedQueue("failures")
    queue.put(fail_in_context, (), None)
    queue.join()
    failed = [line for line in json_lines.read() if "failed" in line["message"]]
    assert [line["message"] for line in failed] == ["job fail_in_context() failed"]
    assert (failed[0]["task"], failed[0]["repository"], failed[0]["issue"]) == (7, "acme/web", 3)
    assert "RuntimeError: GitHub said no" in failed[0]["exception"]

    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        return  # RQ's workers need Redis
    monkeypatch.setattr(queue_module, "JOBS", queue_module.JOBS | {job_name(fail_in_context)})
    redis_connection(redis_url).flushdb()
    rq_queue(redis_url, EVENTS).enqueue(fail_in_context)
    WarmWorker(
        [rq_queue(redis_url, EVENTS)],
        connection=redis_connection(redis_url),
        job_class=OurJob,
        serializer=JSONSerializer,
    ).work(burst=True)
    [rq_line] = [line for line in json_lines.read() if "exception raised" in line["message"]]
    assert (rq_line["task"], rq_line["repository"], rq_line["issue"]) == (7, "acme/web", 3)


@responses.activate
def test_the_reapers_line_for_a_task_it_could_not_report_names_it(
    db: str, json_lines: JsonLines
) -> None:
    settings = load_settings({"DATABASE_URL": db, "GITHUB_TOKEN": "t", "GITHUB_API_URL": MOCK_API})
    with session_scope(db) as session:
        ticket = Ticket(repository=Repository(full_name="acme/web"), issue_number=3)
        stale = datetime.now(UTC) - timedelta(hours=1)
        task = Task(
            ticket=ticket,
            agent="default",
            status=TaskStatus.RUNNING,
            attempts=3,
            heartbeat_at=stale,
        )
        session.add(task)
        session.commit()
        task_id = task.id
    responses.post(f"{MOCK_API}/repos/acme/web/issues/3/comments", status=422, json={})

    assert reap_stale_tasks(settings) == 1

    [line] = [line for line in json_lines.read() if "could not report" in line["message"]]
    assert (line["task"], line["repository"], line["issue"]) == (task_id, "acme/web", 3)


@responses.activate
def test_write_backs_lines_name_the_repository_and_spec_not_a_row_id(
    db: str, json_lines: JsonLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its failure too: GitHub unreachable, the queue's line says which repository."""
    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    monkeypatch.setenv("GITHUB_API_URL", MOCK_API)
    monkeypatch.delenv("REDIS_URL", raising=False)
    get_settings.cache_clear()
    with session_scope(db) as session:
        spec = Spec(
            repository=Repository(full_name="acme/web"),
            key="login",
            path="specs/login.yaml",
            title="Login",
            phase=SpecPhase.TASKS,
        )
        session.add(spec)
        session.commit()
        spec_id = spec.id
    queue = EmbeddedQueue("write-back")
    try:
        queue.put(write_back, (spec_id,), None)  # every request to GitHub fails
        queue.join()
    finally:
        get_settings.cache_clear()
    [failed] = [line for line in json_lines.read() if line["message"].startswith("job write")]
    assert (failed["repository"], failed["spec"]) == ("acme/web", "login")
