"""GitHub spec-kit: a feature directory `specs/NNN-feature/` with spec.md, plan.md and
tasks.md as spec-kit's templates write them (templates/spec-template.md,
templates/tasks-template.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from specs.importers import Imported, Note, build_spec, drop_unknown_references, slug

FILES = ("spec.md", "plan.md", "tasks.md")

_TITLE = re.compile(r"^#\s+(?:Feature Specification|Tasks|Implementation Plan):\s*(.+?)\s*$")
_INPUT = re.compile(r'^\*\*Input\*\*:\s*(?:User description:\s*)?"?(.*?)"?\s*$')
_STORY = re.compile(
    r"^###\s+User Story\s+(\d+)\s*[-\u2013\u2014:]\s*(.+?)\s*"
    r"(?:\(Priority:\s*P(\d+)\))?\s*(?:🎯.*)?$"
)
_SCENARIO = re.compile(r"^\s*\d+\.\s+(.*\S)\s*$")
_FUNCTIONAL = re.compile(r"^\s*[-*]\s+\*\*((?:FR|NFR)-\d+)\*\*:?\s*(.+?)\s*$")
_SYSTEM_MUST = re.compile(r"^(?:the\s+)?system\s+must\s+", re.I)
_ACTOR_MUST = re.compile(r"^(\w[\w ]*?)\s+must\s+be\s+able\s+to\s+", re.I)
_CLARIFY = re.compile(r"\[NEEDS CLARIFICATION:\s*([^\]]*)\]")
_PHASE = re.compile(r"^##\s+Phase\s+[\w.]+\s*:\s*(.+?)\s*$")
_TASK = re.compile(r"^\s*-\s+\[( |x|X)\]\s+(T\d+)\s+(.*\S)\s*$")
_CHECKBOX = re.compile(r"^\s*-\s+\[( |x|X)\]\s+(.*\S)\s*$")
_MARKER = re.compile(r"^\[(P|US\d+)\]\s*")
_DEPENDS = re.compile(r"\(depends on ([^)]*)\)", re.I)
_TASK_ID = re.compile(r"\bT\d+\b")
_CONTEXT_SECTION = re.compile(
    r"^(?:#{2,4}\s+|\*\*)(Edge Cases|Key Entities|Assumptions|Measurable Outcomes)\b.*$"
)
_PRIORITY = re.compile(r"\(Priority:\s*P(\d+)\)")


def import_spec_kit(files: Mapping[str, str], name: str) -> Imported:
    """A spec from a spec-kit feature directory named `name` (e.g. 001-photo-albums)."""
    unmapped: list[str] = []
    where: dict[str, tuple[str, int]] = {}
    title = ""
    context = ""
    requirements: list[dict[str, Any]] = []
    priorities: dict[str, int] = {}
    if "spec.md" in files:
        title, context, requirements, priorities = _read_spec(files["spec.md"], unmapped, where)
    design = _without_title(files.get("plan.md", ""))
    tasks: list[dict[str, Any]] = []
    if "tasks.md" in files:
        tasks_title, tasks = _read_tasks(
            files["tasks.md"], {r["id"] for r in requirements}, priorities, unmapped, where
        )
        title = title or tasks_title
    spec = build_spec(
        slug(name),
        title,
        context=context,
        requirements=requirements,
        design=design,
        tasks=tasks,
    )
    return Imported(spec, unmapped, where)


def _read_spec(
    text: str, unmapped: list[str], where: dict[str, tuple[str, int]]
) -> tuple[str, str, list[dict[str, Any]], dict[str, int]]:
    title, context = "", ""
    requirements: list[dict[str, Any]] = []
    priorities: dict[str, int] = {}
    story: dict[str, Any] | None = None
    in_scenarios = False
    seen: set[str] = set()
    notes: list[str] = []  # sections kept as context, e.g. Edge Cases
    in_notes = False
    for number, line in enumerate(_blank_comments(text).splitlines(), start=1):
        heading = _CONTEXT_SECTION.match(line)
        if heading:
            notes.append(f"### {heading.group(1).strip()}")
            in_notes = True
            continue
        if in_notes and not line.startswith("#") and not _FUNCTIONAL.match(line):
            if line.strip():
                notes.append(_plain(line.rstrip()))
            continue
        in_notes = False
        if match := _TITLE.match(line):
            title = match.group(1)
        elif match := _INPUT.match(line):
            context = match.group(1)
        elif match := _STORY.match(line):
            story_number, story_title, priority = match.groups()
            story = {"id": f"US{story_number}", "text": story_title, "acceptance": []}
            where[f"requirement#{len(requirements)}"] = ("spec.md", number)
            requirements.append(story)
            where.setdefault(f"requirement:{story['id']}", ("spec.md", number))
            if priority:
                priorities[story["id"]] = int(priority)
            in_scenarios = False
        elif line.startswith("#"):
            in_scenarios = False
            if line.startswith("## "):
                story = None
        elif match := _FUNCTIONAL.match(line):
            if match.group(1) not in seen:
                where[f"requirement#{len(requirements)}"] = ("spec.md", number)
            _functional(match.group(1), match.group(2), requirements, seen, unmapped, number)
            where.setdefault(f"requirement:{match.group(1)}", ("spec.md", number))
        elif line.startswith("**Acceptance Scenarios**"):
            in_scenarios = story is not None
        elif line.startswith("**"):
            in_scenarios = False
        elif story is not None and in_scenarios and (match := _SCENARIO.match(line)):
            criteria = story["acceptance"]
            criterion_id = f"{story['id']}-AC{len(criteria) + 1}"
            criteria.append({"id": criterion_id, "text": _plain(match.group(1))})
            where.setdefault(f"criterion:{criterion_id}", ("spec.md", number))
        elif story is not None and not in_scenarios and line.strip() and not story.get("told"):
            story["text"] = f"{story['text']}: {_plain(line.strip())}"
            story["told"] = True
    if notes:
        context = "\n\n".join([context, "\n".join(notes)]).strip()
    for requirement in requirements:
        requirement.pop("told", None)
        if not requirement.get("acceptance"):
            requirement.pop("acceptance", None)
    return title, context, requirements, priorities


def _functional(
    requirement_id: str,
    text: str,
    requirements: list[dict[str, Any]],
    seen: set[str],
    unmapped: list[str],
    line: int | None = None,
) -> None:
    if requirement_id in seen:
        unmapped.append(
            Note(f"{requirement_id} is defined more than once; kept the first", "spec.md", line)
        )
        return
    seen.add(requirement_id)
    for question in _CLARIFY.findall(text):
        unmapped.append(
            Note(
                f"{requirement_id} still needs clarification: {question.strip()}",
                "spec.md",
                line,
                "needs-clarification",
            )
        )
    requirements.append({"id": requirement_id, "text": _ears(_plain(text))})


def _ears(text: str) -> str:
    """spec-kit's "System MUST x" is EARS's ubiquitous form "THE SYSTEM SHALL x"."""
    if match := _SYSTEM_MUST.match(text):
        return "THE SYSTEM SHALL " + text[match.end() :]
    if match := _ACTOR_MUST.match(text):
        return f"THE SYSTEM SHALL allow {match.group(1).lower()} to {text[match.end() :]}"
    return text


@dataclass
class _Phase:
    heading: str
    is_story: bool
    tasks: list[dict[str, Any]] = field(default_factory=list)

    def sinks(self) -> list[str]:
        """Its tasks that no other task of the phase waits for: the phase is done with them."""
        waited_for = {d for task in self.tasks for d in task.get("depends_on", [])}
        return [task["id"] for task in self.tasks if task["id"] not in waited_for]


def _read_tasks(
    text: str,
    requirement_ids: set[str],
    priorities: dict[str, int],
    unmapped: list[str],
    where: dict[str, tuple[str, int]] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    where = {} if where is None else where
    title = ""
    phases: list[_Phase] = []
    phase: _Phase | None = None
    section = ""
    for number, line in enumerate(_blank_comments(text).splitlines(), start=1):
        if match := _TITLE.match(line):
            title = match.group(1)
        elif match := _PHASE.match(line):
            heading = match.group(1)
            phase = _Phase(heading, "user story" in heading.lower())
            phases.append(phase)
            section = ""
        elif line.startswith("## "):
            phase = None
        elif line.startswith("### ") and phase is not None:
            section = line[4:].strip()
        elif match := _TASK.match(line):
            if phase is None:
                phase = _Phase("", False)
                phases.append(phase)
            where.setdefault(f"task:{match.group(2)}", ("tasks.md", number))
            where[f"task#{sum(len(p.tasks) for p in phases)}"] = ("tasks.md", number)
            task = _task(
                match.groups(), phase, section, requirement_ids, priorities, unmapped, number
            )
            phase.tasks.append(task)
        elif _CHECKBOX.match(line):
            unmapped.append(
                Note(
                    f"tasks.md line {number}: no task id (T001, …): {line.strip()}",
                    "tasks.md",
                    number,
                )
            )
    _gate_phases(phases)
    tasks = [task for p in phases for task in p.tasks]
    drop_unknown_references(tasks, unmapped, where)
    return title, tasks


def _task(
    groups: tuple[str, ...],
    phase: _Phase,
    section: str,
    requirement_ids: set[str],
    priorities: dict[str, int],
    unmapped: list[str],
    number: int | None = None,
) -> dict[str, Any]:
    checked, task_id, rest = groups
    markers = []
    while match := _MARKER.match(rest):
        markers.append(match.group(1))
        rest = rest[match.end() :]
    stories = [m for m in markers if m.startswith("US")]
    task: dict[str, Any] = {"id": task_id, "title": rest}
    where = " > ".join(p for p in (phase.heading, section) if p)
    if where:
        task["description"] = f"spec-kit phase: {where}"
    story_priority = min((priorities[s] for s in stories if s in priorities), default=None)
    heading_priority = _PRIORITY.search(phase.heading)
    priority = story_priority or (int(heading_priority.group(1)) if heading_priority else None)
    if priority is not None:
        task["priority"] = {1: "high", 2: "medium"}.get(priority, "low")
    served = [s for s in stories if s in requirement_ids]
    line = ("tasks.md", number)
    for story in sorted(set(stories) - requirement_ids):
        unmapped.append(
            Note(f"task {task_id} belongs to {story}, which spec.md does not define", *line)
        )
    if served:
        task["requirements"] = served
    depends_on = []
    if "P" not in markers and phase.tasks:
        depends_on.append(phase.tasks[-1]["id"])
    for mention in _DEPENDS.findall(rest):
        depends_on.extend(_TASK_ID.findall(mention))
    if depends_on:
        task["depends_on"] = depends_on
    if checked.lower() == "x":
        task["done"] = True
    return task


def _gate_phases(phases: list[_Phase]) -> None:
    """spec-kit's phase order: Setup, then Foundational, block all user stories; the
    stories run in parallel; a later phase (Polish) waits for every story before it.
    A task that waits for nothing in its phase waits for the phases it comes after."""
    gate: list[str] = []
    stories_since_gate: list[_Phase] = []
    for phase in phases:
        waits_for = gate
        if not phase.is_story and stories_since_gate:
            waits_for = [t for story in stories_since_gate for t in story.sinks()]
        in_phase = {task["id"] for task in phase.tasks}
        for task in phase.tasks:
            if not in_phase & set(task.get("depends_on", [])) and waits_for:
                task["depends_on"] = [*waits_for, *task.get("depends_on", [])]
        if phase.is_story:
            stories_since_gate.append(phase)
        else:
            gate, stories_since_gate = phase.sinks(), []


def _without_title(text: str) -> str:
    lines = _without_comments(text).splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).strip()


def _without_comments(text: str) -> str:
    return re.sub(r"<!--.*?-->", "", text, flags=re.S)


def _blank_comments(text: str) -> str:
    """HTML comments removed, their lines kept (empty), so line numbers stay the file's."""
    return re.sub(r"<!--.*?-->", lambda m: "\n" * m.group().count("\n"), text, flags=re.S)


def _plain(text: str) -> str:
    """Markdown emphasis removed: **Given** x → Given x."""
    return re.sub(r"\*\*(.+?)\*\*", r"\1", text).strip()
