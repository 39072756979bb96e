"""Kiro: a spec directory `.kiro/specs/<name>/` with requirements.md (user stories and
numbered EARS acceptance criteria), design.md and tasks.md (a numbered checkbox
implementation plan), as Kiro's documentation describes them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from specs.importers import Imported, Note, build_spec, drop_unknown_references, slug
from specs.importers.markdown import (
    Checklist,
    Entry,
    fit_title,
    read_checklist,
    readable_lines,
    task_id_of,
    tell_unread,
)
from specs.paths import paths_in

FILES = ("requirements.md", "design.md", "tasks.md")

_REQUIREMENT = re.compile(
    r"^#{2,4}\s+Requirement\s+(\d+)\s*(?:[:.\-\u2013\u2014]\s*(.*?))?\s*$", re.I
)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_USER_STORY = re.compile(r"^\*\*User Story:?\*\*:?\s*(.+?)\s*$")
# `1. WHEN …`, also `- 1. WHEN …` and unnumbered `- WHEN …` (numbered by position)
_CRITERION = re.compile(
    r"^(?P<indent>\s*)(?:(?:[-*]\s+)?(?P<number>\d+)[.)]|[-*])\s+(?P<text>.+?)\s*$"
)
_CRITERIA_LINE = re.compile(r"^\*\*Acceptance Criteria:?\*\*:?$", re.I)
_BULLET = re.compile(r"^[-*+]\s+(.*)$")
# `_Requirements: 1.2, 3.1_`, `**Requirements**: 1.2`, `**Validates: Requirements 1.2**`
_REFERENCES = re.compile(
    r"^[_*\s]*(?:(?:Validates|Covers|Implements)\s*:?\s*[_*]*\s*Requirements?"
    r"|Requirements?\s*[_*]*\s*:)[_*]*\s*:?\s*(?P<refs>.*?)[_*\s]*$",
    re.I,
)
_REFERENCE = re.compile(
    r"(?<![\w.])(?P<first>\d+(?:\.\d+)*)(?:\s*(?:[-\u2013\u2014]|to)\s*(?P<last>\d+(?:\.\d+)*))?(?![\w])"
)
_ALL = re.compile(r"^all\b", re.I)
_STEP = re.compile(r"^\[[ x]\] ")  # a step of the task, ticked or not


def import_kiro(files: Mapping[str, str], name: str) -> Imported:
    """A spec from the Kiro spec directory `.kiro/specs/<name>/`."""
    unmapped: list[str] = []
    where: dict[str, tuple[str, int]] = {}
    context, requirements = _read_requirements(files.get("requirements.md", ""), unmapped, where)
    tasks = []
    if "tasks.md" in files:
        requirement_ids = {r["id"] for r in requirements}
        tasks = _read_tasks(files["tasks.md"], requirement_ids, unmapped, where)
    if "design.md" in files:
        where["design"] = ("design.md", 1)
    if reader_intro := where.get("introduction"):
        where.setdefault("context", reader_intro)
    spec = build_spec(
        slug(name),
        name.replace("-", " ").replace("_", " ").strip().capitalize(),
        context=context,
        requirements=requirements,
        design=_without_title(files.get("design.md", "")),
        tasks=tasks,
    )
    return Imported(spec, unmapped, where)


def _read_requirements(
    text: str, unmapped: list[str], where: dict[str, tuple[str, int]]
) -> tuple[str, list[dict[str, Any]]]:
    reader = _Requirements(unmapped, where)
    for line_number, line in enumerate(readable_lines(text), start=1):
        reader.read(line_number, line)
    for requirement in reader.requirements:
        requirement.pop("story", None)
    return "\n".join(reader.introduction).strip(), reader.requirements


class _Requirements:
    """requirements.md line by line: `### Requirement N` with its `**User Story:**` and
    its numbered `#### Acceptance Criteria`, each of which may run over several lines."""

    def __init__(self, unmapped: list[str], where: dict[str, tuple[str, int]]) -> None:
        self.unmapped, self.where = unmapped, where
        self.introduction: list[str] = []
        self.requirements: list[dict[str, Any]] = []
        self.section = ""
        self.current: dict[str, Any] | None = None
        self.told: set[int] = set()  # the "other" sections already said to be not mapped
        self.other_at = 0
        self.continued: dict[str, Any] | None = None  # the text a wrapped line continues
        self.list_indent: int | None = None

    def read(self, number: int, line: str) -> None:
        if not line.strip():
            self.continued = None
            if self.section == "introduction":
                self.introduction.append("")
            return
        if heading := _HEADING.match(line):
            self.heading(number, len(heading.group(1)), heading.group(2), line)
        elif self.section == "introduction":
            self.introduction.append(line)
        elif self.current is not None:
            self.body(number, line)

    def heading(self, number: int, level: int, text: str, line: str) -> None:
        self.continued = None
        if match := _REQUIREMENT.match(line):
            requirement_number, title = match.groups()
            self.current = {
                "id": f"REQ-{requirement_number}",
                "text": title or f"Requirement {requirement_number}",
            }
            self.where[f"requirement#{len(self.requirements)}"] = ("requirements.md", number)
            self.where.setdefault(f"requirement:{self.current['id']}", ("requirements.md", number))
            self.requirements.append(self.current)
            self.section, self.list_indent = "requirement", None
        elif self.current is not None and level >= 4:
            if "acceptance" in text.lower():
                self.section = "criteria"
            elif self.section != "criteria" or level == 4:
                self.section, self.other_at = "other", number
            self.list_indent = None  # a sub-heading's list starts its own numbering
        elif level <= 3:
            intro = level == 2 and re.match(r"(?:introduction|overview|glossary)\b", text, re.I)
            self.section = "introduction" if intro else ""
            if intro:
                self.where.setdefault("introduction", ("requirements.md", number))
            self.current = None
            if intro and text.lower().startswith("glossary"):
                self.introduction += ["", f"### {text}"]

    def body(self, number: int, line: str) -> None:
        assert self.current is not None
        stripped = line.strip()
        if match := _USER_STORY.match(stripped):
            self.current["text"] = match.group(1)
            self.current["story"] = True
            self.continued = self.current
            return
        if _CRITERIA_LINE.match(stripped):  # **Acceptance Criteria:** instead of a heading
            self.section, self.list_indent, self.continued = "criteria", None, None
            return
        criterion = _CRITERION.match(line) if self.section == "criteria" else None
        if criterion and (self.list_indent is None or len(criterion["indent"]) <= self.list_indent):
            self.list_indent = len(criterion["indent"])
            written = criterion["number"] or str(len(self.current.get("acceptance", [])) + 1)
            self.criterion(number, written, criterion["text"])
        elif self.continued is not None:
            self.continued["text"] = f"{self.continued['text']} {stripped}"
        elif self.section == "requirement" and not self.current.get("story"):
            self.current["text"], self.current["story"] = stripped, True
            self.continued = self.current
        elif self.section == "other" and self.other_at not in self.told:
            self.told.add(self.other_at)
            self.unmapped.append(
                Note(
                    f"{self.current['id']}: the section on line {self.other_at} is not mapped "
                    "(only the user story and the acceptance criteria are)",
                    "requirements.md",
                    self.other_at,
                )
            )

    def criterion(self, number: int, written: str, text: str) -> None:
        """A criterion's id is its number, or (numbered again under a sub-heading) the
        next free one: the ids are specbridge's, never a duplicate."""
        assert self.current is not None
        requirement = self.current["id"].removeprefix("REQ-")
        criteria = self.current.setdefault("acceptance", [])
        used = {c["id"] for c in criteria}
        criterion_id = f"AC-{requirement}.{written}"
        position = len(criteria) + 1
        while criterion_id in used:
            criterion_id = f"AC-{requirement}.{position}"
            position += 1
        criterion = {"id": criterion_id, "text": text}
        criteria.append(criterion)
        self.where.setdefault(f"criterion:{criterion_id}", ("requirements.md", number))
        self.continued = criterion


