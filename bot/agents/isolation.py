"""Keeping the bot's secrets out of an agent's reach."""

from __future__ import annotations

import sys


def hide_environment_from_children() -> None:
    """Make /proc/<pid>/environ of this process (and its forks) unreadable to agents.

    Agent commands run with a clean environment, but as the same user they
    could read a parent's environment, and with it the bot's secrets, through
    /proc. A process that is not dumpable has its /proc files owned by root
    (run the bot as a user other than root for this to hold).
    """
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_dumpable = 4
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_dumpable, 0, 0, 0, 0)
