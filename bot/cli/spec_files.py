"""Spec files, no server needed: validate, import from other tools, print the
schema, and the plan of a merge against the recorded state."""

from __future__ import annotations

import argparse
import sys

from bot.cli.problems import migrated_settings, quiet_on_closed_pipe, repo_name
from specs import importers
from specs.model import Finding


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """validate, import, schema, plan."""
    validate = commands.add_parser(
        "validate",
        help="validate spec files, or .github/specbridge.yml against its schema; no server needed",
    )
    validate.add_argument(
        "paths",
        nargs="*",
        default=["specs/"],
        metavar="PATH",
        help="spec files or folders, read recursively, or the settings file "
        ".github/specbridge.yml (default: specs/)",
    )
    validate.add_argument(
        "--format",
        choices=("text", "json", "github", "sarif"),
        default="text",
        help="text for people, json for scripts, github for workflow annotations, "
        "sarif for code scanning",
    )
    validate.set_defaults(run=quiet_on_closed_pipe(_validate))

    importer = commands.add_parser("import", help="write a spec from spec-kit or Kiro files")
    importer.add_argument(
        "tool", choices=sorted(importers.IMPORTERS), help="the tool the files come from"
    )
    importer.add_argument("path", metavar="PATH", help="the feature's directory, or a file in it")
    importer.add_argument("--output", "-o", metavar="FILE", help="write here (default: stdout)")
    importer.set_defaults(run=quiet_on_closed_pipe(_import))

    schema = commands.add_parser("schema", help="print the JSON Schema of spec files")
    schema.add_argument(
        "--config", action="store_true", help="print the schema of .github/specbridge.yml instead"
    )
    schema.set_defaults(run=quiet_on_closed_pipe(_schema))

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
        "--repo",
        required=True,
        type=repo_name,
        metavar="OWNER/NAME",
        help="the repository whose issues to plan",
    )
    plan.set_defaults(run=_plan)


def _validate(args: argparse.Namespace) -> int:
    from bot.repo_config import check_config_file, is_config_path
    from specs.report import validate_paths

    def settings_file(path: str, text: bytes) -> list[Finding] | None:
        return check_config_file(text, path) if is_config_path(path) else None

    return validate_paths(args.paths, args.format, sys.stdout, settings_file)


def _import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from specs.importers import ImportProblem, Note, import_feature
    from specs.sources import files_read, load_native

    try:
        imported, text = import_feature(args.tool, Path(args.path))
    except ImportProblem as problem:
        print(f"specbridge import: {problem}", file=sys.stderr)
        return 2
    directory = Path(args.path) if Path(args.path).is_dir() else Path(args.path).parent
    folder = directory.as_posix().rstrip("/") + "/"
    for note in imported.unmapped:
        if getattr(note, "severity", "warning") == "warning":
            placed = isinstance(note, Note) and note.file
            at = f"{folder}{note.file}:{note.line}: " if placed else ""
            print(f"specbridge import: {at}not mapped: {note}", file=sys.stderr)
    # Checked as the folder it came from: each error at the Markdown line to fix.
    present = [n for n in files_read(args.tool) if (directory / n).is_file()]
    files = {folder + name: (directory / name).read_bytes() for name in present}
    _, findings = load_native(args.tool, folder, files)
    errors = [f for f in findings if f.is_error]
    for f in errors:
        where = f"{f.path}:{f.line}"
        print(f"specbridge import: {where}: error[{f.code}]: {f.message}", file=sys.stderr)
    output = Path(args.output) if args.output else None
    if output is None:
        sys.stdout.write(text)
    elif output.exists():
        print(f"specbridge import: {output} exists; not overwritten", file=sys.stderr)
        return 2
    else:
        output.write_text(text, encoding="utf-8")
        print(f"wrote {output}", file=sys.stderr)
    return 1 if errors else 0


def _schema(args: argparse.Namespace) -> int:
    from importlib.resources import files

    package, name = (
        ("bot", "repo_config.schema.json") if args.config else ("specs", "spec.schema.json")
    )
    sys.stdout.write(files(package).joinpath(name).read_text(encoding="utf-8"))
    return 0


def _plan(args: argparse.Namespace) -> int:
    from bot.review.checks import local_plan

    try:
        text, valid = local_plan(migrated_settings(), args.repo, args.paths)
    except OSError as error:
        print(f"specbridge: cannot read {error.filename}: {error.strerror}", file=sys.stderr)
        return 2
    print(text)
    return 0 if valid else 1
