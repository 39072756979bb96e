"""The `specbridge` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bot import __version__
from bot.settings import Settings, SettingsError, get_settings
from storage.models import TaskStatus


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except SettingsError as error:
        print(f"specbridge: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="specbridge",
        description="Turn spec files committed to a repository into tracked, executed work.",
    )
    parser.add_argument("--version", action="version", version=f"specbridge {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the webhook service (and, without Redis, the queue)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="run an RQ worker for the events and agents queues")
    worker.add_argument(
        "--queue", action="append", dest="queues", help="queue to work (repeatable)"
    )
    worker.set_defaults(run=_worker)

    sync = commands.add_parser("sync", help="sync a repository's specs by hand")
    sync.add_argument("--repo", required=True, metavar="OWNER/NAME")
    sync.add_argument("--ref", help="branch, tag or commit (default: the default branch)")
    sync.set_defaults(run=_sync)

    reconcile = commands.add_parser(
        "reconcile", help="apply the moves made on boards (for user-owned boards; run from cron)"
    )
    reconcile.add_argument("--repo", metavar="OWNER/NAME")
    reconcile.set_defaults(run=_reconcile)

    tasks = commands.add_parser("tasks", help="agent tasks: ticket, status, attempts, timings")
    tasks.add_argument("--repo", metavar="OWNER/NAME")
    tasks.add_argument("--status", choices=[s.value for s in TaskStatus])
    tasks.set_defaults(run=_tasks)

    validate = commands.add_parser("validate", help="validate spec files, no server needed")
    validate.add_argument("paths", nargs="*", default=["specs/"], metavar="PATH")
    validate.add_argument("--format", choices=("text", "json", "github"), default="text")
    validate.set_defaults(run=_validate)

    plan = commands.add_parser(
        "plan", help="what merging spec files would do to a repository's issues (no GitHub)"
    )
    plan.add_argument("paths", nargs="*", default=["specs/"], metavar="PATH")
    plan.add_argument("--repo", required=True, metavar="OWNER/NAME")
    plan.set_defaults(run=_plan)

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(title="db commands", metavar="COMMAND", required=True)
    db_commands.add_parser("upgrade", help="migrate to the newest schema").set_defaults(
        run=_db_upgrade
    )
    db_commands.add_parser("current", help="print the schema revision").set_defaults(
        run=_db_current
    )
    return parser


def _settings() -> Settings:
    return get_settings()


def _db_upgrade(_args: argparse.Namespace) -> int:
    from storage.migrate import current_revision, upgrade

    url = _settings().database_url
    upgrade(url)
    print(f"database at revision {current_revision(url)}")
    return 0


def _db_current(_args: argparse.Namespace) -> int:
    from storage.migrate import current_revision

    print(current_revision(_settings().database_url) or "empty (run: specbridge db upgrade)")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from specs.report import validate_paths

    return validate_paths(args.paths, args.format, sys.stdout)


def _plan(args: argparse.Namespace) -> int:
    from bot.checks import local_plan

    try:
        text, valid = local_plan(_settings(), args.repo, args.paths)
    except OSError as error:
        print(f"specbridge: cannot read {error.filename}: {error.strerror}", file=sys.stderr)
        return 2
    print(text)
    return 0 if valid else 1


def _serve(args: argparse.Namespace) -> int:
    from bot.serve import serve

    serve(_settings(), args.host, args.port)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from bot.worker import run_worker

    run_worker(_settings(), args.queues)
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    from bot.reconcile import reconcile

    changes = reconcile(_settings(), args.repo)
    print("\n".join(changes) or "every ticket matches its card")
    return 0


def _tasks(args: argparse.Namespace) -> int:
    from bot.task_table import task_table

    print(task_table(_settings().database_url, args.repo, args.status))
    return 0


def _sync(args: argparse.Namespace) -> int:
    from bot.sync import sync_repository

    print(sync_repository(_settings(), args.repo, args.ref))
    return 0


if __name__ == "__main__":
    sys.exit(main())
