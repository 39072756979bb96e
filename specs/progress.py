"""A task's progress written into its file, and nothing else of the file touched:
`- [ ]` ↔ `- [x]` on its line of tasks.md (spec-kit, Kiro), or `done: true` in its
YAML mapping. The lines are found as the spec is read (the importers' positions,
the YAML nodes' marks), so the edit lands where the reading found the task."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath

import yaml

from specs.importers.markdown import lines_with_ends
from specs.sources import _import, format_of

# As specs/importers/markdown.py reads them: `-`, `*`, `+` or `1.` bullets, `\[ \]` escaped.
_CHECKBOX = re.compile(r"^(\s*(?:[-*+]|\d+[.)])\s+\\?\[)( |x|X|-|~)(\\?\])")
_TRUE = {"true", "yes", "on", "y"}


def mark_done(spec_path: str, text: str, done: Mapping[str, bool]) -> str:
    """The text of the spec's tasks file (tasks.md, or the YAML file) with each task of
    `done` marked done or not; tasks already so, and tasks it does not have, as they are."""
    fmt = format_of(spec_path)
    if fmt == "yaml":
        return _yaml(text, done)
    imported = _import(fmt, {"tasks.md": text}, PurePosixPath(spec_path).name)
    lines = lines_with_ends(text)
    for task_id, wanted in done.items():
        place = imported.where.get(f"task:{task_id}")
        if place is None:
            continue
        index = place[1] - 1
        match = _CHECKBOX.match(lines[index])
        if match is None:
            continue
        ticked = match[2] in "xX"
        if ticked != wanted:
            mark = "x" if wanted else " "
            lines[index] = lines[index][: match.start(2)] + mark + lines[index][match.end(2) :]
    return "".join(lines)


def _yaml(text: str, done: Mapping[str, bool]) -> str:
    """`done: true` added (or set) where wanted; removed (or set false) where not."""
    try:
        top = yaml.compose(text)
    except yaml.YAMLError:
        return text
    tasks = _entry(top, "tasks")
    if not isinstance(tasks, yaml.SequenceNode):
        return text
    lines = text.splitlines(keepends=True)
    edits: list[tuple[int, str, int, int, str]] = []  # (line index, kind, start, end, word)
    for item in tasks.value:
        if not isinstance(item, yaml.MappingNode):
            continue
        keys = {k.value: (k, v) for k, v in item.value if isinstance(k, yaml.ScalarNode)}
        task_id = keys.get("id", (None, None))[1]
        if not isinstance(task_id, yaml.ScalarNode) or task_id.value not in done:
            continue
        wanted = done[task_id.value]
        if "done" in keys:
            key, value = keys["done"]
            now = isinstance(value, yaml.ScalarNode) and value.value.lower() in _TRUE
            if now == wanted or value.start_mark.line != value.end_mark.line:
                continue
            if not wanted and _alone(lines[key.start_mark.line], key.start_mark.column):
                edits.append((key.start_mark.line, "drop", 0, 0, ""))
            else:
                word = "true" if wanted else "false"
                span = (value.start_mark.column, value.end_mark.column)
                edits.append((value.start_mark.line, "set", *span, word))
        elif wanted and item.flow_style:
            end = item.end_mark  # just after the closing brace
            edits.append((end.line, "insert", end.column - 1, 0, ", done: true"))
        elif wanted:
            id_key = keys["id"][0]
            edits.append((id_key.start_mark.line, "after", id_key.start_mark.column, 0, ""))
    for index, kind, start, end, word in sorted(edits, reverse=True):
        line = lines[index]
        if kind == "drop":
            del lines[index]
        elif kind == "set":
            lines[index] = line[:start] + word + line[end:]
        elif kind == "insert":
            lines[index] = line[:start] + word + line[start:]
        else:
            newline = "\r\n" if line.endswith("\r\n") else "\n"
            if not line.endswith("\n"):
                lines[index] = line + newline
            lines.insert(index + 1, " " * start + "done: true" + newline)
    return "".join(lines)


def _alone(line: str, column: int) -> bool:
    """Whether the key at column is all its line holds (a block mapping's own line)."""
    rest = line[column:].strip()
    return not line[:column].strip() and bool(re.match(r"^done:\s*\S+\s*(#.*)?$", rest))


def _entry(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((v for k, v in node.value if getattr(k, "value", None) == key), None)
