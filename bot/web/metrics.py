"""GET /metrics in Prometheus' text format, or OpenMetrics when the scraper's `Accept`
asks for it (as prometheus_client's own exposition chooses), computed at scrape time.

Nothing here is counted in the memory of the process that answers: with
several gunicorn workers and RQ workers that would be one process's share.
Stored deliveries and tasks come from the database, queue depths, the age of
each queue's oldest waiting job and GitHub's content budget from where every
process keeps them (Redis, or the database without it), counts of requests,
deliveries, syncs and agent runs and their durations from bot/counters.py.
A source that does not answer leaves its metrics out of this scrape.

The exceptions, by nature: `specbridge_build_info` (the version answering) and
prometheus_client's process collector (`process_*`: the memory, CPU and open
files of the process that answered this scrape; one gunicorn worker's).
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Iterator
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, request
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString
from sqlalchemy import func, or_, select

from bot import __version__, counters
from bot.agents import outcomes
from bot.events.spool import spooled
from bot.github.auth import pace_key
from bot.github.pacing import Pacer
from bot.queue import AGENTS, EVENTS, QUEUES, depth, rq_queue
from bot.settings import Settings
from storage.db import session_scope
from storage.models import Delivery, DeliveryStatus, Installation, Task, TaskStatus

log = logging.getLogger(__name__)
blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
def metrics() -> Response:
    settings: Settings = current_app.config["SPECBRIDGE_SETTINGS"]
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = Response(encode(_registry(settings)), content_type=content_type)
    response.vary.add("Accept")
    return response


def render_metrics(settings: Settings) -> bytes:
    """The scrape in Prometheus' text format."""
    return generate_latest(_registry(settings))


def _registry(settings: Settings) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(settings))
    ProcessCollector(registry=registry)
    return registry


class _Collector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        sources = (
            _build_info,
            _stored_rows,
            _deliveries,
            _queue_depths,
            _oldest_queued,
            _spooled,
            _github_budget,
            _github_requests,
            _deliveries_without_job,
            _syncs,
            _agent_runs,
            _agent_costs,
        )
        for source in sources:
            try:
                yield from source(self.settings)
            except Exception:  # one source down (Redis) must not hide the others
                log.warning("metrics: %s unavailable", source.__name__, exc_info=True)


def _stored_rows(settings: Settings) -> Iterator[Metric]:
    # Not specbridge_deliveries: that is the counter's family (specbridge_deliveries_total),
    # and one name for two families is refused by OpenMetrics parsers.
    deliveries = GaugeMetricFamily(
        "specbridge_stored_deliveries",
        "Stored webhook deliveries by event and outcome (pruned after the retention time)",
        labels=["event", "status"],
    )
    tasks = GaugeMetricFamily("specbridge_tasks", "Agent tasks by status", labels=["status"])
    with session_scope(settings.database_url) as session:
        for event, status, count in session.execute(
            select(Delivery.event, Delivery.status, func.count()).group_by(
                Delivery.event, Delivery.status
            )
        ):
            deliveries.add_metric([event, status.value], count)
        for status, count in session.execute(
            select(Task.status, func.count()).group_by(Task.status)
        ):
            tasks.add_metric([status.value], count)
    yield deliveries
    yield tasks


def _build_info(_settings: Settings) -> Iterator[Metric]:
    info = GaugeMetricFamily(
        "specbridge_build_info",
        "The specbridge version answering, and its Python (always 1)",
        labels=["version", "python"],
    )
    info.add_metric([__version__, platform.python_version()], 1)
    yield info


def _deliveries(settings: Settings) -> Iterator[Metric]:
    processed = CounterMetricFamily(
        "specbridge_deliveries",
        "Webhook deliveries processed, by event and outcome (done, ignored, waiting: a lock "
        "was busy, failed: an attempt failed; refused: a bad signature, event unverified)",
        labels=["event", "outcome"],
    )
    for (event, outcome), count in sorted(counters.deliveries(settings).items()):
        processed.add_metric([event, outcome], count)
    yield processed
    yield _histogram(
        "specbridge_delivery_duration_seconds",
        "How long processing one delivery took (its handlers, syncs included)",
        counters.delivery_durations(settings),
    )


def _oldest_queued(settings: Settings) -> Iterator[Metric]:
    age = GaugeMetricFamily(
        "specbridge_queue_oldest_job_age_seconds",
        "How long the oldest job waiting in a queue has waited (0: none waits)",
        labels=["queue"],
    )
    for name in QUEUES:
        age.add_metric([name], oldest_queued_age(settings, name))
    yield age


def oldest_queued_age(settings: Settings, name: str) -> float:
    """Seconds the oldest waiting job of a queue has waited: RQ's own record of when it was
    queued; without Redis, the oldest stored work waiting for that queue (a delivery due,
    or a queued agent task), which is what the embedded queue holds."""
    now = datetime.now(UTC)
    if settings.redis_url is not None:
        queue = rq_queue(settings.redis_url, name)
        for job_id in queue.get_job_ids(0, 1):
            job = queue.fetch_job(job_id)
            if job is not None and job.enqueued_at is not None:
                queued = job.enqueued_at
                queued = queued if queued.tzinfo else queued.replace(tzinfo=UTC)
                return max(0.0, (now - queued).total_seconds())
        return 0.0
    with session_scope(settings.database_url) as session:
        if name == EVENTS:
            due = func.coalesce(Delivery.next_attempt_at, Delivery.received_at)
            row = session.execute(
                select(Delivery.received_at, Delivery.next_attempt_at)
                .where(
                    Delivery.status.in_([DeliveryStatus.RECEIVED, DeliveryStatus.QUEUED]),
                    or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
                )
                .order_by(due)
                .limit(1)
            ).first()
            oldest = (row.next_attempt_at or row.received_at) if row else None
        elif name == AGENTS:
            oldest = session.scalar(
                select(Task.queued_at)
                .where(Task.status == TaskStatus.QUEUED)
                .order_by(Task.queued_at)
                .limit(1)
            )
        else:
            oldest = None
    if oldest is None:
        return 0.0
    oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
    return max(0.0, (now - oldest).total_seconds())


