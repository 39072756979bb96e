"""Why a command ended badly, in words a person can act on: `claude: not found` rather
than `exit status 127`. Read from the command's own last words (its output is
hostile input: only ever quoted, cut short, never acted on)."""

from __future__ import annotations

import json
import re

# A shell's words for a program it cannot find (dash, bash, busybox, zsh), and for one
# it may not run: `/bin/sh: 1: claude: not found`, `bash: line 1: codex: command not
# found`, `sh: ./agent: Permission denied`.
NOT_FOUND = re.compile(r"(?:^|:\s)([^\s:][^:]*?):\s+(?:command\s+)?not\s+found\s*$", re.IGNORECASE)
NO_SUCH_FILE = re.compile(r"(?:execvp\s+)?([^\s:]+):\s+No such file or directory\s*$")
DENIED = re.compile(r"(?:^|:\s)([^\s:][^:]*?):\s+Permission denied\s*$", re.IGNORECASE)
# The shell's statuses for "could not find it" and "could not run it".
COMMAND_NOT_FOUND = 127
COMMAND_NOT_RUNNABLE = 126
MAX_QUOTED = 200


def exit_reason(what: str, exit_code: int | None, output: str) -> str:
    """The reason a command (`what`: "command", "test command") failed with this status."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if exit_code == COMMAND_NOT_FOUND:
        missing = _last_match(lines, NOT_FOUND) or _last_match(lines, NO_SUCH_FILE)
        if missing:
            return (
                f"{missing}: not found (the {what} exited with status 127: the program is "
                "not installed on the worker, or not on the PATH its sandbox sees)"
            )
    if exit_code == COMMAND_NOT_RUNNABLE:
        denied = _last_match(lines, DENIED)
        if denied:
            return f"{denied}: permission denied (the {what} exited with status 126)"
    said = _last_words(lines)
    status = f"the {what} exited with status {exit_code}"
    return f"{status}: {said}" if said else status


def _last_match(lines: list[str], pattern: re.Pattern[str]) -> str | None:
    for line in reversed(lines):
        found = pattern.search(line)
        if found:
            return _cut(found[1].strip())
    return None


def _last_words(lines: list[str]) -> str:
    """The command's last line; a JSON line (an agent CLI's result) by its message."""
    if not lines:
        return ""
    last = lines[-1]
    try:
        data = json.loads(last)
    except ValueError:
        return _cut(last)
    if isinstance(data, dict):
        for key in ("error", "result", "message"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message")
            if isinstance(value, str) and value.strip():
                return _cut(value.strip())
    return _cut(last)


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 1] + "…"
