"""What a lower stage tells a higher one without importing it.

An agent run (bot/agents/) moves its ticket's phase; the tracking issue that shows
it is written by bot/sync/, a stage above. The higher stage registers a hook when
it is imported (every process that runs jobs imports it), the lower one calls
`ticket_changed`; nothing is imported upwards (tests/unit/test_layers.py).

An agent run that pushed to its pull request tells whoever follows the repository's
checks (`agent_pushed`): bot/agents/pull_checks.py queues the run's next runs, and
the run itself cannot import it without a circle.
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


PushHook = Callable[[Settings, int, int], None]
_push_hooks: list[PushHook] = []


def on_agent_pushed(hook: PushHook) -> PushHook:
    """Call `hook(settings, ticket_id, pull_number)` whenever an agent's run pushed."""
    if hook not in _push_hooks:
        _push_hooks.append(hook)
    return hook


def agent_pushed(settings: Settings, ticket_id: int, pull_number: int) -> None:
    """An agent's run pushed its commit to its pull request, and is recorded."""
    for hook in _push_hooks:
        try:
            hook(settings, ticket_id, pull_number)
        except Exception:  # best effort: the checks' own events come too
            log.warning("a hook on an agent's push failed", exc_info=True)


EndHook = Callable[[Settings, int], None]
_end_hooks: list[EndHook] = []


def on_run_ended(hook: EndHook) -> EndHook:
    """Call `hook(settings, task_id)` whenever an agent's run ended (its slot is free)."""
    if hook not in _end_hooks:
        _end_hooks.append(hook)
    return hook


def run_ended(settings: Settings, task_id: int) -> None:
    """An agent's run ended, and its end is committed: a waiting run may take its slot."""
    for hook in _end_hooks:
        try:
            hook(settings, task_id)
        except Exception:  # the chore starts waiting runs within seconds anyway
            log.warning("a hook on an agent run's end failed", exc_info=True)
