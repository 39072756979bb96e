"""`specbridge report`: what agents cost and delivered, per profile and model."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from bot.cli.problems import migrated_settings, repo_name


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """report."""
    report = commands.add_parser(
        "report",
        help="what agents cost and delivered: runs, pull requests merged, tokens and USD",
    )
    report.add_argument(
        "--since",
        type=_window,
        default=_window("7d"),
        metavar="WINDOW",
        help="runs queued in this window: 12h, 7d (the default), 2w",
    )
    report.add_argument("--repo", type=repo_name, metavar="OWNER/NAME", help="only this repository")
    report.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="default: table"
    )
    report.set_defaults(run=_report)


def _window(text: str) -> timedelta:
    from bot.agents.outcomes import window

    try:
        return window(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _report(args: argparse.Namespace) -> int:
    from bot.agents.outcomes import outcomes, report
    from storage.db import session_scope

    since = datetime.now(UTC) - args.since
    with session_scope(migrated_settings().database_url) as session:
        found = outcomes(session, since, args.repo)
        print(report(found, args.format))
    return 0
