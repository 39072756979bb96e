"""GET /: a read-only status page for the operator, rendered on the server.

Off unless SPECBRIDGE_STATUS_TOKEN is set (then / answers 404 saying how to
turn it on). Open it once as /?token=<token>: that sets a cookie and drops the
token from the address; or send the token as the password of HTTP basic
auth (any user name), as a script or a proxy would.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, redirect, render_template, request
from markupsafe import Markup
from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from bot.agents.outcomes import Outcome, outcomes, window
from bot.agents.task_table import tasks_query
from bot.events.deliveries import OWN_EVENT
from bot.github.auth import pace_key
from bot.github.pacing import Pacer
from bot.queue import QUEUES, depth
from bot.settings import Settings
from bot.sync.task_graph import COLOURS, FAILED, task_graph
from bot.web.graph_svg import graph_svg
from bot.web.metrics import oldest_queued_age, pace_keys
from storage.db import session_scope
from storage.models import (
    Delivery,
    Installation,
    IssueState,
    Repository,
    Spec,
    SpecStatus,
    Task,
    TaskStatus,
    Ticket,
    TicketPhase,
)

log = logging.getLogger(__name__)
blueprint = Blueprint("status_page", __name__, template_folder="templates")

COOKIE = "specbridge_status"
COOKIE_DAYS = 30
RECENT_DELIVERIES = 50
RECENT_FAILED_TASKS = 50
QUEUED_TASKS_SHOWN = 100
# Queued, or waiting for a slot or a budget (bot/agents/fleet.py): not started yet.
WAITING_OR_QUEUED = (TaskStatus.QUEUED, TaskStatus.WAITING)
# The page asks for its live part this often (milliseconds), without reloading.
REFRESH_MS = 5000
# The agents' table: runs queued this long ago at most (`specbridge report`'s default).
AGENTS_WINDOW = "7d"
OFF_NOTE = (
    "The status page is off. Set SPECBRIDGE_STATUS_TOKEN to a secret, restart, and open "
    "/?token=<the secret> once (or send it as the password of HTTP basic auth).\n"
)


@dataclass
class SpecRow:
    key: str
    title: str
    status: str  # as shown: a spec's status, or "invalid" for a file that never validated
    closed: int
    total: int
    file_url: str | None = None
    tracking_url: str | None = None
    tracking_number: int | None = None
    note: str = ""  # the first finding of a file that does not validate
    graph: Markup | None = None

    @property
    def percent(self) -> int:
        return round(100 * self.closed / self.total) if self.total else 0


@dataclass
class TaskRow:
    id: int
    repository: str
    issue_number: int
    spec_task: str
    agent: str
    status: str
    attempts: int
    started_at: datetime | None
    error: str
    queued_at: datetime | None = None
    issue_url: str = ""
    pull_request: int | None = None
    pull_request_url: str | None = None


@dataclass
class DeliveryRow:
    received_at: datetime
    delivery_id: str
    event: str
    action: str | None
    repository: str | None
    status: str
    attempts: int
    note: str | None
    own: bool = False  # an event specbridge's own writes caused: stored, never acted on
    repository_url: str | None = None


@dataclass
class BudgetRow:
    budget: str
    window_seconds: float
    limit: int
    remaining: int
    whose: str = ""  # as people know it: the installation's account, or the token


@dataclass
class QueueRow:
    name: str
    depth: int | None  # None: could not be read
    oldest_seconds: float | None


@dataclass
class Status:
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    deliveries_url: str | None = None  # GitHub's record of the App's deliveries
    specs: dict[str, list[SpecRow]] = field(default_factory=dict)
    repository_urls: dict[str, str] = field(default_factory=dict)
    # The phases, and "failed": open tickets whose last run failed, counted apart.
    phases: list[str] = field(default_factory=lambda: [*(p.value for p in TicketPhase), FAILED])
    tickets: dict[str, dict[str, int]] = field(default_factory=dict)  # repository → phase → count
    running: list[TaskRow] = field(default_factory=list)
    queued: list[TaskRow] = field(default_factory=list)
    queued_total: int = 0
    failed: list[TaskRow] = field(default_factory=list)
    deliveries: list[DeliveryRow] = field(default_factory=list)
    # Deliveries specbridge's own writes caused, left out of `deliveries` (received since
    # the oldest one shown); they are listed, marked, only when asked for (`?own=1`).
    own_left_out: int = 0
    budget: list[BudgetRow] | None = None  # None: could not be read
    queues: list[QueueRow] = field(default_factory=list)
    # What agents cost and delivered, per profile and model (bot/agents/outcomes.py).
    agents: list[Outcome] = field(default_factory=list)
    agents_window: str = AGENTS_WINDOW

    @property
    def own_deliveries(self) -> int:
        return self.own_left_out + sum(1 for d in self.deliveries if d.own)

    @property
    def failed_deliveries(self) -> int:
        return sum(1 for d in self.deliveries if d.status == "failed")


class Links:
    """Where things are on GitHub (github.com, an Enterprise Server, or the double)."""

    def __init__(self, settings: Settings) -> None:
        self.web = settings.github_web_url
        self.slug = settings.github_app_slug

    def repository(self, full_name: str) -> str:
        return f"{self.web}/{full_name}"

    def issue(self, full_name: str, number: int) -> str:
        return f"{self.web}/{full_name}/issues/{number}"

    def pull_request(self, full_name: str, number: int) -> str:
        return f"{self.web}/{full_name}/pull/{number}"

    def file(self, full_name: str, commit: str, path: str) -> str:
        return f"{self.web}/{full_name}/blob/{commit}/{path}"

    def deliveries(self) -> str | None:
        """The App's advanced settings, where GitHub lists its recent deliveries by id."""
        return f"{self.web}/settings/apps/{self.slug}/advanced" if self.slug else None


