"""The Flask application factory: /webhook and /healthz."""

from __future__ import annotations

from flask import Flask, Response, jsonify
from sqlalchemy import text

from bot import webhook
from bot.queue import queue_reachable
from bot.settings import Settings, get_settings
from storage.db import get_engine


def create_app(settings: Settings | None = None) -> Flask:
    app = Flask("specbridge")
    app.config["SPECBRIDGE_SETTINGS"] = settings or get_settings()
    app.config["MAX_CONTENT_LENGTH"] = webhook.MAX_PAYLOAD_BYTES
    app.register_blueprint(webhook.blueprint)
    app.add_url_rule("/healthz", view_func=healthz)
    return app


def healthz() -> tuple[Response, int]:
    from flask import current_app

    settings: Settings = current_app.config["SPECBRIDGE_SETTINGS"]
    checks = {"database": _database_reachable(settings), "queue": queue_reachable(settings)}
    healthy = all(checks.values())
    return jsonify(status="ok" if healthy else "unavailable", **checks), 200 if healthy else 503


def _database_reachable(settings: Settings) -> bool:
    try:
        with get_engine(settings.database_url).connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:  # any failure means "not reachable" for /healthz
        return False
