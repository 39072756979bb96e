"""`specbridge serve`: the web app under gunicorn, migrated and ready.

Without Redis the queue runs inside this process, so there is exactly one
gunicorn worker (threads serve the requests) and the jobs it queued before a
restart are queued again at start.

Gunicorn's own settings come from `GUNICORN_CMD_ARGS` as with the `gunicorn`
command (`--workers 4 --timeout 60`); they override specbridge's defaults.
Behind a proxy, SPECBRIDGE_PROXY_HOPS says how many X-Forwarded-* hops to trust.
"""

from __future__ import annotations

import logging
import socket
from functools import partial
from socket import AI_PASSIVE

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger
from werkzeug.middleware.proxy_fix import ProxyFix

from bot.agents.isolation import hide_environment_from_children
from bot.errors import CommandError
from bot.events import maintenance
from bot.events.deliveries import requeue_unfinished
from bot.events.worker import freeze_after_fork, preload, run_apart
from bot.logs import configure_logging, log_context, log_formatter
from bot.settings import Settings
from bot.web.app import create_app
from storage.db import connections_note

log = logging.getLogger(__name__)

# gunicorn's default, with the path instead of the whole request line: a query
# string (the status page's ?token=) never lands in the logs.
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(f)s" "%(a)s"'


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, object]) -> None:
        self._settings = settings
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)
        formatter = log_formatter(self._settings)
        self.cfg.set("logger_class", type("Logger", (_FormattedLogger,), {"formatter": formatter}))
        self._apply_gunicorn_cmd_args()
        if self._settings.embedded_queue:
            if self.cfg.workers != 1:
                log.warning("without REDIS_URL the queue runs in one process: using 1 worker")
            self.cfg.set("workers", 1)
            self.cfg.set("post_worker_init", self.start_embedded_queue)
        else:
            self.cfg.set("post_worker_init", self.start_web_chores)

    def _apply_gunicorn_cmd_args(self) -> None:
        """GUNICORN_CMD_ARGS, read as the `gunicorn` command reads it."""
        named = self.cfg.parser().parse_args(self.cfg.get_cmd_args_from_env())
        for key, value in vars(named).items():
            if value is not None and key in self.cfg.settings:
                self.cfg.set(key.lower(), value)

    def load(self):  # type: ignore[no-untyped-def]
        return behind_proxies(create_app(self._settings), self._settings.proxy_hops)

    def start_embedded_queue(self, _worker) -> None:  # type: ignore[no-untyped-def]
        """In the worker process, never in gunicorn's master: threads must not cross a fork."""
        freeze_after_fork()
        # What waited in the spool first, so the restart's requeue sees it too.
        maintenance.run_chores(self._settings, maintenance.WEB_CHORES)
        # Only this process ran jobs: whatever it left unfinished was cut short.
        requeue_unfinished(self._settings, after_restart=True)
        maintenance.start_threads(self._settings)

    def start_web_chores(self, _worker) -> None:  # type: ignore[no-untyped-def]
        """The workers run the jobs; this process drains the spool it fills, from start."""
        freeze_after_fork()
        maintenance.start_thread(self._settings, maintenance.WEB_CHORES)


class _FormattedLogger(GunicornLogger):  # type: ignore[misc]
    """gunicorn's own lines (errors, the access log) in the same format as ours."""

    formatter: logging.Formatter

    def setup(self, cfg) -> None:  # type: ignore[no-untyped-def]
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.setFormatter(self.formatter)

    def access(self, resp, req, environ, request_time) -> None:  # type: ignore[no-untyped-def]
        """The access line of a delivery names it, as the lines logged while answering it do."""
        with log_context(
            delivery=environ.get("HTTP_X_GITHUB_DELIVERY"),
            event=environ.get("HTTP_X_GITHUB_EVENT"),
        ):
            super().access(resp, req, environ, request_time)


def behind_proxies(app: Flask, hops: int) -> Flask:
    """Believe X-Forwarded-For/-Proto/-Host/-Port/-Prefix from that many proxies (0: none)."""
    if hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops
        )
    return app


def check_address(host: str, port: int) -> None:
    """Whether host:port can be listened on, said in one line: gunicorn would retry and
    log some ten ERROR lines for a host that is no address or a port already taken."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as error:
        reason = error.strerror if isinstance(error, socket.gaierror) else str(error)
        problem = f"cannot listen on {host}:{port}: {host!r} is no address ({reason})"
        raise CommandError(problem) from None
    family, kind, protocol, _name, address = addresses[0]
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does
        try:
            probe.bind(address)
        except OSError as error:
            raise CommandError(f"cannot listen on {host}:{port}: {error.strerror}") from None


def migrate(database_url: str) -> None:
    """The schema upgraded to the newest; alembic imported here only (see run_apart)."""
    from storage.migrate import upgrade

    upgrade(database_url)


def serve(settings: Settings, host: str, port: int | None = None) -> None:
    """Migrate, then serve on host:port (port None: the PORT setting)."""
    configure_logging(settings)
    # In a process of its own: gunicorn's master keeps nothing of alembic (see run_apart).
    run_apart(partial(migrate, settings.database_url))
    check_address(host, port or settings.port)
    if settings.embedded_queue:
        hide_environment_from_children()  # agents run inside this process's queue
    if not settings.github_webhook_secret:
        log.warning("GITHUB_WEBHOOK_SECRET is not set: /webhook refuses every delivery")
    workers = 1 if settings.embedded_queue else 2
    # Loaded in gunicorn's master: its workers share it (bot/events/worker.py, preload).
    preload(settings.database_url)
    app = _Gunicorn(
        settings,
        {
            "bind": f"{host}:{port or settings.port}",
            "workers": workers,
            "threads": 8,
            "accesslog": "-",
            "access_log_format": ACCESS_LOG_FORMAT,
        },
    )
    note = connections_note(settings.database_url, app.cfg.workers)
    if note:
        log.info("%s", note)
    app.run()
