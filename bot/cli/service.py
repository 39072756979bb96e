"""Running specbridge: the web service, workers, the database schema, setting up
the App, and the demo."""

from __future__ import annotations

import argparse
import sys
from functools import partial

from bot.cli.problems import (
    UPGRADE_HINT,
    CommandError,
    migrated_settings,
    missing_sqlite_file,
    read_settings,
    require_redis,
)


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """serve, worker, db, setup, demo."""
    serve = commands.add_parser(
        "serve", help="run the webhook service (and, without Redis, the queue)"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=tcp_port, help="port to listen on (default: $PORT, or 8000 without it)"
    )
    serve.set_defaults(run=_serve)

    worker = commands.add_parser(
        "worker",
        help="run RQ workers: interactive and events queues in a warm process, agents forked",
    )
    worker.add_argument(
        "--queue",
        action="append",
        dest="queues",
        metavar="NAME",
        help="queue to work (repeatable; default: interactive, events and agents; "
        "events brings interactive along)",
    )
    worker.add_argument(
        "--alive",
        action="store_true",
        help="exit 0 when a worker of this host (container) is registered in Redis, 1 when "
        "none is: a healthcheck",
    )
    worker.set_defaults(run=_worker)
    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(title="db commands", metavar="COMMAND", required=True)
    db_commands.add_parser("upgrade", help="migrate to the newest schema").set_defaults(
        run=_db_upgrade
    )
    db_commands.add_parser("current", help="print the schema revision").set_defaults(
        run=_db_current
    )

    _add_setup(commands)
    _add_demo(commands)


def tcp_port(value: str) -> int:
    """--port: a TCP port, or a one-line usage error (not a traceback from the bind)."""
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r} is not a TCP port (1-65535)")
    return int(value)


def _serve(args: argparse.Namespace) -> int:
    from bot.agents.profiles import check_profiles
    from bot.web.serve import serve

    settings = read_settings()
    require_redis(settings)
    # Without Redis, serve runs the agents too.
    check_profiles(settings, runs_agents=settings.redis_url is None, warn=True)
    serve(settings, args.host, args.port)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from bot.agents.profiles import check_profiles
    from bot.events.worker import run_apart, run_worker

    if args.alive:
        return _worker_alive()

    if read_settings().redis_url is None:  # before the database: refused, nothing is made
        raise CommandError(
            "specbridge worker needs REDIS_URL; without it `specbridge serve` runs the jobs"
        )
    # Checked in a process of its own: the supervisor keeps nothing of alembic (run_apart).
    run_apart(migrated_settings)
    settings = read_settings()
    require_redis(settings)
    check_profiles(settings, runs_agents=True, warn=True)
    run_worker(settings, args.queues)
    return 0


def _worker_alive() -> int:
    """A worker of this host registered in Redis, its process alive here: RQ keeps the key
    while the worker beats (it expires some minutes after a hung worker's last beat)."""
    import os
    import socket

    from rq import Worker

    from bot.queue import redis_connection

    settings = read_settings()
    if settings.redis_url is None:
        raise CommandError("specbridge worker needs REDIS_URL")
    require_redis(settings)
    here = socket.gethostname()
    workers = Worker.all(connection=redis_connection(settings.redis_url))
    for worker in workers:
        if worker.hostname == here and worker.pid:
            try:
                os.kill(worker.pid, 0)
            except ProcessLookupError:
                continue  # a worker killed here, whose key has not expired yet
            except PermissionError:
                pass  # alive, as another account
            return 0
    print(f"specbridge: no live worker of {here} is registered in Redis", file=sys.stderr)
    return 1


def _db_upgrade(_args: argparse.Namespace) -> int:
    from storage.migrate import current_revision, upgrade

    url = read_settings().database_url
    upgrade(url)
    print(f"database at revision {current_revision(url)}")
    return 0


def _db_current(_args: argparse.Namespace) -> int:
    from storage.migrate import current_revision

    url = read_settings().database_url
    # Not asked of a file that is not there: SQLite would make it.
    revision = None if missing_sqlite_file(url) else current_revision(url)
    print(revision or f"empty ({UPGRADE_HINT})")
    return 0


def _add_setup(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    setup = commands.add_parser(
        "setup", help="create the GitHub App from app.yaml and write its credentials to .env"
    )
    setup.add_argument("--org", help="create the App in this organization (default: your account)")
    setup.add_argument(
        "--github-url",
        metavar="URL",
        help="GitHub's web address, for GitHub Enterprise Server "
        "(default: the one GITHUB_API_URL belongs to, else https://github.com)",
    )
    setup.add_argument(
        "--api-url",
        metavar="URL",
        help="GitHub's REST API, when it is not where --github-url implies (a proxy, a "
        "double): default GITHUB_API_URL, else the Enterprise Server's /api/v3, else "
        "--github-url itself if the API answers there",
    )
    setup.add_argument(
        "--port", type=tcp_port, default=3000, help="local port of the setup page (default: 3000)"
    )
    setup.add_argument(
        "--webhook-url",
        metavar="URL",
        help="where GitHub sends webhooks (default: app.yaml's hook_attributes)",
    )
    setup.add_argument(
        "--manifest",
        metavar="PATH",
        help="the App's manifest (default: ./app.yaml if there is one, else the one "
        "specbridge ships)",
    )
    setup.add_argument(
        "--env-file", default=".env", metavar="PATH", help="where to write (default: .env)"
    )
    setup.add_argument("--force", action="store_true", help="overwrite an existing env file")
    setup.add_argument(
        "--no-browser", action="store_true", help="print the page's address, do not open it"
    )
    setup.add_argument(
        "--agent-user",
        action="store_true",
        help="a person authorizes the App (GitHub's device flow) for the agents GitHub runs; "
        "their token is kept encrypted and renewed",
    )
    setup.set_defaults(run=_setup)


def _setup(args: argparse.Namespace) -> int:
    from bot.ops.setup_app import run_setup

    if args.agent_user:
        from bot.ops.agent_user import run_agent_user_setup

        return run_agent_user_setup(args, migrated_settings(), partial(print, flush=True))
    return run_setup(args, print)


def _add_demo(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    demo = commands.add_parser(
        "demo", help="try specbridge without GitHub: the GitHub double, the bot, a board, a spec"
    )
    demo.add_argument(
        "--port", type=int, default=8900, help="the GitHub double's port (default: 8900)"
    )
    demo.add_argument(
        "--bot-port", type=int, default=8000, help="specbridge serve's port (default: 8000)"
    )
    demo.set_defaults(run=_demo)


def _demo(args: argparse.Namespace) -> int:
    from bot.ops.demo import run_demo

    return run_demo(args.port, args.bot_port, print)
