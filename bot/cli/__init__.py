"""The `specbridge` command: one entry point, its subcommands in one module per
family (running it, a repository's work, spec files).

An expected problem (a setting, the database, Redis, GitHub, a repository the
App cannot reach) ends the command with one line on stderr and exit status 2;
only a bug shows a traceback (bot/cli/problems.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from bot import __version__
from bot.cli import report, repositories, service, spec_files
from bot.cli.problems import CommandError, expected_problem

__all__ = ["CommandError", "expected_problem", "main"]

FAMILIES = (service, repositories, spec_files, report)


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
    for family in FAMILIES:
        family.add_commands(commands)
    return parser