def _read_tasks(
    text: str,
    requirement_ids: set[str],
    unmapped: list[str],
    where: dict[str, tuple[str, int]] | None = None,
) -> list[dict[str, Any]]:
    where = {} if where is None else where
    checklist = read_checklist(text)
    tasks: list[dict[str, Any]] = []
    for index, entry in enumerate(checklist.entries):
        title, whole = fit_title(task_id_of(entry.number), entry.title)
        task: dict[str, Any] = {"id": task_id_of(entry.number), "title": title}
        at = ("tasks.md", entry.line)
        where[f"task#{index}"] = at
        where.setdefault(f"task:{task['id']}", at)
        if entry.optional:
            task["priority"] = "low"
            unmapped.append(
                Note(
                    f"task {entry.number} is optional in Kiro; imported with priority low",
                    *at,
                    kind="optional",
                )
            )
        if entry.state == "x":
            task["done"] = True
        elif entry.state == "-":
            unmapped.append(
                Note(
                    f"task {entry.number} is in progress in tasks.md; imported as work to do",
                    *at,
                    kind="in-progress",
                )
            )
        files = paths_in(" ".join([entry.title, *(text for _, text in entry.details)]))
        if files:
            task["files"] = list(files)
        details = _details(entry, task, requirement_ids, unmapped)
        task["description"] = f"{whole}\n\n{details}".strip() if whole else details
        tasks.append(task)
    tell_unread(checklist, unmapped, "`- [ ] 1. Title` (sub-tasks `- [ ] 1.1 Title`)")
    nodes = _tree(checklist, {e.line: t for e, t in zip(checklist.entries, tasks, strict=True)})
    _order(nodes)
    for node in nodes:
        if node.task is None:
            continue
        children = [c.entry.number for c in node.children if c.task is not None]
        body = node.task.pop("description")
        if children:
            body = f"{body}\n\nDone when its sub-tasks {', '.join(children)} are.".strip()
        if body:
            node.task["description"] = body
    drop_unknown_references(tasks, unmapped, where)
    return [_in_key_order(task) for task in tasks]


