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
from datetime import datetime

from flask import Blueprint, Response, current_app, redirect, render_template, request
from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from bot.agents.task_table import tasks_query
from bot.github.pacing import Pacer
from bot.settings import Settings
from bot.web.metrics import pace_keys
from storage.db import session_scope
from storage.models import (
    Delivery,
    Repository,
    Spec,
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
OFF_NOTE = (
    "The status page is off. Set SPECBRIDGE_STATUS_TOKEN to a secret, restart, and open "
    "/?token=<the secret> once (or send it as the password of HTTP basic auth).\n"
)


@dataclass
class SpecRow:
    key: str
    title: str
    status: str
    closed: int
    total: int

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


@dataclass
class DeliveryRow:
    received_at: datetime
    delivery_id: str
    event: str
    action: str | None
    repository: str | None
    status: str
    attempts: int
    error: str | None


@dataclass
class BudgetRow:
    budget: str
    window_seconds: float
    limit: int
    remaining: int


@dataclass
class Status:
    specs: dict[str, list[SpecRow]] = field(default_factory=dict)
    phases: list[str] = field(default_factory=lambda: [p.value for p in TicketPhase])
    tickets: dict[str, dict[str, int]] = field(default_factory=dict)  # repository → phase → count
    running: list[TaskRow] = field(default_factory=list)
    failed: list[TaskRow] = field(default_factory=list)
    deliveries: list[DeliveryRow] = field(default_factory=list)
    budget: list[BudgetRow] | None = None  # None: could not be read


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
    return Response(render_template("status.html", status=read_status(settings)))


def read_status(settings: Settings) -> Status:
    status = Status()
    with session_scope(settings.database_url) as session:
        status.specs = _specs(session)
        status.tickets = _tickets_by_phase(session)
        status.running = _tasks(session, TaskStatus.RUNNING, Task.started_at)
        status.failed = _tasks(session, TaskStatus.FAILED, Task.finished_at, RECENT_FAILED_TASKS)
        status.deliveries = _recent_deliveries(session)
    status.budget = _budget(settings)
    return status


def _specs(session: Session) -> dict[str, list[SpecRow]]:
    specs: dict[str, list[SpecRow]] = {}
    rows = session.execute(
        select(
            Repository.full_name,
            Spec.key,
            Spec.title,
            Spec.status,
            Spec.tickets_closed,
            Spec.tickets_total,
        )
        .join(Spec.repository)
        .order_by(Repository.full_name, Spec.key)
    )
    for full_name, key, title, status, closed, total in rows:
        specs.setdefault(full_name, []).append(SpecRow(key, title, status.value, closed, total))
    return specs


def _recent_deliveries(session: Session) -> list[DeliveryRow]:
    rows = session.execute(
        select(
            Delivery.received_at,
            Delivery.delivery_id,
            Delivery.event,
            Delivery.action,
            Delivery.repository_full_name,
            Delivery.status,
            Delivery.attempts,
            Delivery.error,
        )
        .order_by(Delivery.id.desc())
        .limit(RECENT_DELIVERIES)
    )
    return [DeliveryRow(*row[:5], row.status.value, *row[6:]) for row in rows]


def _tickets_by_phase(session: Session) -> dict[str, dict[str, int]]:
    tickets: dict[str, dict[str, int]] = {}
    rows = session.execute(
        select(Repository.full_name, Ticket.phase, func.count())
        .join(Ticket.repository)
        .group_by(Repository.full_name, Ticket.phase)
        .order_by(Repository.full_name)
    )
    for full_name, phase, count in rows:
        tickets.setdefault(full_name, {})[phase.value] = count
    return tickets


def _tasks(
    session: Session,
    status: TaskStatus,
    newest_by: InstrumentedAttribute[datetime | None],
    limit: int | None = None,
) -> list[TaskRow]:
    query = tasks_query(status=status).order_by(None).order_by(newest_by.desc(), Task.id.desc())
    rows = []
    for task, ticket, full_name in session.execute(query.limit(limit)):
        spec_task = ticket.spec_task
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
                (task.error or "").splitlines()[0][:200] if task.error else "",
            )
        )
    return rows


def _budget(settings: Settings) -> list[BudgetRow] | None:
    try:
        return [
            BudgetRow(key, window.seconds, window.limit, remaining)
            for key in pace_keys(settings)
            for window, remaining in Pacer(settings, key).snapshot()
        ]
    except Exception:  # Redis down: the rest of the page still helps
        log.warning("status page: GitHub budget unavailable", exc_info=True)
        return None


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
