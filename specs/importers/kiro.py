"""Kiro: a spec directory `.kiro/specs/<name>/` with requirements.md (user stories and
numbered EARS acceptance criteria), design.md and tasks.md (a numbered checkbox
implementation plan), as Kiro's documentation describes them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from specs.importers import Imported, Note, build_spec, drop_unknown_references, slug

FILES = ("requirements.md", "design.md", "tasks.md")

_REQUIREMENT = re.compile(r"^###\s+Requirement\s+(\d+)\s*(?:[:.\-\u2013\u2014]\s*(.*?))?\s*$")
_USER_STORY = re.compile(r"^\*\*User Story:?\*\*:?\s*(.+?)\s*$")
_CRITERION = re.compile(r"^\s*(\d+)\.\s+(.+?)\s*$")
_TASK = re.compile(r"^(\s*)-\s+\[( |x|X|-)\](\*)?\s+(\d+(?:\.\d+)*)(\*)?\.?\s+(.+?)\s*$")
_DETAIL = re.compile(r"^\s+[-*]\s+(.+?)\s*$")
_REFERENCES = re.compile(r"^_?Requirements?:\s*(.+?)_?$")


def import_kiro(files: Mapping[str, str], name: str) -> Imported:
    """A spec from the Kiro spec directory `.kiro/specs/<name>/`."""
    unmapped: list[str] = []
    where: dict[str, tuple[str, int]] = {}
    context, requirements = _read_requirements(files.get("requirements.md", ""), unmapped, where)
    tasks = _read_tasks(files.get("tasks.md", ""), {r["id"] for r in requirements}, unmapped, where)
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
    introduction: list[str] = []
    requirements: list[dict[str, Any]] = []
    section = ""
    current: dict[str, Any] | None = None
    for line_number, line in enumerate(text.splitlines(), start=1):
        if match := _REQUIREMENT.match(line):
            number, title = match.groups()
            current = {"id": f"REQ-{number}", "text": title or f"Requirement {number}"}
            where[f"requirement#{len(requirements)}"] = ("requirements.md", line_number)
            where.setdefault(f"requirement:{current['id']}", ("requirements.md", line_number))
            requirements.append(current)
            section = "requirement"
        elif line.startswith("#### ") and current is not None:
            section = "criteria" if "acceptance" in line.lower() else "other"
        elif line.startswith("## "):
            section = "introduction" if "introduction" in line.lower() else ""
            current = None
        elif section == "introduction":
            introduction.append(line)
        elif current is not None and (match := _USER_STORY.match(line)):
            current["text"] = match.group(1)
        elif current is not None and section == "criteria" and (match := _CRITERION.match(line)):
            number = current["id"].removeprefix("REQ-")
            criterion_id = f"AC-{number}.{match.group(1)}"
            current.setdefault("acceptance", []).append(
                {"id": criterion_id, "text": match.group(2)}
            )
            where.setdefault(f"criterion:{criterion_id}", ("requirements.md", line_number))
        elif current is not None and section == "other" and line.strip():
            unmapped.append(
                Note(f"{current['id']}: not mapped: {line.strip()}", "requirements.md", line_number)
            )
    return "\n".join(introduction).strip(), requirements


def _read_tasks(
    text: str,
    requirement_ids: set[str],
    unmapped: list[str],
    where: dict[str, tuple[str, int]] | None = None,
) -> list[dict[str, Any]]:
    where = {} if where is None else where
    tasks: list[dict[str, Any]] = []
    numbers: dict[str, dict[str, Any]] = {}
    details: dict[str, list[str]] = {}
    current: dict[str, Any] | None = None
    for line_number, line in enumerate(text.splitlines(), start=1):
        if match := _TASK.match(line):
            _indent, state, optional_box, number, optional_number, title = match.groups()
            current = {"id": f"TASK-{number}", "title": title}
            at = ("tasks.md", line_number)
            where[f"task#{len(tasks)}"] = at
            where.setdefault(f"task:{current['id']}", at)
            if optional_box or optional_number:
                current["priority"] = "low"
                unmapped.append(
                    Note(
                        f"task {number} is optional in Kiro; imported with priority low",
                        *at,
                        kind="optional",
                    )
                )
            if state in "xX":
                current["done"] = True
            elif state == "-":
                unmapped.append(
                    Note(
                        f"task {number} is in progress in tasks.md; imported as work to do",
                        *at,
                        kind="in-progress",
                    )
                )
            tasks.append(current)
            numbers[number] = current
            details[current["id"]] = []
        elif current is not None and (match := _DETAIL.match(line)):
            detail = match.group(1)
            if references := _REFERENCES.match(detail):
                _serve(current, references.group(1), requirement_ids, unmapped, line_number)
            else:
                details[current["id"]].append(f"- {detail}")
    _order(numbers)
    for task in tasks:
        body = "\n".join(details[task["id"]])
        children = [n for n in numbers if _parent(n) == task["id"].removeprefix("TASK-")]
        if children:
            body = f"{body}\n\nDone when its sub-tasks {', '.join(children)} are.".strip()
        if body:
            task["description"] = body
    drop_unknown_references(tasks, unmapped, where)
    return [_in_key_order(task) for task in tasks]


def _serve(
    task: dict[str, Any],
    references: str,
    requirement_ids: set[str],
    unmapped: list[str],
    line: int | None = None,
) -> None:
    """Kiro names acceptance criteria (1.2); a task serves the requirement (1) they belong to."""
    served = task.setdefault("requirements", [])
    for reference in re.split(r"[,\s]+", references.strip("_ ")):
        if not reference:
            continue
        requirement_id = f"REQ-{reference.split('.')[0]}"
        if requirement_id not in requirement_ids:
            unmapped.append(
                Note(
                    f"task {task['id']} names requirement {reference}, not defined",
                    "tasks.md",
                    line,
                )
            )
        elif requirement_id not in served:
            served.append(requirement_id)
    if not served:
        task.pop("requirements")


def _order(numbers: dict[str, dict[str, Any]]) -> None:
    """Kiro works its tasks in order: each after its previous sibling, a first sub-task
    after its parent's previous sibling, and a parent once its sub-tasks are done."""
    parents = {_parent(number) for number in numbers}
    previous_sibling: dict[str | None, str] = {}
    for number, task in numbers.items():
        parent = _parent(number)
        before = previous_sibling.get(parent)
        if before is None and parent is not None:
            before = _previous_sibling_of(parent, numbers)
        if before is not None and number not in parents:  # a parent waits through its sub-tasks
            task.setdefault("depends_on", []).append(f"TASK-{before}")
        previous_sibling[parent] = number
        if parent in numbers and task.get("priority") != "low":  # optional ones Kiro leaves
            numbers[parent].setdefault("depends_on", []).append(task["id"])


def _previous_sibling_of(number: str, numbers: dict[str, dict[str, Any]]) -> str | None:
    """The sibling before `number`, or (for a first child) its parent's previous sibling."""
    parent = _parent(number)
    siblings = [n for n in numbers if _parent(n) == parent]
    if number in siblings and siblings.index(number) > 0:
        return siblings[siblings.index(number) - 1]
    return _previous_sibling_of(parent, numbers) if parent is not None else None


def _parent(number: str) -> str | None:
    return number.rsplit(".", 1)[0] if "." in number else None


def _in_key_order(task: dict[str, Any]) -> dict[str, Any]:
    order = ("id", "title", "description", "priority", "requirements", "depends_on", "done")
    return {key: task[key] for key in order if key in task}


def _without_title(text: str) -> str:
    lines = text.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).strip()
