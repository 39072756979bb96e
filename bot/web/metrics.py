"""GET /metrics in Prometheus' text format, computed at scrape time.

Nothing here is counted in the memory of the process that answers: with
several gunicorn workers and RQ workers that would be one process's share.
Stored deliveries and tasks come from the database, queue depths and
GitHub's content budget from where every process keeps them (Redis, or the
database without it), request counts and sync durations from bot/counters.py.
A source that does not answer leaves its metrics out of this scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString
from sqlalchemy import func, select

from bot import counters
from bot.events.spool import spooled
from bot.github.auth import pace_key
from bot.github.pacing import Pacer
from bot.queue import QUEUES, depth
from bot.settings import Settings
from storage.db import session_scope
from storage.models import Delivery, Installation, Task

log = logging.getLogger(__name__)
blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
def metrics() -> Response:
    settings: Settings = current_app.config["SPECBRIDGE_SETTINGS"]
    return Response(render_metrics(settings), content_type=CONTENT_TYPE_LATEST)


def render_metrics(settings: Settings) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(settings))
    return generate_latest(registry)


class _Collector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        sources = (
            _stored_rows,
            _queue_depths,
            _spooled,
            _github_budget,
            _github_requests,
            _deliveries_without_job,
            _syncs,
            _agent_runs,
        )
        for source in sources:
            try:
                yield from source(self.settings)
            except Exception:  # one source down (Redis) must not hide the others
                log.warning("metrics: %s unavailable", source.__name__, exc_info=True)


def _stored_rows(settings: Settings) -> Iterator[Metric]:
    deliveries = GaugeMetricFamily(
        "specbridge_deliveries",
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
    durations = counters.sync_durations(settings)
    yield HistogramMetricFamily(
        "specbridge_sync_duration_seconds",
        "How long syncing one spec took",
        buckets=[(floatToGoString(bound), count) for bound, count in durations.buckets],
        sum_value=durations.sum,
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
    durations = counters.agent_durations(settings)
    yield HistogramMetricFamily(
        "specbridge_agent_run_duration_seconds",
        "How long one agent run took, from its claim to its end",
        buckets=[(floatToGoString(bound), count) for bound, count in durations.buckets],
        sum_value=durations.sum,
    )