def _details(
    entry: Entry, task: dict[str, Any], requirement_ids: set[str], unmapped: list[str]
) -> str:
    """The lines below a task: its description, and the requirements it names (which
    may be wrapped onto the next lines)."""
    lines: list[str] = []
    references: tuple[int, str] | None = None  # a reference still open: (line, text)
    for number, text in entry.details:
        if references is not None:
            references = (references[0], f"{references[1]} {text}")
            if _closed(references[1]):
                _serve(task, references[1], requirement_ids, unmapped, references[0])
                references = None
            continue
        bullet = _BULLET.match(text)
        plain = bullet.group(1) if bullet else text
        if match := _REFERENCES.match(plain):
            if _closed(plain) or not plain.lstrip("*").startswith("_"):
                _serve(task, match.group("refs"), requirement_ids, unmapped, number)
            else:
                references = (number, plain)
        elif bullet or not lines or _STEP.match(plain):
            lines.append(f"- {plain}")
        else:
            lines[-1] = f"{lines[-1]} {plain}"  # a line wrapped onto the next
    if references is not None:
        _serve(task, references[1], requirement_ids, unmapped, references[0])
    return "\n".join(lines)


def _closed(text: str) -> bool:
    """Whether an `_Requirements: …_` reference has its closing underscore."""
    return text.rstrip().rstrip("*").endswith("_")


def _serve(
    task: dict[str, Any],
    references: str,
    requirement_ids: set[str],
    unmapped: list[str],
    line: int | None = None,
) -> None:
    """Kiro names acceptance criteria (1.2), ranges of them (1.1-1.4), requirements (3)
    or all of them (All); a task serves the requirements they belong to."""
    if match := _REFERENCES.match(references):
        references = match.group("refs")
    references = references.strip("_* ")
    served = task.setdefault("requirements", [])
    numbers = _referenced(references)
    if numbers is None:
        if _ALL.match(references):
            everything = sorted(requirement_ids, key=lambda r: int(r.removeprefix("REQ-")))
            numbers = [(r.removeprefix("REQ-"), r) for r in everything]
        else:
            unmapped.append(
                Note(
                    f"task {task['id']} names requirements as '{_cut(references)}', which "
                    "names no requirement; write the criteria it meets, "
                    "as in `_Requirements: 1.2, 3.1_`",
                    "tasks.md",
                    line,
                )
            )
            numbers = []
    for number, written in numbers:
        requirement_id = f"REQ-{number}"
        if requirement_id not in requirement_ids:
            unmapped.append(
                Note(
                    f"task {task['id']} names requirement {written}, not defined",
                    "tasks.md",
                    line,
                )
            )
        elif requirement_id not in served:
            served.append(requirement_id)
    if not served:
        task.pop("requirements")


