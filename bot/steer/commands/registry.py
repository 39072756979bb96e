"""The table of comment commands: how a comment is parsed into command lines, and
where each command applies and whether it changes anything."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from sqlalchemy.orm import Session

from bot.github import RepositoryGateway
from bot.steer.steering import Steering
from storage.models import PlanningRun, Repository, Spec, Ticket

_COMMAND_LINE = re.compile(r"^/([a-z][a-z-]*)(?:[ \t]+(.*?))?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)


class Where(Enum):
    TICKET = "ticket"
    TRACKING = "tracking"
    PULL_REQUEST = "pull request"  # an agent's pull request, for its ticket
    ANYWHERE = "anywhere"
    IDEA = "idea"  # an issue a planner writes a spec for, before its first phase merges
    PLANNING = "planning pull request"  # a pull request a planner opened


class CommandError(Exception):
    """The command cannot run as asked; the message is the reply."""


@dataclass
class Context:
    session: Session
    steering: Steering
    repo: RepositoryGateway
    repository: Repository
    issue_number: int
    user: str
    ticket: Ticket | None = None
    spec: Spec | None = None  # the spec whose tracking issue this is
    # The comment is on the pull request an agent opened for `ticket` (issue_number is
    # the pull request's): replies go there.
    on_pull_request: bool = False
    # The idea's newest planning run (on its issue, or on the pull request it opened).
    planning: PlanningRun | None = None

    @property
    def where(self) -> Where:
        if self.planning is not None and self.ticket is None and self.spec is None:
            return Where.PLANNING if self.on_pull_request else Where.IDEA
        if self.on_pull_request:
            return Where.PULL_REQUEST
        if self.ticket is not None:
            return Where.TICKET
        return Where.TRACKING if self.spec is not None else Where.ANYWHERE


@dataclass(frozen=True)
class Command:
    name: str
    where: Where
    changes_things: bool
    usage: str
    summary: str  # what it does, in one line of /help
    run: Callable[[Context, str], str]


REGISTRY: dict[tuple[str, Where], Command] = {}


def command(  # type: ignore[type-arg]
    name: str, where: Where, usage: str, summary: str, changes_things: bool = True
) -> Callable:
    def register(run: Callable[[Context, str], str]) -> Callable[[Context, str], str]:
        REGISTRY[(name, where)] = Command(name, where, changes_things, usage, summary, run)
        return run

    return register


def parse(body: str) -> list[tuple[int, str, str]]:
    """(line number, command, arguments) for each line of the comment starting with `/`.

    Lines in code blocks, quoted lines (`> /approve`) and HTML comments (which
    GitHub does not show: `<!-- /approve -->`) are text, not commands.
    """
    found = []
    fence: str | None = None
    for number, line in enumerate(_without_html_comments(body or "").splitlines(), start=1):
        opening = _FENCE.match(line)
        if opening:
            marker = opening[1]
            fence = None if fence == marker else (fence or marker)
            continue
        if fence is not None:
            continue
        match = _COMMAND_LINE.match(line)
        if match:
            found.append((number, match[1], match[2] or ""))
    return found


def _without_html_comments(body: str) -> str:
    """The body with each HTML comment blanked, its lines kept; an unclosed one hides
    the rest, as GitHub shows it."""
    return _HTML_COMMENT.sub(lambda m: "\n" * m[0].count("\n"), body)


def find(name: str, where: Where) -> Command | None:
    return REGISTRY.get((name, where)) or REGISTRY.get((name, Where.ANYWHERE))


def available(where: Where) -> list[Command]:
    return sorted(
        (c for (_, w), c in REGISTRY.items() if w in (where, Where.ANYWHERE)), key=lambda c: c.name
    )


def places(name: str) -> list[Where]:
    """Where a command of that name works (none: not one of ours)."""
    return [w for (n, w) in REGISTRY if n == name]


def nearest(name: str, where: Where) -> str | None:
    """One of our commands that `name` is probably a typo of, or None (someone else's)."""
    names = sorted({c.name for c in available(where)} | {n for n, _ in REGISTRY})
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
    return close[0] if close else None


__all__ = ["Command", "CommandError", "Context", "Where", "command", "find", "parse"]
