"""Keeping the bot's secrets out of an agent's reach."""

from __future__ import annotations

import logging
import os
import pwd
import sys

from bot.settings import Settings

log = logging.getLogger(__name__)


def agent_account(settings: Settings) -> tuple[int, int] | None:
    """The (uid, gid) agents run as: another account than root's, always.

    A bot running as root runs its agents as SPECBRIDGE_AGENT_USER ("nobody"
    unless set): an agent then cannot read the bot's memory, environment, or
    files. A bot running as another user runs them as itself (and is not
    dumpable, see below).
    """
    if os.geteuid() != 0:
        return None
    account = pwd.getpwnam(settings.agent_user or "nobody")
    return account.pw_uid, account.pw_gid


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
