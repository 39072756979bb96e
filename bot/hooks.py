"""What a lower stage tells a higher one without importing it.

An agent run (bot/agents/) moves its ticket's phase; the tracking issue that shows
it is written by bot/sync/, a stage above. The higher stage registers a hook when
it is imported (every process that runs jobs imports it), the lower one calls
`ticket_changed`; nothing is imported upwards (tests/unit/test_layers.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.settings import Settings

log = logging.getLogger(__name__)

TicketHook = Callable[[Settings, Any], None]
_ticket_hooks: list[TicketHook] = []


def on_ticket_changed(hook: TicketHook) -> TicketHook:
    """Call `hook(settings, ticket)` whenever a ticket's phase or block changed (once)."""
    if hook not in _ticket_hooks:
        _ticket_hooks.append(hook)
    return hook


def ticket_changed(settings: Settings, ticket: Any) -> None:
    """A ticket's phase or block changed, and is committed: whoever shows it, show it."""
    for hook in _ticket_hooks:
        try:
            hook(settings, ticket)
        except Exception:  # showing a change never undoes or fails the change itself
            log.warning("a hook on a ticket's change failed", exc_info=True)
