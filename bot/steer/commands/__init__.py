"""Comment commands, one module per family (as Prow's plugins): each family
registers its commands in `registry` with where they apply and whether they
change anything; importing this package registers them all."""

from bot.steer.commands import (  # noqa: F401 (they register)
    budget,
    help,
    planning,
    pull_request,
    ticket,
    tracking,
)
from bot.steer.commands.registry import (
    CommandError,
    Context,
    Where,
    available,
    find,
    nearest,
    parse,
    places,
)

__all__ = [
    "CommandError",
    "Context",
    "Where",
    "available",
    "find",
    "nearest",
    "parse",
    "places",
]
