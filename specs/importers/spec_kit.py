"""GitHub spec-kit: a feature directory `specs/NNN-feature/` with spec.md, plan.md and
tasks.md as spec-kit's templates write them (templates/spec-template.md,
templates/tasks-template.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from specs.importers import Imported, Note, build_spec, drop_unknown_references, slug
from specs.importers.markdown import (
    Entry,
    fit_title,
    read_checklist,
    readable_lines,
    task_id_of,
    tell_unread,
)
from specs.paths import paths_in

FILES = ("spec.md", "plan.md", "tasks.md")

_TITLE = re.compile(r"^#\s+(?:Feature Specification|Tasks|Implementation Plan):\s*(.+?)\s*$")
_INPUT = re.compile(r'^\*\*Input\*\*:\s*(?:User description:\s*)?"?(.*?)"?\s*$')
_STORY = re.compile(
    r"^#{2,4}\s+(?:User Story|US)\s*(\d+)\s*[-\u2013\u2014:.]\s*(.+?)\s*"
    r"(?:\(Priority:\s*P(\d+)\))?\s*(?:🎯.*)?$",
    re.I,
)
_SCENARIO = re.compile(r"^\s*\d+\.\s+(.*\S)\s*$")
# `- **FR-001**: System MUST x`, also `**FR-001:**`, `**FR-001** x`, without the bullet
_FUNCTIONAL = re.compile(r"^\s*(?:[-*]\s+)?\*\*((?:FR|NFR)-\d+[a-z]?):?\*\*:?\s*(.+?)\s*$")
_SYSTEM_MUST = re.compile(r"^(?:the\s+)?system\s+must\s+", re.I)
_ACTOR_MUST = re.compile(r"^(\w[\w ]*?)\s+must\s+be\s+able\s+to\s+", re.I)
_CLARIFY = re.compile(r"\[NEEDS CLARIFICATION:\s*([^\]]*)\]")
_PHASE = re.compile(r"^##\s+Phase\s+[\w.]+\s*[:\-\u2013\u2014]\s*(.+?)\s*$")
_PHASE_WORD = re.compile(r"^(?:Phase|Milestone|Stage)\b|^M\d+\b", re.I)
_MARKER = re.compile(r"^`?\[([^\]\[]+)\]`?\s*")
_STORY_MARKER = re.compile(r"^US\d+$")
_DEPENDS = re.compile(r"\bdepends? on:?\s*([^)\n;]*)", re.I)
_MENTIONED_ID = re.compile(
    r"\b(T\d+[a-z]?(?:\.\d+)*|[A-Z]{1,5}-?\d{2,}[a-z]?|\d+(?:\.\d+)+)\b"
    r"(?:\s*[-\u2013]\s*(T?\d+)\b)?"  # T007-T012: a range
)
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
    if "plan.md" in files:
        where["design"] = ("plan.md", 1)
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
    for number, line in enumerate(readable_lines(text), start=1):
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
        if (match := _TITLE.match(line)) and not title:
            title = match.group(1)
            where["title"] = ("spec.md", number)
        elif match := _INPUT.match(line):
            context = match.group(1)
            where.setdefault("context", ("spec.md", number))
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
            _functional(match.group(1), match.group(2), requirements, seen, unmapped, number, where)
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
    where: dict[str, tuple[str, int]] | None = None,
) -> None:
    if requirement_id in seen:
        first = (where or {}).get(f"requirement:{requirement_id}", ("spec.md", 0))[1]
        unmapped.append(
            Note(
                f"{requirement_id} is already defined on line {first}; kept that one",
                "spec.md",
                line,
                "duplicate-id",
                "error",
            )
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
    checklist = read_checklist(text)
    title = match.group(1) if (match := _TITLE.match(f"# {checklist.title}")) else ""
    if title:
        where.setdefault("title", ("tasks.md", checklist.title_line))
    phase_level = _phase_level(checklist.entries)
    phases: list[_Phase] = []
    explicit: dict[str, set[str]] = {}  # the dependencies written as (depends on …)
    phase_key: tuple[tuple[int, str], ...] | None = None
    ids = {entry.number: task_id_of(entry.number) for entry in checklist.entries}
    for index, entry in enumerate(checklist.entries):
        above = [h for h in entry.headings if h[0] > 1]
        key = tuple(h for h in above if h[0] <= phase_level)
        if not phases or key != phase_key:
            heading = key[-1][1] if key else ""
            phases.append(_Phase(_phase_name(heading), _is_story(heading)))
            phase_key = key
        section = " > ".join(h[1] for h in above if h[0] > phase_level)
        where.setdefault(f"task:{ids[entry.number]}", ("tasks.md", entry.line))
        where[f"task#{index}"] = ("tasks.md", entry.line)
        task = _task(
            entry, ids, phases[-1], section, requirement_ids, priorities, unmapped, explicit
        )
        phases[-1].tasks.append(task)
    tell_unread(checklist, unmapped, "`- [ ] T001 Title`")
    _gate_phases(phases)
    tasks = [task for p in phases for task in p.tasks]
    _explicit_first(tasks, explicit)
    drop_unknown_references(tasks, unmapped, where)
    return title, tasks


def _explicit_first(tasks: list[dict[str, Any]], explicit: dict[str, set[str]]) -> None:
    """A `(depends on T020)` on a later task is the author's word against the order read
    from the file (the task before, the phases before): where the two would make a
    cycle, the order read gives way. Only a dependency on a later task can make one."""
    order = {task["id"]: index for index, task in enumerate(tasks)}
    forward = any(
        order.get(target, -1) > order[source]
        for source, targets in explicit.items()
        for target in targets
    )
    if not forward:
        return
    graph = {task["id"]: list(explicit.get(task["id"], ())) for task in tasks}
    for task in tasks:
        kept = []
        for target in task.get("depends_on", []):
            said = target in explicit.get(task["id"], ())
            if said or not _reaches(graph, target, task["id"]):
                kept.append(target)
                if not said:
                    graph[task["id"]].append(target)
        task["depends_on"] = kept


def _reaches(graph: dict[str, list[str]], start: str, goal: str) -> bool:
    seen, pending = {start}, [start]
    while pending:
        node = pending.pop()
        if node == goal:
            return True
        for target in graph.get(node, ()):
            if target not in seen:
                seen.add(target)
                pending.append(target)
    return False


def _phase_level(entries: list[Entry]) -> int:
    """The heading level of the file's phases: that of its first `Phase N` heading, else 2."""
    for entry in entries:
        for level, text in entry.headings:
            if level > 1 and _PHASE_WORD.match(text):
                return level
    return 2


