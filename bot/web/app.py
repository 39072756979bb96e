"""The Flask application factory: /webhook, /healthz, /readyz, /metrics and the status page."""

from __future__ import annotations

from flask import Flask, Response, current_app, jsonify
from sqlalchemy import text

from bot.agents.profiles import check_profiles, no_agents
from bot.github.user_token import user_token_problem
from bot.queue import queue_reachable
from bot.settings import Settings, SettingsError, get_settings
from bot.web import agent_user_page, metrics, status_page, webhook
from storage.db import get_engine


def create_app(settings: Settings | None = None) -> Flask:
    app = Flask("specbridge")
    app.config["SPECBRIDGE_SETTINGS"] = settings or get_settings()
    app.config["MAX_CONTENT_LENGTH"] = webhook.MAX_PAYLOAD_BYTES
    app.register_blueprint(webhook.blueprint)
    app.register_blueprint(metrics.blueprint)
    app.register_blueprint(status_page.blueprint)
    app.register_blueprint(agent_user_page.blueprint)
    app.add_url_rule("/healthz", view_func=healthz)
    app.add_url_rule("/readyz", view_func=readyz)
    return app


def healthz() -> tuple[Response, int]:
    """Liveness: the process answers. Restart it only when this fails, not for a Redis blip."""
    return jsonify(status="ok"), 200


def readyz() -> tuple[Response, int]:
    """Readiness: whether deliveries can be taken and acted on now; 503 names what is missing."""
    settings: Settings = current_app.config["SPECBRIDGE_SETTINGS"]
    problems = {
        "database": None if _database_reachable(settings) else "the database does not answer",
        "queue": None if queue_reachable(settings) else "the queue (Redis) does not answer",
        "webhook_secret": None
        if settings.github_webhook_secret
        else "GITHUB_WEBHOOK_SECRET is not set: every delivery is refused",
        "github_credentials": None
        if settings.uses_app_auth or settings.github_token
        else "no GitHub credentials: set GITHUB_APP_ID and GITHUB_PRIVATE_KEY, or GITHUB_TOKEN",
    }
    failed = {check: problem for check, problem in problems.items() if problem}
    checks = {check: problem is None for check, problem in problems.items()}
    # Said, not failed: deliveries are still taken; only agents' tasks fail. A typo in
    # the profiles file must not take the only `serve` out of its load balancer.
    warnings = _agent_warnings(settings)
    said = {"warnings": warnings} if warnings else {}
    if failed:
        return jsonify(status="unavailable", checks=checks, failed=failed, **said), 503
    return jsonify(status="ok", checks=checks, **said), 200


def _agent_warnings(settings: Settings) -> dict[str, str]:
    """Why agents' tasks will fail or not run: a profiles file that cannot work, none at
    all where this process runs the agents, a profile assigning Copilot without the
    person's token GitHub requires for that."""
    runs_agents = settings.redis_url is None  # else workers run them, with their own file
    try:
        profiles = check_profiles(settings, runs_agents=runs_agents)
    except SettingsError as error:
        return {"agents": str(error)}
    if runs_agents and no_agents(settings):
        hint = "set it to a profiles file (docs/agents/profiles.md)"
        return {"agents": f"{no_agents(settings)}: {hint}"}
    needing = sorted(n for n, p in profiles.items() if p.dispatch and p.dispatch.as_person)
    if needing and (missing := user_token_problem(settings)):
        names = ", ".join(f"`{n}`" for n in needing)
        return {
            "agent_user_token": f"the agent profile {names} assigns issues to Copilot (or "
            "hands them to another agent that answers only a person), which GitHub allows "
            f"only with a person's token, and {missing}; until then its assignments fail "
            "with a comment saying so, and its labels and comments come from the App, which "
            "the agent may ignore"
        }
    return {}


def _database_reachable(settings: Settings) -> bool:
    try:
        with get_engine(settings.database_url).connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:  # any failure means "not reachable" for /readyz
        return False
