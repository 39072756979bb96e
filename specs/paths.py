"""The files a task touches: paths as a task line writes them, and whether two sets of
globs can name the same file.

A task's `files:` are globs from the repository's root (`src/api/*.py`, `docs/**`);
a plain path names that file, or everything below it when it is a folder. Two sets
overlap when some path could match a glob of each. The answer errs on the side of
"overlap": two tasks wrongly held apart run one after the other, two wrongly let
together edit the same file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from fnmatch import fnmatchcase

# A path as written in a task line: `src/models/user.py`, src/api/, tests/**/test_*.py.
_PATH = re.compile(
    r"(?<![\w/.*?\[\]-])"
    r"((?:[\w.*?\[\]-]+/)+[\w.*?\[\]-]*|[\w*?-][\w.*?-]*\.[A-Za-z]\w{0,7})"
    r"(?![\w/])"
)
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.I)
# Files of these kinds, named without a folder (`README.md`), read as paths; another
# dotted word (`e.g.`, `v1.2`, `Node.js`) is not one.
_EXTENSIONS = frozenset(
    [
        "py",
        "pyi",
        "js",
        "jsx",
        "ts",
        "tsx",
        "mjs",
        "cjs",
        "go",
        "rs",
        "java",
        "kt",
        "kts",
        "scala",
        "rb",
        "php",
        "cs",
        "c",
        "h",
        "cc",
        "cpp",
        "hpp",
        "swift",
        "m",
        "sh",
        "bash",
        "sql",
        "md",
        "rst",
        "txt",
        "json",
        "yaml",
        "yml",
        "toml",
        "ini",
        "cfg",
        "conf",
        "html",
        "htm",
        "css",
        "scss",
        "vue",
        "svelte",
        "proto",
        "graphql",
        "xml",
        "csv",
        "lock",
        "gradle",
        "tf",
        "dart",
        "ex",
        "exs",
        "erl",
        "hs",
        "ml",
        "clj",
        "lua",
        "r",
    ]
)
_WILDCARDS = frozenset("*?[")


def paths_in(text: str) -> tuple[str, ...]:
    """The repository paths a task's text names, in order, once each."""
    found: list[str] = []
    for match in _PATH.finditer(_URL.sub(" ", text)):
        path = match.group(1).rstrip(".")
        if "/" not in path:
            suffix = path.rsplit(".", 1)[-1]
            if suffix.lower() not in _EXTENSIONS or (path[0].isupper() and suffix == "js"):
                continue
        path = path.removeprefix("./")
        if path and ".." not in path.split("/") and path not in found:
            found.append(path)
    return tuple(found)


def overlap(first: Iterable[str], second: Iterable[str]) -> bool:
    """Whether a file could be named by a glob of each set."""
    others = [_segments(glob) for glob in second]
    return any(_could_meet(_segments(glob), other) for glob in first for other in others)


def _segments(glob: str) -> tuple[str, ...]:
    """A glob as path segments; a path without wildcards also names what is below it."""
    parts = tuple(p for p in glob.strip().strip("/").split("/") if p not in ("", "."))
    if glob.rstrip().endswith("/") or not any(c in _WILDCARDS for c in glob):
        parts += ("**",)
    return parts


def _could_meet(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether some path matches both segment patterns (`**`: any number of segments)."""
    if not a or not b:
        return all(p == "**" for p in a) and all(p == "**" for p in b)
    if a[0] == "**":
        return _could_meet(a[1:], b) or _could_meet(a, b[1:])
    if b[0] == "**":
        return _could_meet(a, b[1:]) or _could_meet(a[1:], b)
    return _segment_could_meet(a[0], b[0]) and _could_meet(a[1:], b[1:])


def _segment_could_meet(a: str, b: str) -> bool:
    """Whether one file name could match both patterns: exact for a name without
    wildcards; else their fixed starts and ends must agree (an overestimate)."""
    a_wild, b_wild = _is_wild(a), _is_wild(b)
    if not a_wild or not b_wild:
        return fnmatchcase(a, b) if not a_wild else fnmatchcase(b, a)
    a_head, b_head = _fixed_head(a), _fixed_head(b)
    a_tail, b_tail = _fixed_head(a[::-1]), _fixed_head(b[::-1])
    heads_agree = a_head.startswith(b_head) or b_head.startswith(a_head)
    tails_agree = a_tail.startswith(b_tail) or b_tail.startswith(a_tail)
    return heads_agree and tails_agree


def _is_wild(segment: str) -> bool:
    return any(c in _WILDCARDS for c in segment)


def _fixed_head(pattern: str) -> str:
    """The characters before the first wildcard (`[`/`]` count as one, either way)."""
    return re.split(r"[*?\[\]]", pattern, maxsplit=1)[0]