def _queue_depths(settings: Settings) -> Iterator[Metric]:
    queued = GaugeMetricFamily(
        "specbridge_queue_depth", "Jobs waiting in a queue", labels=["queue"]
    )
    for name in QUEUES:
        queued.add_metric([name], depth(settings, name))
    yield queued


def _spooled(settings: Settings) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "specbridge_spooled_deliveries",
        "Deliveries waiting in the spool for the database to store them",
        value=spooled(settings),
    )


def _github_budget(settings: Settings) -> Iterator[Metric]:
    left = GaugeMetricFamily(
        "specbridge_github_content_budget_remaining",
        "New items (issues, comments, labels…) GitHub allows now, by installation and window",
        labels=["budget", "window_seconds"],
    )
    for key in pace_keys(settings):
        for window, remaining in Pacer(settings, key).snapshot():
            left.add_metric([key, f"{window.seconds:g}"], remaining)
    yield left


def pace_keys(settings: Settings) -> list[str]:
    """Whose budgets there are: the token's, or each installation's."""
    if settings.github_token:
        return [pace_key(settings, None)]
    with session_scope(settings.database_url) as session:
        installations = session.scalars(
            select(Installation.github_id).where(Installation.removed_at.is_(None))
        ).all()
    return [pace_key(settings, github_id) for github_id in installations]


def _github_requests(settings: Settings) -> Iterator[Metric]:
    requests = CounterMetricFamily(
        "specbridge_github_requests",
        "Requests to GitHub by kind and answer (a status code, or error: none came)",
        labels=["kind", "status"],
    )
    for (kind, status), count in sorted(counters.github_requests(settings).items()):
        requests.add_metric([kind, status], count)
    yield requests


def _deliveries_without_job(settings: Settings) -> Iterator[Metric]:
    ignored = CounterMetricFamily(
        "specbridge_deliveries_without_job",
        "Deliveries stored as ignored at once, with no job, by event and reason",
        labels=["event", "reason"],
    )
    for (event, reason), count in sorted(counters.deliveries_without_job(settings).items()):
        ignored.add_metric([event, reason], count)
    yield ignored


def _syncs(settings: Settings) -> Iterator[Metric]:
    yield _histogram(
        "specbridge_sync_duration_seconds",
        "How long syncing one spec took",
        counters.sync_durations(settings),
    )


def _agent_runs(settings: Settings) -> Iterator[Metric]:
    runs = CounterMetricFamily(
        "specbridge_agent_runs",
        "Agent runs by profile and outcome (succeeded, failed, cancelled)",
        labels=["profile", "outcome"],
    )
    for (profile, outcome), count in sorted(counters.agent_runs(settings).items()):
        runs.add_metric([profile, outcome], count)
    yield runs
    yield _histogram(
        "specbridge_agent_run_duration_seconds",
        "How long one agent run took, from its claim to its end",
        counters.agent_durations(settings),
    )


def _histogram(name: str, documentation: str, durations: counters.Histogram) -> Metric:
    return HistogramMetricFamily(
        name,
        documentation,
        buckets=[(floatToGoString(bound), count) for bound, count in durations.buckets],
        sum_value=durations.sum,
    )


def _agent_costs(settings: Settings) -> Iterator[Metric]:
    """Tokens, cost and pull requests of every recorded run (bot/agents/outcomes.py), the
    same rows `specbridge report` and the tracking issues read."""
    tokens = CounterMetricFamily(
        "specbridge_agent_tokens",
        "Tokens agents used, by profile and direction (input, output, cache_read)",
        labels=["profile", "direction"],
    )
    cost = CounterMetricFamily(
        "specbridge_agent_cost_usd",
        "What agents' runs cost in USD (their own figure, else tokens times the profile's "
        "price table), by profile",
        labels=["profile"],
    )
    pulls = GaugeMetricFamily(
        "specbridge_agent_pull_requests",
        "Agents' pull requests by profile and outcome (open, merged, closed unmerged)",
        labels=["profile", "outcome"],
    )
    attempts = GaugeMetricFamily(
        "specbridge_agent_attempts",
        "Attempts at a task of several (a profile's or task's `attempts`, or /attempt), "
        "by profile: run, and won (its pull request merged, the others closed)",
        labels=["profile", "result"],
    )
    with session_scope(settings.database_url) as session:
        found = outcomes.totals(session)
    for (profile, direction), count in sorted(found.tokens.items()):
        tokens.add_metric([profile, direction], count)
    for profile, usd in sorted(found.cost_usd.items()):
        cost.add_metric([profile], usd)
    for (profile, outcome), count in sorted(found.pull_requests.items()):
        pulls.add_metric([profile, outcome], count)
    for (profile, result), count in sorted(found.attempts.items()):
        attempts.add_metric([profile, result], count)
    yield tokens
    yield cost
    yield pulls
    yield attempts