def _referenced(references: str) -> list[tuple[str, str]] | None:
    """The requirement numbers a reference names, each with how it was written, in
    order, or None when it names none."""
    numbers: dict[str, str] = {}
    for match in _REFERENCE.finditer(references):
        first, last = match.group("first"), match.group("last")
        start = int(first.split(".")[0])
        end = int(last.split(".")[0]) if last else start
        for number in range(start, max(start, end) + 1) if end - start < 1000 else [start]:
            numbers.setdefault(str(number), match.group(0) if end != start else first)
    return list(numbers.items()) or None


def _cut(text: str, length: int = 60) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


@dataclass(eq=False)  # a node is itself: found in its siblings by identity
class _Node:
    entry: Entry
    task: dict[str, Any] | None  # None for a heading that groups tasks
    parent: _Node | None = None
    children: list[_Node] = field(default_factory=list)


def _tree(checklist: Checklist, by_line: dict[int, dict[str, Any]]) -> list[_Node]:
    """Tasks and the headings that group them, each under its parent: the task its
    number names (2 for 2.1), else the task it is indented under, else its heading."""
    nodes: list[_Node] = []
    groups: list[_Node] = []
    by_number: dict[str, _Node] = {}
    items = sorted(
        [(e, True) for e in checklist.entries] + [(g, False) for g in checklist.groups],
        key=lambda item: item[0].line,
    )
    for entry, is_task in items:
        node = _Node(entry, by_line[entry.line] if is_task else None)
        node.parent = _parent_of(entry, nodes, groups, by_number, checklist)
        if node.parent is not None:
            node.parent.children.append(node)
        nodes.append(node)
        if not is_task:
            groups.append(node)
        by_number.setdefault(entry.number, node)
    return nodes


def _parent_of(
    entry: Entry,
    nodes: list[_Node],
    groups: list[_Node],
    by_number: dict[str, _Node],
    checklist: Checklist,
) -> _Node | None:
    if "." in entry.number and entry.number.rsplit(".", 1)[0] in by_number:
        return by_number[entry.number.rsplit(".", 1)[0]]
    if not entry.is_heading and entry.indent > 0:
        for node in reversed(nodes):
            if node.entry.is_heading:
                break
            if node.entry.indent < entry.indent:
                return node
    return next((g for g in reversed(groups) if checklist.under(g.entry, entry)), None)


def _order(nodes: list[_Node]) -> None:
    """Kiro works its tasks in order: each after its previous sibling (a heading that
    groups tasks: after its tasks), a first sub-task after its parent's previous
    sibling, and a parent once its sub-tasks are done (not the optional ones)."""
    roots = [node for node in nodes if node.parent is None]
    for node in nodes:
        if node.task is None:
            continue
        waits = [d for child in node.children if not _optional(child) for d in _completion(child)]
        if not waits:
            waits = _before(node, roots)
        if waits:
            node.task["depends_on"] = list(dict.fromkeys(waits))


def _optional(node: _Node) -> bool:
    return node.entry.optional


def _completion(node: _Node) -> list[str]:
    """The tasks whose end is this node's end: itself, or a group's own tasks."""
    if node.task is not None:
        return [node.task["id"]]
    return [d for child in node.children if not _optional(child) for d in _completion(child)]


def _before(node: _Node, roots: list[_Node]) -> list[str]:
    siblings = node.parent.children if node.parent is not None else roots
    index = siblings.index(node)
    while index > 0:
        index -= 1
        if done := _completion(siblings[index]):
            return done
    return _before(node.parent, roots) if node.parent is not None else []


def _in_key_order(task: dict[str, Any]) -> dict[str, Any]:
    order = ("id", "title", "description", "priority", "requirements", "depends_on", "done")
    order += ("files",)
    return {key: task[key] for key in order if key in task}


def _without_title(text: str) -> str:
    lines = text.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).strip()
