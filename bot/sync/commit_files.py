"""What a sync read for a commit, kept in the process for its continuations
(bot/sync/repository_sync.py, `resume_spec`), which then do not read it again: reads
count against the same hourly budget as writes, and a paced sync of 200 tasks
continues in some ten jobs.

Spec files: a commit never changes, so only what a full commit SHA names is kept (a
branch's head moves), up to `MAX_BYTES` in all, the least recently used going first.
The board and the repository's label ids (`carried`): what the sync's first job found,
for `CARRIED_SECONDS` (people seldom change a board's columns or delete a label in the
minutes a sync takes; a write they make fail is refused and repaired by the next sync).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from bot.github import RepositoryGateway

MAX_BYTES = 4 * 1024 * 1024
CARRIED_SECONDS = 900
CARRIED_MOST = 64
Read = TypeVar("Read")
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


_carried: OrderedDict[tuple[str, str, str], tuple[float, Any]] = OrderedDict()


def carried(
    full_name: str, commit: str | None, what: str, read: Callable[[], Read], again: bool
) -> Read:
    """`read()`'s answer, kept for the sync's continuations; in one (`again`), what an
    earlier job of the sync kept within CARRIED_SECONDS, if any."""
    found = kept(full_name, commit, what) if again else None
    if found is not None:
        return found  # type: ignore[no-any-return]
    value = read()
    carry(full_name, commit, what, value)
    return value


def kept(full_name: str, commit: str | None, what: str) -> Any | None:
    """What an earlier job of the sync of this commit kept, within CARRIED_SECONDS."""
    with _lock:
        found = _carried.get((full_name, commit or "", what))
    if found is None or time.monotonic() - found[0] >= CARRIED_SECONDS:
        return None
    return found[1]


def carry(full_name: str, commit: str | None, what: str, value: Any) -> None:
    """Keep `value` for this sync's continuations (what it learnt since it read)."""
    if not commit:
        return
    with _lock:
        _carried[(full_name, commit, what)] = (time.monotonic(), value)
        _carried.move_to_end((full_name, commit, what))
        while len(_carried) > CARRIED_MOST:
            _carried.popitem(last=False)


def forget() -> None:
    """Drop everything kept (tests)."""
    global _size
    with _lock:
        _kept.clear()
        _carried.clear()
        _size = 0
