"""The `specbridge` command: one entry point, one subcommand per job.

An expected problem (a setting, the database, Redis, GitHub, a repository the
App cannot reach) ends the command with one line on stderr and exit status 2;
only a bug shows a traceback.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import socket
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlparse

from bot import __version__
from bot.settings import Settings, SettingsError, get_settings
from storage.models import TaskStatus

if TYPE_CHECKING:
    from bot.sync import SyncReport

REPO_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
UPGRADE_HINT = "run `specbridge db upgrade`"


class CommandError(Exception):
    """An expected problem, said in one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A usage mistake is one line too, pointing at the help."""
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        message = expected_problem(error)
        if message is None:
            raise
        print(f"specbridge: {message}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="specbridge",
        description="Turn spec files committed to a repository into tracked, executed work.",
    )
    parser.add_argument("--version", action="version", version=f"specbridge {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the webhook service (and, without Redis, the queue)"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=int, help="port to listen on (default: $PORT, or 8000 without it)"
    )
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="run an RQ worker for the events and agents queues")
    worker.add_argument(
        "--queue",
        action="append",
        dest="queues",
        metavar="NAME",
        help="queue to work (repeatable; default: events and agents)",
    )
    worker.set_defaults(run=_worker)

    sync = commands.add_parser("sync", help="sync a repository's specs by hand")
    sync.add_argument(
        "--repo", required=True, type=repo_name, metavar="OWNER/NAME", help="the repository"
    )
    sync.add_argument("--ref", help="branch, tag or commit (default: the default branch)")
    sync.set_defaults(run=_sync)

    reconcile = commands.add_parser(
        "reconcile", help="apply the moves made on boards (for user-owned boards; run from cron)"
    )
    reconcile.add_argument(
        "--repo", type=repo_name, metavar="OWNER/NAME", help="only this repository"
    )
    reconcile.set_defaults(run=_reconcile)

    tasks = commands.add_parser("tasks", help="agent tasks: spec, task, status, attempts, timings")
    tasks.add_argument("--repo", type=repo_name, metavar="OWNER/NAME", help="only this repository")
    tasks.add_argument(
        "--status", choices=[s.value for s in TaskStatus], help="only tasks with this status"
    )
    tasks.add_argument("--json", action="store_true", help="print JSON instead of a table")
    tasks.set_defaults(run=_tasks)

    validate = commands.add_parser("validate", help="validate spec files, no server needed")
    validate.add_argument(
        "paths",
        nargs="*",
        default=["specs/"],
        metavar="PATH",
        help="spec files or folders, read recursively (default: specs/)",
    )
    validate.add_argument(
        "--format",
        choices=("text", "json", "github", "sarif"),
        default="text",
        help="text for people, json for scripts, github for workflow annotations, "
        "sarif for code scanning",
    )
    validate.set_defaults(run=_quiet_on_closed_pipe(_validate))

    importer = commands.add_parser("import", help="write a spec from spec-kit or Kiro files")
    importer.add_argument("tool", choices=sorted(IMPORTERS), help="the tool the files come from")
    importer.add_argument("path", metavar="PATH", help="the feature's directory, or a file in it")
    importer.add_argument("--output", "-o", metavar="FILE", help="write here (default: stdout)")
    importer.set_defaults(run=_quiet_on_closed_pipe(_import))

    schema = commands.add_parser("schema", help="print the JSON Schema of spec files")
    schema.add_argument(
        "--config", action="store_true", help="print the schema of .github/specbridge.yml instead"
    )
    schema.set_defaults(run=_quiet_on_closed_pipe(_schema))

    plan = commands.add_parser(
        "plan", help="what merging spec files would do to a repository's issues (no GitHub)"
    )
    plan.add_argument(
        "paths",
        nargs="*",
        default=["specs/"],
        metavar="PATH",
        help="spec files or folders, as in the repository (default: specs/)",
    )
    plan.add_argument(
        "--repo", required=True, metavar="OWNER/NAME", help="the repository whose issues to plan"
    )
    plan.set_defaults(run=_plan)

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
    return parser


def repo_name(value: str) -> str:
    """argparse type for OWNER/NAME."""
    if not REPO_NAME.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not OWNER/NAME, such as acme/rocket")
    return value


# -- expected problems ---------------------------------------------------------------


def expected_problem(error: BaseException) -> str | None:
    """The one line for an expected problem; None for a bug (shown with its traceback)."""
    from github import GithubException
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from requests import RequestException
    from sqlalchemy.exc import DBAPIError

    from bot.github.auth import GitHubAuthError

    if isinstance(error, CommandError | SettingsError | GitHubAuthError):
        return str(error)
    if isinstance(error, DBAPIError):
        return _database_problem(error)
    if isinstance(error, RedisConnectionError | RedisTimeoutError):
        return f"cannot reach Redis at {_redis_url()}: {_first_line(error)}"
    if isinstance(error, GithubException):
        return _github_problem(error)
    if isinstance(error, RequestException):
        return f"cannot reach GitHub at {get_settings().github_api_url}: {_first_line(error)}"
    return None


def _database_problem(error: BaseException) -> str:
    text = _first_line(getattr(error, "orig", None) or error)
    if re.search(r"no such table|relation .* does not exist|UndefinedTable", text, re.I):
        return f"the database has no specbridge tables: {UPGRADE_HINT}"
    return f"cannot reach the database at {_database_url()}: {text}"


def _github_problem(error: BaseException) -> str:
    status = getattr(error, "status", None)
    data = getattr(error, "data", None)
    message = data.get("message") if isinstance(data, dict) else None
    if status == 401:
        return (
            "GitHub refused the credentials (401): check GITHUB_APP_ID and the private key, "
            "or GITHUB_TOKEN"
        )
    return f"GitHub answered {status}: {message or _first_line(error)}"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _database_url() -> str:
    from sqlalchemy.engine import make_url

    return make_url(get_settings().database_url).render_as_string(hide_password=True)


def _redis_url() -> str:
    url = urlparse(get_settings().redis_url or "")
    if url.password:
        url = url._replace(netloc=f"***@{url.hostname}:{url.port or 6379}")
    return url.geturl()


def _settings() -> Settings:
    return get_settings()


def _migrated_settings() -> Settings:
    """Settings for a command that reads the database: it must be reachable and migrated."""
    from alembic.script import ScriptDirectory

    from storage.migrate import alembic_config, current_revision

    settings = _settings()
    current = current_revision(settings.database_url)
    head = ScriptDirectory.from_config(alembic_config(settings.database_url)).get_current_head()
    if current is None:
        raise CommandError(f"the database at {_database_url()} is empty: {UPGRADE_HINT}")
    if current != head:
        raise CommandError(
            f"the database is at revision {current}, this specbridge needs {head}: {UPGRADE_HINT}"
        )
    return settings


def _require_redis(settings: Settings) -> None:
    from bot.queue import redis_connection

    if settings.redis_url is not None:
        redis_connection(settings.redis_url).ping()


def _require_github(settings: Settings) -> None:
    """Fail in seconds, not after the client's retries, when GitHub's host does not answer."""
    url = urlparse(settings.github_api_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=5).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise CommandError(f"cannot reach GitHub at {settings.github_api_url}: {reason}") from None


# -- the commands ----------------------------------------------------------------------


def _db_upgrade(_args: argparse.Namespace) -> int:
    from storage.migrate import current_revision, upgrade

    url = _settings().database_url
    upgrade(url)
    print(f"database at revision {current_revision(url)}")
    return 0


def _db_current(_args: argparse.Namespace) -> int:
    from storage.migrate import current_revision

    print(current_revision(_settings().database_url) or f"empty ({UPGRADE_HINT})")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from specs.report import validate_paths

    return validate_paths(args.paths, args.format, sys.stdout)


# tool → (its importer module, which names the FILES it reads, and the function)
IMPORTERS = {
    "spec-kit": ("specs.importers.spec_kit", "import_spec_kit"),
    "kiro": ("specs.importers.kiro", "import_kiro"),
}


def _import(args: argparse.Namespace) -> int:
    import importlib
    from pathlib import Path

    from specs.importers import spec_yaml
    from specs.load import load_spec

    module_name, function = IMPORTERS[args.tool]
    module = importlib.import_module(module_name)
    directory = Path(args.path)
    directory = directory.parent if directory.is_file() else directory
    try:
        files = {
            name: (directory / name).read_text(encoding="utf-8")
            for name in module.FILES
            if (directory / name).is_file()
        }
    except UnicodeDecodeError as error:
        print(f"specbridge import: a file in {directory} is not UTF-8 ({error})", file=sys.stderr)
        return 2
    if not files:
        print(
            f"specbridge import: {directory} has none of {', '.join(module.FILES)}",
            file=sys.stderr,
        )
        return 2
    imported = getattr(module, function)(files, directory.resolve().name)
    text = spec_yaml(imported, f"{args.tool} {directory}")
    for note in imported.unmapped:
        print(f"specbridge import: not mapped: {note}", file=sys.stderr)
    output = Path(args.output) if args.output else None
    _, findings = load_spec(text, str(output or f"{imported.spec['id']}.yaml"))
    for finding in (f for f in findings if f.is_error):
        print(f"specbridge import: {finding.code}: {finding.message}", file=sys.stderr)
    if output is None:
        sys.stdout.write(text)
    elif output.exists():
        print(f"specbridge import: {output} exists; not overwritten", file=sys.stderr)
        return 2
    else:
        output.write_text(text, encoding="utf-8")
        print(f"wrote {output}", file=sys.stderr)
    return 1 if any(f.is_error for f in findings) else 0


def _schema(args: argparse.Namespace) -> int:
    from importlib.resources import files

    package, name = (
        ("bot", "repo_config.schema.json") if args.config else ("specs", "spec.schema.json")
    )
    sys.stdout.write(files(package).joinpath(name).read_text(encoding="utf-8"))
    return 0


def _quiet_on_closed_pipe(
    run: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """Output read by a command that stops early (`| head`) ends without a traceback."""

    @functools.wraps(run)
    def quietly(args: argparse.Namespace) -> int:
        try:
            status = run(args)
            sys.stdout.flush()
            return status
        except BrokenPipeError:
            # Python would fail again flushing stdout at exit: point it at nothing.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141  # as a shell reports a command ended by SIGPIPE

    return quietly


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

    settings = _settings()
    _require_redis(settings)
    serve(settings, args.host, args.port)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from bot.worker import run_worker

    settings = _migrated_settings()
    if settings.redis_url is None:
        raise CommandError(
            "specbridge worker needs REDIS_URL; without it `specbridge serve` runs the jobs"
        )
    _require_redis(settings)
    run_worker(settings, args.queues)
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    from bot.reconcile import reconcile

    settings = _migrated_settings()
    _require_github(settings)
    changes = reconcile(settings, args.repo)
    print("\n".join(changes) or "every ticket matches its card")
    return 0


def _tasks(args: argparse.Namespace) -> int:
    from bot.task_table import task_json, task_table

    show = task_json if args.json else task_table
    print(show(_migrated_settings().database_url, args.repo, args.status))
    return 0


def _sync(args: argparse.Namespace) -> int:
    from github import UnknownObjectException

    from bot.sync import SyncFailed, sync_repository

    settings = _migrated_settings()
    _require_redis(settings)
    _require_github(settings)
    try:
        report = sync_repository(settings, args.repo, args.ref, progress=print)
    except UnknownObjectException:
        raise CommandError(_unreachable_repository(settings, args.repo)) from None
    except SyncFailed as failed:
        print(failed)
        return 1
    print(report)
    print(_sync_summary(settings, args.repo, report))
    return 0


def _unreachable_repository(settings: Settings, full_name: str) -> str:
    if settings.uses_app_auth and not settings.github_token:
        return (
            f"the App is not installed on {full_name}, or there is no such repository: "
            f"install it from {settings.github_web_url}/apps/{settings.github_app_slug or 'APP'}"
        )
    return f"GITHUB_TOKEN cannot see {full_name}, or there is no such repository"


def _sync_summary(settings: Settings, full_name: str, report: SyncReport) -> str:
    """Counts, then a link to each synced spec's tracking issue."""
    from sqlalchemy import select

    from storage.db import session_scope
    from storage.models import Repository, Spec

    counts = {
        what: len(getattr(report, what))
        for what in ("synced", "paused", "invalid", "failed", "cancelled")
    }
    lines = [", ".join(f"{count} {what}" for what, count in counts.items())]
    paths = [*report.synced, *report.paused]
    with session_scope(settings.database_url) as session:
        specs = session.scalars(
            select(Spec)
            .join(Repository)
            .where(Repository.full_name == full_name, Spec.path.in_(paths))
            .order_by(Spec.path)
        ).all()
        web = f"{settings.github_web_url}/{full_name}/issues"
        lines += [
            f"{spec.key}: {web}/{spec.tracking_issue_number}"
            for spec in specs
            if spec.tracking_issue_number is not None
        ]
    return "\n".join(lines)


# -- setting up, trying out ------------------------------------------------------------


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
        "--port", type=int, default=3000, help="local port of the setup page (default: 3000)"
    )
    setup.add_argument(
        "--webhook-url",
        metavar="URL",
        help="where GitHub sends webhooks (default: app.yaml's hook_attributes)",
    )
    setup.add_argument(
        "--manifest", default="app.yaml", metavar="PATH", help="the manifest (default: app.yaml)"
    )
    setup.add_argument(
        "--env-file", default=".env", metavar="PATH", help="where to write (default: .env)"
    )
    setup.add_argument("--force", action="store_true", help="overwrite an existing env file")
    setup.add_argument(
        "--no-browser", action="store_true", help="print the page's address, do not open it"
    )
    setup.set_defaults(run=_setup)


def _setup(args: argparse.Namespace) -> int:
    from bot.setup_app import run_setup

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
    from bot.demo import run_demo

    return run_demo(args.port, args.bot_port, print)


if __name__ == "__main__":
    # Run the imported module, so that its exception classes are the ones others import.
    from bot.cli import main as cli_main

    sys.exit(cli_main())
