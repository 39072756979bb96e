"""Reading what an agent left in its tree, as hostile input.

The bot reads the tree after the agent (what to commit) and, on a revision,
files an earlier agent pushed (the repository's instructions). Every read here
walks the path one folder at a time without following a symbolic link, opens
nothing that is not a regular file (a FIFO would block, a device would never
end), and reads no more than it was asked for.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# git's own files, which git opens wherever they are in the tree: one that is not a
# regular file would hang it (a FIFO) or feed it without end (a device).
GIT_PATTERN_FILES = {".gitignore", ".gitattributes", ".gitmodules"}
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class Unsafe(Exception):
    """What the agent left cannot be taken as it is; the message says where and why."""


@dataclass(frozen=True)
class Found:
    """What the tree holds that git must not meet: repositories nested in it, and git's
    own files that are not regular files."""

    nested_repositories: tuple[str, ...]  # their `.git`, whatever its case or kind
    odd_git_files: tuple[str, ...]


def read_text(root: Path, relative: str, limit: int) -> str | None:
    """The first `limit` bytes of a regular file inside `root`, as text; None when it is
    not there, or not a regular file, or reached through a symbolic link."""
    try:
        with _open_inside(root, relative) as fd:
            return _read(fd, limit).decode(errors="replace")
    except (OSError, Unsafe):
        return None


def lstat_inside(root: Path, relative: str) -> os.stat_result | None:
    """lstat of a path inside `root`, its folders walked without following links; None
    when it is not there (or a folder on the way is a link)."""
    parts = PurePosixPath(relative).parts
    if not parts or any(part in ("..", "/") for part in parts):
        return None
    try:
        with _folder(root, parts[:-1]) as folder:
            return os.lstat(parts[-1], dir_fd=folder)
    except OSError:
        return None


def survey(root: Path) -> Found:
    """Walk the whole tree (never into a link, nor the agent's own `.git` at its top)."""
    nested: list[str] = []
    odd: list[str] = []
    for relative, entry in _walk(root):
        name = entry.name
        if name.lower() == ".git":
            nested.append(relative)
        elif name in GIT_PATTERN_FILES and _special(entry):
            odd.append(relative)
    return Found(tuple(sorted(nested)), tuple(sorted(odd)))


def _walk(root: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    todo = [("", root)]
    while todo:
        prefix, folder = todo.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # unreadable: git will say so, for what it needs
        for entry in entries:
            relative = f"{prefix}{entry.name}"
            if not prefix and entry.name == ".git":
                continue  # the agent's own repository, which the bot never reads
            yield relative, entry
            if entry.is_dir(follow_symlinks=False) and entry.name.lower() != ".git":
                todo.append((relative + "/", Path(entry.path)))


def _special(entry: os.DirEntry[str]) -> bool:
    """A FIFO, socket or device (git does not follow links to its own files)."""
    try:
        mode = entry.stat(follow_symlinks=False).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode))


@contextlib.contextmanager
def _folder(root: Path, parts: tuple[str, ...]) -> Iterator[int]:
    fd = os.open(root, _DIRECTORY)
    try:
        for part in parts:
            if part in ("", ".", ".."):
                raise Unsafe(f"{part!r} in a path")
            inner = os.open(part, _DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def _open_inside(root: Path, relative: str) -> Iterator[int]:
    parts = PurePosixPath(relative).parts
    if not parts:
        raise Unsafe("an empty path")
    with _folder(root, parts[:-1]) as folder:
        fd = os.open(parts[-1], _FILE, dir_fd=folder)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise Unsafe(f"{relative} is not a regular file")
            yield fd
        finally:
            os.close(fd)


def _read(fd: int, limit: int) -> bytes:
    os.set_blocking(fd, True)
    chunks = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