@blueprint.get("/")
def status() -> Response:
    settings: Settings = current_app.config["SPECBRIDGE_SETTINGS"]
    if not settings.status_token:
        return Response(OFF_NOTE, 404, content_type="text/plain; charset=utf-8")
    expected = _cookie_value(settings.status_token)
    offered = request.args.get("token")
    if offered is not None:
        if not hmac.compare_digest(_cookie_value(offered), expected):
            return _refused()
        # Keep the token out of the address bar, history and proxy logs from here on.
        response = redirect(request.path, code=303)
        response.set_cookie(
            COOKIE,
            expected,
            max_age=COOKIE_DAYS * 86400,
            httponly=True,
            samesite="Strict",
            secure=request.is_secure,
        )
        return response
    if not (
        hmac.compare_digest(request.cookies.get(COOKIE, ""), expected)
        or _basic_auth_matches(settings.status_token)
    ):
        return _refused()
    # "show deliveries specbridge caused" asks for them (?own=1); else they are left out.
    current = read_status(settings, own=request.args.get("own") == "1")
    # The page's refresh asks for its live part alone, every REFRESH_MS.
    template = "status_live.html" if request.args.get("part") == "live" else "status.html"
    page = render_template(template, status=current, refresh_ms=REFRESH_MS, colours=COLOURS)
    response = Response(page)
    response.headers["Cache-Control"] = "no-store"
    return response


def read_status(settings: Settings, own: bool = False) -> Status:
    """What the page shows; `own`: the deliveries specbridge's own writes caused too."""
    links = Links(settings)
    status = Status(deliveries_url=links.deliveries())
    with session_scope(settings.database_url) as session:
        status.specs = _specs(session, links)
        status.tickets = _tickets_by_phase(session)
        status.running = _tasks(session, links, TaskStatus.RUNNING, Task.started_at)
        status.queued = _tasks(
            session, links, WAITING_OR_QUEUED, Task.queued_at, QUEUED_TASKS_SHOWN, oldest=True
        )
        status.queued_total = session.scalar(
            select(func.count()).where(Task.status.in_(WAITING_OR_QUEUED))
        )
        status.failed = _tasks(
            session, links, TaskStatus.FAILED, Task.finished_at, RECENT_FAILED_TASKS
        )
        status.deliveries, status.own_left_out = _recent_deliveries(session, links, own)
        status.agents = outcomes(session, datetime.now(UTC) - window(AGENTS_WINDOW))
    names = {*status.specs, *status.tickets}
    names |= {d.repository for d in status.deliveries if d.repository}
    status.repository_urls = {name: links.repository(name) for name in names}
    status.budget = _budget(settings)
    status.queues = _queues(settings)
    return status


