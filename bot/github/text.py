"""Text as GitHub shows it: what makes a mention, and how long a title or body may be.

Shared by what specbridge writes from a spec (bot/sync/render.py) and what it
posts of an agent's run (bot/agents/run.py).
"""

from __future__ import annotations

import re

# GitHub refuses longer titles and bodies (issues, pull requests, comments).
MAX_TITLE = 256
MAX_BODY = 65_536

# An @ that would notify someone: not inside a word (emails) and before a login.
_MENTION = re.compile(r"(?<![\w`@/])@(?=[A-Za-z0-9])")


def shown(text: str) -> str:
    """Text written by others, as shown on GitHub: mentions (@user, @org/team) escaped as
    GitHub's own bots do, so that nobody is notified."""
    return _MENTION.sub("@&#8203;", text)


def cut(text: str, length: int, note: str = "…") -> str:
    """`text`, or its start and `note` within `length` characters."""
    if len(text) <= length:
        return text
    return text[: max(0, length - len(note))] + note