def _phase_name(heading: str) -> str:
    return match.group(1) if (match := _PHASE.match(f"## {heading}")) else heading


def _is_story(heading: str) -> bool:
    return bool(re.search(r"user stor(?:y|ies)|\bUS\d+\b", heading, re.I))


def _task(
    entry: Entry,
    ids: dict[str, str],
    phase: _Phase,
    section: str,
    requirement_ids: set[str],
    priorities: dict[str, int],
    unmapped: list[str],
    explicit: dict[str, set[str]],
) -> dict[str, Any]:
    task_id = ids[entry.number]
    markers, rest = _markers(entry.title)
    stories = [m for m in markers if _STORY_MARKER.match(m)]
    title, whole = fit_title(task_id, rest)
    task: dict[str, Any] = {"id": task_id, "title": title}
    where = " > ".join(p for p in (phase.heading, section) if p)
    description = [whole, ""] if whole else []
    description += [f"spec-kit phase: {where}"] if where else []
    description += [text for _, text in entry.details]
    if description:
        task["description"] = "\n".join(description)
    story_priority = min((priorities[s] for s in stories if s in priorities), default=None)
    heading_priority = _PRIORITY.search(phase.heading)
    priority = story_priority or (int(heading_priority.group(1)) if heading_priority else None)
    if priority is not None:
        task["priority"] = {1: "high", 2: "medium"}.get(priority, "low")
    served = [s for s in dict.fromkeys(stories) if s in requirement_ids]
    line = ("tasks.md", entry.line)
    for story in sorted(set(stories) - requirement_ids):
        unmapped.append(
            Note(f"task {task_id} belongs to {story}, which spec.md does not define", *line)
        )
    if served:
        task["requirements"] = served
    depends_on = []
    if "P" not in markers and phase.tasks:
        depends_on.append(phase.tasks[-1]["id"])
    said = " ".join([entry.title, *(text for _, text in entry.details)])
    for mention in _DEPENDS.findall(said):
        named = _mentioned(mention, ids)
        explicit.setdefault(task_id, set()).update(named)
        depends_on += named
    if depends_on:
        task["depends_on"] = depends_on
    if entry.state == "x":
        task["done"] = True
    files = paths_in(rest)
    if files:
        task["files"] = list(files)
    if "P" in markers:
        task["parallel"] = True
    return task


def _mentioned(mention: str, ids: dict[str, str]) -> list[str]:
    """The tasks a `(depends on T003, T007-T012)` names: a range is every task of the file
    numbered within it."""
    found: list[str] = []
    for match in _MENTIONED_ID.finditer(mention):
        first, last = match.group(1), match.group(2)
        if last and (span := _range(first, last)):
            found += [ids[n] for n in ids if n.startswith("T") and _number(n) in span]
        else:
            found.append(ids.get(first, first))
    return found


def _range(first: str, last: str) -> range | None:
    start, end = _number(first), _number(last.removeprefix("T"))
    if start is None or end is None or not 0 <= end - start < 1000:
        return None
    return range(start, end + 1)


def _number(task_number: str) -> int | None:
    match = re.fullmatch(r"T?(\d+)", task_number)
    return int(match.group(1)) if match else None


def _markers(title: str) -> tuple[list[str], str]:
    """`[P] [US1] Create x` → (["P", "US1"], "Create x"); markers that say nothing to
    specbridge (`[SETUP]`, `[EXECUTOR: MAIN]`) stay in the title."""
    markers: list[str] = []
    kept: list[str] = []
    rest = title
    while match := _MARKER.match(rest):
        for marker in (m.strip() for m in match.group(1).split(",")):
            markers.append(marker)
            if marker != "P" and not _STORY_MARKER.match(marker):
                kept.append(f"[{marker}]")
        rest = rest[match.end() :]
    return markers, " ".join([*kept, rest]).strip() or title


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


def _plain(text: str) -> str:
    """Markdown emphasis removed: **Given** x → Given x."""
    return re.sub(r"\*\*(.+?)\*\*", r"\1", text).strip()
