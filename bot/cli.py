"""The `specbridge` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Sequence

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
    validate.add_argument("--format", choices=("text", "json", "github", "sarif"), default="text")
    validate.set_defaults(run=_quiet_on_closed_pipe(_validate))

    importer = commands.add_parser("import", help="write a spec from spec-kit or Kiro files")
    importer.add_argument("tool", choices=sorted(IMPORTERS))
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
