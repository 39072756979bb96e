"""A task added to, or removed from, a spec's tasks file in the file's own format, and
nothing else of the file touched: a task entry with a fresh id in a YAML file's
`tasks:`, a `- [ ] T0NN title` line at the end of a spec-kit tasks.md, a
`- [ ] N. title` item at the end of a Kiro tasks.md. What people propose from GitHub
(bot/sync/proposals.py) becomes a pull request of this edit."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

import yaml

from specs.importers.markdown import (
    is_task_line,
    lines_of,
    lines_with_ends,
    readable_lines,
    unclosed_fence,
)
from specs.sources import _import, format_of


class CannotPropose(ValueError):
    """The file cannot take the change as written; the message says why, in one line."""


@dataclass(frozen=True)
class Added:
    text: str
    task_id: str
    line: str  # the task as the file now says it (its first line)


_NUMBERED = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)$")


def add_task(spec_path: str, text: str, title: str, note: str | None = None) -> Added:
    """The tasks file with a new task titled `title` at the end of its tasks; `note`
    (a line such as "Proposed in #42.") as its description where the format has one."""
    title = " ".join(title.split())
    if not title:
        raise CannotPropose("a task needs a title")
    fmt = format_of(spec_path)
    if fmt == "yaml":
        return _yaml_add(text, title, note)
    places = _tasks(spec_path, text)
    if places and lines_of(text)[max(n for _, n in places.values()) - 1].lstrip().startswith("|"):
        raise CannotPropose("its tasks are the rows of a table; add the row by hand")
    if fmt == "spec-kit":
        return _spec_kit_add(spec_path, text, title)
    return _kiro_add(spec_path, text, title, note)


def remove_task(spec_path: str, text: str, task_id: str) -> str:
    """The tasks file without the task `task_id` (and, in YAML, without dependencies on it)."""
    fmt = format_of(spec_path)
    if fmt == "yaml":
        return _yaml_remove(text, task_id)
    place = _tasks(spec_path, text).get(f"task:{task_id}")
    if place is None:
        raise CannotPropose(f"{task_id} is not a task of the file")
    lines = lines_with_ends(text)
    start = place[1] - 1
    end = start + 1
    if heading := re.match(r"^(#{1,6})\s", lines[start]):  # a task written as a heading
        level = len(heading[1])
        while end < len(lines) and not re.match(rf"^#{{1,{level}}}\s", lines[end]):
            end += 1
        del lines[start:end]
        return "".join(lines)
    if fmt == "kiro":  # its detail bullets go with it, its sub-tasks do not
        indent = len(lines[start]) - len(lines[start].lstrip())
        while end < len(lines) and _detail_of(lines[end], indent):
            end += 1
    del lines[start:end]
    return "".join(lines)


# -- spec-kit and Kiro ----------------------------------------------------------------


def _tasks(spec_path: str, text: str) -> dict[str, tuple[str, int]]:
    imported = _import(format_of(spec_path), {"tasks.md": text}, PurePosixPath(spec_path).name)
    return {k: v for k, v in imported.where.items() if k.startswith("task:")}


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _insert_after(text: str, index: int | None, new_lines: list[str]) -> str:
    """new_lines after line `index` (0-based; None: at the end of the file, before a
    code block left open there, which would hold them)."""
    newline = _newline(text)
    lines = lines_with_ends(text)
    if index is None:
        opened = unclosed_fence(text)
        index = len(lines) - 1 if opened is None else opened - 1
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += newline
    block = [line + newline for line in new_lines]
    return "".join([*lines[: index + 1], *block, *lines[index + 1 :]])


def _spec_kit_add(spec_path: str, text: str, title: str) -> Added:
    places = _tasks(spec_path, text)
    numbers = [m[1] for key in places if (m := re.fullmatch(r"task:T(\d+)", key))]
    width = max([len(n) for n in numbers] + [3])
    task_id = f"T{max([int(n) for n in numbers] + [0]) + 1:0{width}d}"
    while f"task:{task_id}" in places:  # T012 free as a number, taken as T012 of another kind
        task_id = f"T{int(task_id[1:]) + 1:0{width}d}"
    index = _end_of_last_task(text, places)
    line = f"- [ ] {task_id} {title}"
    if heading := _last_heading_task(text, places):  # written as its tasks are: a heading
        line = f"{heading[0]} {heading[1]}{task_id}{heading[2]}{title}"
        return Added(_insert_after(text, index, ["", line]), task_id, line)
    return Added(_insert_after(text, index, [line]), task_id, line)


def _kiro_add(spec_path: str, text: str, title: str, note: str | None) -> Added:
    places = _tasks(spec_path, text)
    tops = [int(m[1]) for key in places if (m := re.match(r"task:TASK-(\d+)", key))]
    number = max([*tops, 0]) + 1
    lines = lines_of(text)
    index = _end_of_last_task(text, places)
    line = f"- [ ] {number}. {title}"
    if heading := _last_heading_task(text, places):  # written as its tasks are: a heading
        after = heading[2] if heading[2].startswith(".") else f".{heading[2]}"
        line = f"{heading[0]} {heading[1]}{number}{after}{title}"
        block = ["", line] + ([f"- {note}"] if note else [])
        return Added(_insert_after(text, index, block), f"TASK-{number}", line)
    block = [line] + ([f"  - {note}"] if note else [])
    if index is not None and lines[index].strip() and re.search(r"\n\s*\n- \[", text):
        block = ["", *block]  # its tasks are a blank line apart
    return Added(_insert_after(text, index, block), f"TASK-{number}", line)


_HEADING_TASK = re.compile(
    r"^(#{1,6})\s+(\W*(?:Task\s+)?)[A-Z]*[\d.]+[a-z]?(\s*[:.\-\u2013\u2014]?\s*)"
)


def _last_heading_task(
    text: str, places: dict[str, tuple[str, int]]
) -> tuple[str, str, str] | None:
    """(its #s, what precedes the id, what follows it) when the last task is a heading."""
    if not places:
        return None
    line = lines_of(text)[max(n for _, n in places.values()) - 1]
    match = re.match(
        r"^(#{1,6})\s+(\W*(?:Task\s+)?)[A-Z]*[\d.]+[a-z]?(\s*[:.\-\u2013\u2014]?\s*)", line
    )
    return (match[1], match[2], match[3] or " ") if match else None


def _end_of_last_task(text: str, places: dict[str, tuple[str, int]]) -> int | None:
    """The index of the last line of the last task: its line and the lines below that
    belong to it (indented deeper; for a task written as a heading, its section)."""
    if not places:
        return None
    lines = lines_of(text)
    index = max(line for _, line in places.values()) - 1
    if heading := re.match(r"^(#{1,6})\s", lines[index]):
        level, end = len(heading[1]), index
        opened = unclosed_fence(text)  # a code block left open runs to the end: not the task's
        last = len(lines) - 1 if opened is None or opened <= index else opened - 1
        readable = readable_lines(text)  # a `#` line in a code block is no heading
        while end < last and not re.match(rf"^#{{1,{level}}}\s", readable[end + 1]):
            end += 1
        while end > index and not lines[end].strip():
            end -= 1
        return end
    indent = len(lines[index]) - len(lines[index].lstrip())
    while index + 1 < len(lines) and _detail_of(lines[index + 1], indent):
        index += 1
    return index


def _detail_of(line: str, indent: int) -> bool:
    """Whether a line belongs to the task above it (indented deeper, not a task itself)."""
    if not line.strip() or is_task_line(line):
        return False
    return len(line) - len(line.lstrip()) > indent


# -- YAML -----------------------------------------------------------------------------


def _yaml_tasks(text: str) -> yaml.SequenceNode:
    try:
        top = yaml.compose(text)
    except yaml.YAMLError as error:
        raise CannotPropose(f"the file is not valid YAML ({error.__class__.__name__})") from None
    if not isinstance(top, yaml.MappingNode):
        raise CannotPropose("the file is not a spec")
    tasks = next((v for k, v in top.value if getattr(k, "value", None) == "tasks"), None)
    if not isinstance(tasks, yaml.SequenceNode) or not tasks.value:
        raise CannotPropose("the file has no list of tasks to add to")
    if tasks.flow_style:
        raise CannotPropose("its tasks are one flow list ([...]); add the task by hand")
    return tasks


def _entry(node: yaml.Node, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next(((k, v) for k, v in node.value if getattr(k, "value", None) == key), None)


def _task_id(node: yaml.Node) -> str | None:
    found = _entry(node, "id")
    return found[1].value if found and isinstance(found[1], yaml.ScalarNode) else None


def _last_line(node: yaml.Node) -> int:
    """The last line (0-based) holding anything of the node."""
    end = node.end_mark
    last = end.line if end.column > 0 else end.line - 1
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and not node.flow_style:
        children = (
            [c for pair in node.value for c in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
        )
        if children:
            return max(_last_line(child) for child in children)
    return max(last, node.start_mark.line)


def _fresh_id(ids: list[str], title: str) -> str:
    numbered = [m for m in map(_NUMBERED.match, ids) if m]
    if numbered:
        prefix = numbered[-1]["prefix"]  # the last task's style: TSK-7 → TSK-8
        same = [m for m in numbered if m["prefix"] == prefix]
        width = len(same[-1]["number"])
        candidate = max(int(m["number"]) for m in same) + 1
        while f"{prefix}{candidate:0{width}d}" in ids:
            candidate += 1
        return f"{prefix}{candidate:0{width}d}"
    base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40].strip("-") or "task"
    fresh, n = base, 2
    while fresh in ids:
        fresh, n = f"{base}-{n}", n + 1
    return fresh


def _yaml_add(text: str, title: str, note: str | None) -> Added:
    tasks = _yaml_tasks(text)
    ids = [i for i in map(_task_id, tasks.value) if i is not None]
    task_id = _fresh_id(ids, title)
    last = tasks.value[-1]
    lines = text.splitlines()
    dash = lines[last.start_mark.line].index("-", 0, max(last.start_mark.column, 1))
    quoted = json.dumps(title, ensure_ascii=False)
    if isinstance(last, yaml.MappingNode) and last.flow_style:
        extra = f", description: {json.dumps(note, ensure_ascii=False)}" if note else ""
        block = [f"{' ' * dash}- {{id: {task_id}, title: {quoted}{extra}}}"]
    else:
        key = " " * (last.start_mark.column if isinstance(last, yaml.MappingNode) else dash + 2)
        block = [f"{' ' * dash}- id: {task_id}", f"{key}title: {quoted}"]
        if note:
            block.append(f"{key}description: {json.dumps(note, ensure_ascii=False)}")
    return Added(_insert_after(text, _last_line(last), block), task_id, block[0].strip())


def _yaml_remove(text: str, task_id: str) -> str:
    tasks = _yaml_tasks(text)
    found = next((t for t in tasks.value if _task_id(t) == task_id), None)
    if found is None:
        raise CannotPropose(f"{task_id} is not a task of the file")
    lines = text.splitlines(keepends=True)
    drop = set(range(found.start_mark.line, _last_line(found) + 1))
    edits: dict[int, str] = {}
    for task in tasks.value:
        if task is found:
            continue
        depends = _entry(task, "depends_on")
        if depends is None or not isinstance(depends[1], yaml.SequenceNode):
            continue
        sequence = depends[1]
        items = [i for i in sequence.value if isinstance(i, yaml.ScalarNode)]
        if task_id not in [i.value for i in items]:
            continue
        if not sequence.flow_style:
            drop |= {i.start_mark.line for i in items if i.value == task_id}
            if all(i.value == task_id for i in items):
                key = depends[0]
                line = lines[key.start_mark.line]
                edits[key.start_mark.line] = line[: key.end_mark.column] + ": []" + _eol(line)
            continue
        if sequence.start_mark.line != sequence.end_mark.line:
            raise CannotPropose(f"{_task_id(task)} depends on {task_id} over several lines")
        line = edits.get(sequence.start_mark.line, lines[sequence.start_mark.line])
        kept = ", ".join(i.value for i in items if i.value != task_id)
        start, end = sequence.start_mark.column, sequence.end_mark.column
        edits[sequence.start_mark.line] = line[:start] + f"[{kept}]" + line[end:]
    for index, line in edits.items():
        lines[index] = line
    return "".join(line for index, line in enumerate(lines) if index not in drop)


def _eol(line: str) -> str:
    return line[len(line.rstrip("\r\n")) :]