def _specs(session: Session, links: Links) -> dict[str, list[SpecRow]]:
    specs: dict[str, list[SpecRow]] = {}
    rows = session.scalars(
        select(Spec)
        .join(Spec.repository)
        .options(
            selectinload(Spec.repository),
            selectinload(Spec.tickets).selectinload(Ticket.spec_task),
            selectinload(Spec.tickets).selectinload(Ticket.dependencies),
        )
        .order_by(Repository.full_name, Spec.key)
    )
    for spec in rows:
        full_name = spec.repository.full_name
        never_valid = spec.source_commit is None and (
            spec.status in (SpecStatus.INVALID, SpecStatus.CANCELLED) or bool(spec.findings)
        )
        shown_status = spec.status.value
        if never_valid:  # not "cancelled": it never had issues to cancel
            removed = spec.status is SpecStatus.CANCELLED
            shown_status = "invalid, file removed" if removed else "invalid"
        commit = spec.source_commit or spec.findings_commit
        row = SpecRow(
            spec.key,
            spec.title,
            shown_status,
            spec.tickets_closed,
            spec.tickets_total,
            file_url=links.file(full_name, commit, spec.path) if commit else None,
            tracking_number=spec.tracking_issue_number,
            tracking_url=links.issue(full_name, spec.tracking_issue_number)
            if spec.tracking_issue_number
            else None,
        )
        if spec.resume_at is not None:  # a sync continues in later jobs: not over yet
            row.status, row.note = f"{shown_status}, syncing", _sync_under_way(spec)
        if spec.findings and (never_valid or spec.status is SpecStatus.INVALID):
            first = spec.findings[0]
            more = len(spec.findings) - 1
            row.note = f"line {first.get('line')}: {first.get('message')}" + (
                f" (and {more} more)" if more else ""
            )
        tickets = sorted(
            spec.tickets, key=lambda t: (t.spec_task.position if t.spec_task else 0, t.id)
        )
        graph = task_graph(tickets)
        if graph is not None and spec.status is not SpecStatus.CANCELLED:
            issue_url = links.repository(full_name) + "/issues/{number}"
            row.graph = Markup(graph_svg(graph, issue_url))  # graph_svg escapes what it writes
        specs.setdefault(full_name, []).append(row)
    return specs


def _sync_under_way(spec: Spec) -> str:
    """What a sync that continues by itself has done, and when it goes on."""
    opened = (spec.sync_totals or {}).get("opened", 0)
    resume_at = spec.resume_at
    assert resume_at is not None
    return (
        f"sync under way: {opened} issues opened so far, continues by itself "
        f"from {resume_at:%H:%M:%S} UTC"
    )


def _recent_deliveries(session: Session, links: Links, own: bool) -> tuple[list[DeliveryRow], int]:
    """The last RECENT_DELIVERIES that matter (with `own`, the last of all), and how many
    caused by specbridge itself were left out among them. After a sync its own echoes
    are hundreds: filtered here, in the query, or the table would hold nothing else."""
    is_own = Delivery.error == OWN_EVENT
    query = select(
        Delivery.id,
        Delivery.received_at,
        Delivery.delivery_id,
        Delivery.event,
        Delivery.action,
        Delivery.repository_full_name,
        Delivery.status,
        Delivery.attempts,
        Delivery.error,
    )
    if not own:
        query = query.where(or_(Delivery.error.is_(None), ~is_own))
    rows = session.execute(query.order_by(Delivery.id.desc()).limit(RECENT_DELIVERIES)).all()
    shown = [
        DeliveryRow(
            *row[1:6],
            row.status.value,
            row.attempts,
            None if row.error == OWN_EVENT else row.error,
            own=row.error == OWN_EVENT,
            repository_url=links.repository(row.repository_full_name)
            if row.repository_full_name
            else None,
        )
        for row in rows
    ]
    if own:
        return shown, 0
    oldest = rows[-1].id if len(rows) == RECENT_DELIVERIES else 0
    left_out = session.scalar(select(func.count()).where(is_own, Delivery.id > oldest))
    return shown, left_out or 0


