"""Spec files as a commit holds them, kept in the process for a while: a commit never
changes, so a sync's continuations (bot/sync/repository_sync.py, `resume_spec`) read
from here what its first job read from GitHub. Reads count against the same hourly
budget as writes; a paced sync of 200 tasks continues in some ten jobs.

Only what a full commit SHA names is kept (a branch's head moves), up to
`MAX_BYTES` in all, the least recently used going first.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict

from bot.github import RepositoryGateway

MAX_BYTES = 4 * 1024 * 1024
_SHA = re.compile(r"[0-9a-f]{40}")

_kept: OrderedDict[tuple[str, str, str], bytes | None] = OrderedDict()
_size = 0
_lock = threading.Lock()


def read_at_commit(repo: RepositoryGateway, path: str, commit: str) -> bytes | None:
    """The file's bytes at commit, or None when it does not exist there."""
    key = (repo.full_name, commit, path)
    with _lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key]
    text = repo.read_file(path, commit)
    if _SHA.fullmatch(commit):
        _keep(key, text)
    return text


def _keep(key: tuple[str, str, str], text: bytes | None) -> None:
    global _size
    size = len(text or b"")
    if size > MAX_BYTES:
        return
    with _lock:
        if key in _kept:
            return
        _kept[key] = text
        _size += size
        while _size > MAX_BYTES:
            _, dropped = _kept.popitem(last=False)
            _size -= len(dropped or b"")


def forget() -> None:
    """Drop everything kept (tests)."""
    global _size
    with _lock:
        _kept.clear()
        _size = 0