def _tickets_by_phase(session: Session) -> dict[str, dict[str, int]]:
    """Tickets by phase; an open ticket whose last run failed counts as failed instead."""
    tickets: dict[str, dict[str, int]] = {}
    failed = and_(Ticket.state == IssueState.OPEN, Ticket.failure.is_not(None))
    shown = case((failed, literal(FAILED)), else_=Ticket.phase)
    rows = session.execute(
        select(Repository.full_name, shown, func.count())
        .join(Ticket.repository)
        .group_by(Repository.full_name, shown)
        .order_by(Repository.full_name)
    )
    for full_name, phase, count in rows:
        counts = tickets.setdefault(full_name, {})
        key = str(getattr(phase, "value", phase))
        counts[key] = counts.get(key, 0) + count
    return tickets


def _tasks(
    session: Session,
    links: Links,
    status: TaskStatus | tuple[TaskStatus, ...],
    by: InstrumentedAttribute[datetime | None] | InstrumentedAttribute[datetime],
    limit: int | None = None,
    oldest: bool = False,
) -> list[TaskRow]:
    """Tasks of a status (or of several), newest first (oldest first: queued ones, in the
    order they run)."""
    order = (by.asc(), Task.id.asc()) if oldest else (by.desc(), Task.id.desc())
    statuses = status if isinstance(status, tuple) else (status,)
    query = tasks_query().where(Task.status.in_(statuses)).order_by(None).order_by(*order)
    rows = []
    for task, ticket, full_name in session.execute(query.limit(limit)):
        spec_task = ticket.spec_task
        pull = task.pull_request_number
        rows.append(
            TaskRow(
                task.id,
                full_name,
                ticket.issue_number,
                f"{spec_task.spec.key}/{spec_task.key}" if spec_task else "?/?",
                task.agent,
                task.status.value,
                task.attempts,
                task.started_at,
                _said(task),
                queued_at=task.queued_at,
                issue_url=links.issue(full_name, ticket.issue_number),
                pull_request=pull,
                pull_request_url=links.pull_request(full_name, pull) if pull else None,
            )
        )
    return rows


def _said(task: Task) -> str:
    """A task's error, or why a queued one waits (a budget, its spec paused)."""
    if task.budget_hold and task.status is TaskStatus.WAITING:
        return f"waits: {task.budget_hold}"[:200]
    return (task.error or "").splitlines()[0][:200] if task.error else ""


def _budget(settings: Settings) -> list[BudgetRow] | None:
    whose = _budget_owners(settings)
    try:
        return [
            BudgetRow(key, window.seconds, window.limit, remaining, whose.get(key, key))
            for key in pace_keys(settings)
            for window, remaining in Pacer(settings, key).snapshot()
        ]
    except Exception:  # Redis down: the rest of the page still helps
        log.warning("status page: GitHub budget unavailable", exc_info=True)
        return None


def _budget_owners(settings: Settings) -> dict[str, str]:
    """Each budget's owner as people know it: an installation's account (its key names
    only its number), or GITHUB_TOKEN."""
    if settings.github_token:
        return {pace_key(settings, None): "GITHUB_TOKEN"}
    with session_scope(settings.database_url) as session:
        rows = session.execute(select(Installation.github_id, Installation.account_login))
        return {
            pace_key(settings, github_id): f"{login or 'installation'} (installation {github_id})"
            for github_id, login in rows
        }


def _queues(settings: Settings) -> list[QueueRow]:
    rows = []
    for name in QUEUES:
        try:
            rows.append(QueueRow(name, depth(settings, name), oldest_queued_age(settings, name)))
        except Exception:  # Redis down: said on the page
            log.warning("status page: queue %s unavailable", name, exc_info=True)
            rows.append(QueueRow(name, None, None))
    return rows


def _cookie_value(token: str) -> str:
    """What the cookie holds: derived from the token, so the cookie is not the token."""
    return hmac.new(token.encode(), b"specbridge status page", hashlib.sha256).hexdigest()


def _basic_auth_matches(token: str) -> bool:
    auth = request.authorization
    password = auth.password if auth is not None and auth.type == "basic" else None
    return password is not None and hmac.compare_digest(password.encode(), token.encode())


def _refused() -> Response:
    return Response(
        "A valid status token is needed (?token=… once, or HTTP basic auth).\n",
        401,
        {"WWW-Authenticate": 'Basic realm="specbridge status"'},
        content_type="text/plain; charset=utf-8",
    )
