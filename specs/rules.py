"""The rules of the spec format, checked on YAML nodes so every finding has a position."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from typing import Any, TypeGuard

import yaml

from specs import limits
from specs.model import (
    APPROVALS,
    MANUAL_AGENT,
    PHASES,
    PICKS,
    PRIORITIES,
    AcceptanceCriterion,
    Finding,
    Requirement,
    Spec,
    SpecTask,
)

SPEC_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
ITEM_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")

TOP_KEYS = (
    "id",
    "title",
    "phase",
    "owner",
    "labels",
    "approval",
    "agent",
    "context",
    "requirements",
    "design",
    "tasks",
)
REQUIRED_TOP_KEYS = ("title", "phase")
REQUIREMENT_KEYS = ("id", "text", "acceptance")
CRITERION_KEYS = ("id", "text")
TASK_KEYS = (
    "id",
    "title",
    "description",
    "priority",
    "requirements",
    "depends_on",
    "agent",
    "done",
    "files",
    "parallel",
    "attempts",
    "pick",
)
# The most runs one task may ask for (`attempts:`).
MAX_ATTEMPTS = 5
REQUIRED_KEYS = {
    "requirement": ("id", "text"),
    "criterion": ("id", "text"),
    "task": ("id", "title"),
}
PHASES_BEFORE_TASKS = PHASES[: PHASES.index("tasks")]
ENUMS = {"phase": PHASES, "priority": PRIORITIES, "approval": APPROVALS, "pick": PICKS}

EARS_PATTERNS = (
    'ubiquitous "THE SYSTEM SHALL …", event-driven "WHEN … THE SYSTEM SHALL …", '
    'state-driven "WHILE … THE SYSTEM SHALL …", unwanted behaviour "IF … THEN THE SYSTEM SHALL …", '
    'optional feature "WHERE … THE SYSTEM SHALL …"'
)
_EARS_OPENINGS = re.compile(r"^\s*(when|while|where|the)\b|^\s*if\b.*\bthen\b", re.I | re.S)
_SHALL = re.compile(r"\bshall\b", re.I)

_STR = "tag:yaml.org,2002:str"
_SURPRISING_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("bool", "int", "float", "timestamp")}


def is_ears(text: str) -> bool:
    return bool(_SHALL.search(text) and _EARS_OPENINGS.search(text))


class _Checker:
    def __init__(self, path: str, known_agents: Collection[str] | None) -> None:
        self.path = path
        self.known_agents = known_agents
        self.findings: list[Finding] = []

    def add(self, node: yaml.Node, code: str, message: str, severity: str = "error") -> None:
        mark = node.start_mark
        path = getattr(mark, "path", None) or self.path  # a Markdown file's (sources.Place)
        self.findings.append(Finding(path, mark.line + 1, mark.column + 1, severity, code, message))

    # -- shapes ----------------------------------------------------------------------

    def mapping(
        self, node: yaml.Node, allowed: tuple[str, ...], where: str
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """The mapping's entries by key, with unknown and duplicate keys reported."""
        entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR:
                self.not_text(key_node, f"keys of {where} must be plain names")
                continue
            key = key_node.value
            if key in entries:
                first = entries[key][0].start_mark.line + 1
                self.add(
                    key_node,
                    "duplicate-key",
                    f"{where} has the key '{key}' twice (first on line {first})",
                )
                continue
            if key not in allowed:
                self.add(
                    key_node,
                    "unknown-key",
                    f"unknown key '{key}' in {where}{_did_you_mean(key, allowed)}",
                )
                continue
            entries[key] = (key_node, value_node)
        return entries

    def require(self, node: yaml.Node, entries: dict, keys: tuple[str, ...], where: str) -> None:  # type: ignore[type-arg]
        for key in keys:
            if key not in entries:
                self.add(node, "missing-key", f"{where} needs '{key}'")

    def string(self, entries: dict, key: str, default: str | None = None) -> str | None:  # type: ignore[type-arg]
        if key not in entries:
            return default
        node = entries[key][1]
        if not isinstance(node, yaml.ScalarNode) or node.tag != _STR:
            self.not_text(node, f"'{key}' must be text")
            return default
        return node.value

    def not_text(self, node: yaml.Node, what: str) -> None:
        """A value that is not text; a plain one YAML 1.1 reads otherwise is told to quote."""
        if _reads_as_other_than_text(node):
            self.add(
                node,
                "needs-quotes",
                f"{what}, but YAML 1.1 reads {node.value} as {_kind(node)}; "
                f'quote it: "{node.value}"',
            )
        else:
            self.add(node, "wrong-type", f"{what}, not {_kind(node)}")

    def boolean(self, entries: dict, key: str) -> bool:  # type: ignore[type-arg]
        if key not in entries:
            return False
        node = entries[key][1]
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:bool":
            return node.value.lower() in ("true", "yes", "on", "y")
        self.add(node, "wrong-type", f"'{key}' must be true or false, not {_kind(node)}")
        return False

    def enum(self, entries: dict, key: str, default: str | None = None) -> str | None:  # type: ignore[type-arg]
        allowed = ENUMS[key]
        node = entries[key][1] if key in entries else None
        if _reads_as_other_than_text(node) and node.value not in allowed:
            # `approval: no` is a wrong choice before it is a quoting problem.
            self.add(
                node,
                "invalid-value",
                f"'{key}' must be one of {', '.join(allowed)}, not '{node.value}'",
            )
            return None
        value = self.string(entries, key, default)
        if key in entries and value is not None and value not in allowed:
            self.add(
                entries[key][1],
                "invalid-value",
                f"'{key}' must be one of {', '.join(allowed)}, not '{value}'"
                + _did_you_mean(value, allowed),
            )
            return None
        return value

    def sequence(self, entries: dict, key: str) -> list[yaml.Node]:  # type: ignore[type-arg]
        if key not in entries:
            return []
        node = entries[key][1]
        if _is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.add(node, "wrong-type", f"'{key}' must be a list, not {_kind(node)}")
            return []
        return list(node.value)

    def strings(self, entries: dict, key: str) -> list[tuple[str, yaml.Node]]:  # type: ignore[type-arg]
        values = []
        for item in self.sequence(entries, key):
            if isinstance(item, yaml.ScalarNode) and item.tag == _STR:
                values.append((item.value, item))
            else:
                self.not_text(item, f"items of '{key}' must be text")
        return values

    def item_id(self, entries: dict, kind: str) -> str | None:  # type: ignore[type-arg]
        value = self.string(entries, "id")
        if value is not None and not ITEM_ID.match(value):
            self.add(
                entries["id"][1],
                "invalid-id",
                f"{kind} id '{value}' must start with a letter and hold only letters, digits, "
                "'_', '.' and '-' (at most 64)",
            )
        return value


def check_spec(
    node: yaml.Node, path: str, default_id: str, known_agents: Collection[str] | None
) -> tuple[Spec | None, list[Finding]]:
    check = _Checker(path, known_agents)
    if not isinstance(node, yaml.MappingNode):
        check.add(
            node,
            "not-a-mapping",
            f"a spec must be a mapping of keys (id, title, phase, …), not {_kind(node)}",
        )
        return None, check.findings
    top = check.mapping(node, TOP_KEYS, "the spec")
    check.require(node, top, REQUIRED_TOP_KEYS, "the spec")
    spec_id = check.string(top, "id", default_id) or default_id
    if not SPEC_ID.match(spec_id):
        where = top["id"][1] if "id" in top else node
        check.add(
            where,
            "invalid-id",
            f"spec id '{spec_id}' must be lowercase letters, digits and '-' (at most 64)"
            + ("" if "id" in top else "; it comes from the file name, so set 'id:'"),
        )
    phase = check.enum(top, "phase")
    approval = check.enum(top, "approval", "none")
    agent = check.string(top, "agent", "default") or "default"
    _check_agent(check, top, agent)
    requirements = _requirements(check, top)
    task_entries = _tasks(check, top, {r.id for r in requirements})
    tasks = [task for task, _ in task_entries]
    tasks_node = top["tasks"][1] if "tasks" in top else None
    tasks_misshapen = tasks_node is not None and not isinstance(tasks_node, yaml.SequenceNode)
    if phase == "tasks" and not tasks and (not tasks_misshapen or _is_null(tasks_node)):
        check.add(
            top["tasks"][1] if "tasks" in top else node,
            "no-tasks",
            "a spec in the 'tasks' phase needs at least one task",
        )
    if phase in PHASES_BEFORE_TASKS and tasks:
        check.add(
            top["tasks"][0],
            "tasks-not-worked",
            f"the spec is in the '{phase}' phase: its {len(tasks)} task(s) will not be worked "
            "until 'phase: tasks'",
            "warning",
        )
    spec = Spec(
        id=spec_id,
        title=check.string(top, "title", "") or "",
        phase=phase or "explore",
        path=path,
        owner=check.string(top, "owner"),
        labels=tuple(v for v, _ in check.strings(top, "labels")),
        approval=approval or "none",
        agent=agent,
        context=check.string(top, "context", "") or "",
        design=check.string(top, "design", "") or "",
        requirements=tuple(requirements),
        tasks=tuple(tasks),
    )
    _check_limits(check, top, spec, task_entries)
    return spec, check.findings


def _check_limits(
    check: _Checker,
    top: dict,  # type: ignore[type-arg]
    spec: Spec,
    task_entries: list[tuple[SpecTask, dict]],  # type: ignore[type-arg]
) -> None:
    """What GitHub or the database would refuse at sync (specs/limits.py), told here."""
    room = limits.title_room(len(spec.tasks))
    if "title" in top and len(limits.one_line(spec.title)) > room:
        issues = "'Spec: …'"
        if len(spec.tasks) > 100:
            issues = "'Spec: …' and ' (part N)' past 100 tasks"
        check.add(
            top["title"][1],
            "too-long",
            f"the spec's title is {len(limits.one_line(spec.title))} characters; its issues "
            f"are titled {issues} and GitHub allows {limits.ISSUE_TITLE}: shorten it to "
            f"{room} or less",
        )
    for item in _plain_texts(top, "labels"):
        if len(item.value) > limits.LABEL:
            check.add(
                item,
                "too-long",
                f"the label '{item.value[:30]}…' is {len(item.value)} characters; GitHub allows "
                f"{limits.LABEL} in a label's name",
            )
    if spec.owner is not None and "owner" in top and not limits.LOGIN.match(spec.owner):
        login = spec.owner.strip().lstrip("@")
        hint = f"; did you mean '{login}'?" if limits.LOGIN.match(login) else ""
        check.add(
            top["owner"][1],
            "invalid-value",
            "'owner' must be a GitHub login (letters, digits and single '-', at most 39 "
            f"characters), not '{spec.owner}'{hint}",
        )
    for agent, entries in [(spec.agent, top), *((t.agent, e) for t, e in task_entries)]:
        if agent is not None and "agent" in entries and len(agent) > limits.AGENT:
            check.add(
                entries["agent"][1],
                "too-long",
                f"an agent profile's name is at most {limits.AGENT} characters, not {len(agent)}",
            )
    if len(spec.tasks) > limits.TASKS:
        check.add(
            top["tasks"][0],
            "too-many-tasks",
            f"the spec has {len(spec.tasks):,} tasks; GitHub holds {limits.TASKS:,} issues under "
            "one tracking issue (100 parts of 100): split it into several specs",
        )
    _check_bodies(check, top, spec, task_entries)


def _check_bodies(
    check: _Checker,
    top: dict,  # type: ignore[type-arg]
    spec: Spec,
    task_entries: list[tuple[SpecTask, dict]],  # type: ignore[type-arg]
) -> None:
    """A task's issue holds its title, description, the requirements it serves and its
    dependencies, then the spec's context and design folded; GitHub refuses a body past
    65,536 characters. The task's own text must fit; the shared context and design are
    cut in its issue when they do not (a warning: the spec file keeps them whole)."""
    requirements = {r.id: r for r in spec.requirements}
    frame = limits.TICKET_BODY_FRAME + 2 * len(check.path) + 3 * len(spec.id)
    largest: tuple[int, SpecTask | None] = (0, None)
    for task, entries in task_entries:
        title = limits.one_line(limits.TICKET_TITLE.format(key=task.id, title=task.title))
        if "title" in entries and len(title) > limits.ISSUE_TITLE:
            check.add(
                entries["title"][1],
                "too-long",
                f"task {task.id}'s title is {len(limits.one_line(task.title))} characters; its "
                f"issue's title '{task.id}: …' would be {len(title)}, and GitHub allows "
                f"{limits.ISSUE_TITLE}: shorten it to {limits.ISSUE_TITLE - len(task.id) - 2} or "
                "less (the rest can go in its description)",
            )
        own = frame + 3 * len(task.id) + limits.shown_length(task.description)
        for key in task.requirements:
            if requirement := requirements.get(key):
                own += limits.PER_REQUIREMENT + len(key) + limits.shown_length(requirement.text)
                own += sum(
                    limits.PER_CRITERION + len(c.id) + limits.shown_length(c.text)
                    for c in requirement.acceptance
                )
        own += sum(limits.PER_DEPENDENCY + len(d) for d in task.depends_on)
        if own > limits.ISSUE_BODY:
            where = entries.get("description") or entries.get("id") or entries.get("title")
            if where is not None:
                check.add(
                    where[1],
                    "too-long",
                    f"task {task.id}'s issue would take about {own:,} characters with its "
                    f"description ({len(task.description):,}) and the requirements it serves; "
                    f"GitHub allows {limits.ISSUE_BODY:,} in an issue: shorten the description, "
                    "or split the task",
                )
        elif own > largest[0]:
            largest = (own, task)
    background = limits.shown_length(spec.context) + limits.shown_length(spec.design)
    shared = top.get("design") or top.get("context")
    too_long = largest[0] + background > limits.ISSUE_BODY
    if largest[1] is not None and shared is not None and too_long:
        check.add(
            shared[1],
            "body-cut",
            f"the context and design ({background:,} characters) are shown, folded, in every "
            f"task's issue; with the text of task {largest[1].id} they pass GitHub's "
            f"{limits.ISSUE_BODY:,} characters, so such issues show them cut (the spec file "
            "keeps them whole)",
            "warning",
        )


def _plain_texts(entries: dict, key: str) -> list[yaml.ScalarNode]:  # type: ignore[type-arg]
    node = entries[key][1] if key in entries else None
    if not isinstance(node, yaml.SequenceNode):
        return []
    return [i for i in node.value if isinstance(i, yaml.ScalarNode) and i.tag == _STR]


def _reads_as_other_than_text(node: yaml.Node | None) -> TypeGuard[yaml.ScalarNode]:
    """An unquoted yes, off, 2024-01-01, 1:30 …: YAML 1.1 does not read it as text."""
    return (
        isinstance(node, yaml.ScalarNode)
        and not node.style  # plain: None from PyYAML, "" from libyaml
        and node.tag in _SURPRISING_TAGS
    )


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _check_agent(check: _Checker, entries: dict, agent: str | None) -> None:  # type: ignore[type-arg]
    if check.known_agents is None or agent is None or "agent" not in entries:
        return
    if agent != MANUAL_AGENT and agent not in check.known_agents:
        known = [*sorted(check.known_agents), MANUAL_AGENT]
        check.add(
            entries["agent"][1],
            "unknown-agent",
            f"no agent profile named '{agent}'; the operator defines: {', '.join(known)}"
            f"{_did_you_mean(agent, known)}",
        )


def _requirements(check: _Checker, top: dict) -> list[Requirement]:  # type: ignore[type-arg]
    requirements: list[Requirement] = []
    seen: dict[str, tuple[str, int]] = {}
    criteria_seen: dict[str, tuple[str, int]] = {}
    for node in check.sequence(top, "requirements"):
        if not isinstance(node, yaml.MappingNode):
            check.add(
                node,
                "wrong-type",
                f"a requirement must be a mapping with id and text, not {_kind(node)}",
            )
            continue
        entries = check.mapping(node, REQUIREMENT_KEYS, "a requirement")
        check.require(node, entries, REQUIRED_KEYS["requirement"], "a requirement")
        requirement_id = check.item_id(entries, "requirement")
        text = check.string(entries, "text", "") or ""
        _unique(check, entries, requirement_id, seen, "requirement")
        if text and not is_ears(text):
            check.add(
                entries["text"][1],
                "not-ears",
                f"requirement {requirement_id} is not in an EARS form; use one of: {EARS_PATTERNS}",
                "warning",
            )
        criteria = []
        for criterion_node in check.sequence(entries, "acceptance"):
            if not isinstance(criterion_node, yaml.MappingNode):
                check.add(
                    criterion_node,
                    "wrong-type",
                    "an acceptance criterion must be a mapping with id and text",
                )
                continue
            criterion = check.mapping(criterion_node, CRITERION_KEYS, "an acceptance criterion")
            check.require(
                criterion_node, criterion, REQUIRED_KEYS["criterion"], "an acceptance criterion"
            )
            criterion_id = check.item_id(criterion, "acceptance criterion")
            _unique(check, criterion, criterion_id, criteria_seen, "acceptance criterion")
            if criterion_id:
                criteria.append(
                    AcceptanceCriterion(criterion_id, check.string(criterion, "text", "") or "")
                )
        if requirement_id:
            requirements.append(Requirement(requirement_id, text, tuple(criteria)))
    return requirements


def _tasks(
    check: _Checker,
    top: dict,  # type: ignore[type-arg]
    requirement_ids: set[str],
) -> list[tuple[SpecTask, dict]]:  # type: ignore[type-arg]
    """The tasks, each with its entries (key → (key node, value node)) for positions."""
    tasks: list[tuple[SpecTask, dict]] = []  # type: ignore[type-arg]
    seen: dict[str, tuple[str, int]] = {}
    references: list[tuple[str, list[tuple[str, yaml.Node]]]] = []
    for node in check.sequence(top, "tasks"):
        if not isinstance(node, yaml.MappingNode):
            check.add(
                node, "wrong-type", f"a task must be a mapping with id and title, not {_kind(node)}"
            )
            continue
        entries = check.mapping(node, TASK_KEYS, "a task")
        check.require(node, entries, REQUIRED_KEYS["task"], "a task")
        task_id = check.item_id(entries, "task")
        first_use = _unique(check, entries, task_id, seen, "task")
        served = check.strings(entries, "requirements")
        for requirement, ref in served:
            if requirement not in requirement_ids:
                check.add(
                    ref,
                    "unknown-reference",
                    f"task {task_id} serves requirement '{requirement}', "
                    "which the spec does not define"
                    f"{_did_you_mean(requirement, requirement_ids)}",
                )
        depends_on = check.strings(entries, "depends_on")
        files = _files(check, entries)
        agent = check.string(entries, "agent")
        _check_agent(check, entries, agent)
        if task_id and first_use:  # a duplicate's dependencies would only repeat its error
            references.append((task_id, depends_on))
            task = SpecTask(
                id=task_id,
                title=check.string(entries, "title", "") or "",
                description=check.string(entries, "description", "") or "",
                priority=check.enum(entries, "priority", "medium") or "medium",
                requirements=tuple(v for v, _ in served),
                depends_on=tuple(v for v, _ in depends_on),
                agent=agent,
                done=check.boolean(entries, "done"),
                files=files,
                parallel=check.boolean(entries, "parallel"),
                attempts=_attempts(check, entries),
                pick=check.enum(entries, "pick"),
            )
            tasks.append((task, entries))
    _check_dependencies(check, references, set(seen))
    return tasks


def _attempts(check: _Checker, entries: dict) -> int | None:  # type: ignore[type-arg]
    """A task's `attempts:`: how many runs of its agent, 1 to MAX_ATTEMPTS."""
    if "attempts" not in entries:
        return None
    node = entries["attempts"][1]
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:int":
        value = int(node.value)
        if 1 <= value <= MAX_ATTEMPTS:
            return value
    check.add(node, "wrong-type", f"'attempts' must be a whole number from 1 to {MAX_ATTEMPTS}")
    return None


def _files(check: _Checker, entries: dict) -> tuple[str, ...]:  # type: ignore[type-arg]
    """A task's `files:`: globs from the repository's root, never outside it."""
    kept = []
    for glob, node in check.strings(entries, "files"):
        if glob.startswith("/") or ".." in glob.split("/") or not glob.strip("/ "):
            check.add(
                node,
                "invalid-path",
                f"'{glob}' is not a path in the repository: write it from the repository's "
                "root, without '/' first or '..', e.g. src/api/*.py",
            )
        else:
            kept.append(glob)
    return tuple(kept)


def _check_dependencies(
    check: _Checker, references: list[tuple[str, list[tuple[str, yaml.Node]]]], task_ids: set[str]
) -> None:
    graph: dict[str, list[str]] = {}
    first_node: dict[str, yaml.Node] = {}
    for task_id, depends_on in references:
        for target, node in depends_on:
            if target == task_id:
                check.add(node, "self-dependency", f"task {task_id} depends on itself")
            elif target not in task_ids:
                check.add(
                    node,
                    "unknown-reference",
                    f"task {task_id} depends on '{target}', which is not a task of this spec"
                    f"{_did_you_mean(target, task_ids)}",
                )
            else:
                graph.setdefault(task_id, []).append(target)
                first_node.setdefault(task_id, node)
    for cycle in _cycles(graph):
        names = " → ".join([*cycle, cycle[0]])
        check.add(first_node[cycle[0]], "dependency-cycle", f"dependency cycle: {names}")


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Each elementary cycle found by depth-first search, once, starting at its smallest id.

    Iterative: a chain of thousands of tasks listed head first is as deep as it is long.
    """
    found: dict[tuple[str, ...], list[str]] = {}
    done: set[str] = set()
    for root in sorted(graph):
        if root in done:
            continue
        path, on_path = [root], {root: 0}
        pending = [iter(graph.get(root, []))]
        while pending:
            target = next(pending[-1], None)
            if target is None:
                done.add(path[-1])
                del on_path[path.pop()]
                pending.pop()
            elif target in on_path:
                cycle = path[on_path[target] :]
                start = cycle.index(min(cycle))
                rotated = cycle[start:] + cycle[:start]
                found.setdefault(tuple(rotated), rotated)
            elif target not in done:
                on_path[target] = len(path)
                path.append(target)
                pending.append(iter(graph.get(target, [])))
    return list(found.values())


def _unique(
    check: _Checker, entries: dict, value: str | None, seen: dict[str, tuple[str, int]], kind: str
) -> bool:  # type: ignore[type-arg]
    """Whether the id is new; a duplicate is told at its second use, naming the first."""
    if value is None:
        return True
    node = entries["id"][1]
    path = getattr(node.start_mark, "path", None) or check.path
    if value in seen:
        first_path, first_line = seen[value]
        where = f"on line {first_line}"
        if first_path != path:
            where = f"in {first_path} line {first_line}"
        check.add(node, "duplicate-id", f"{kind} id '{value}' is already used {where}")
        return False
    seen[value] = (path, node.start_mark.line + 1)
    return True


def _did_you_mean(value: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _kind(node: Any) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    tag = node.tag.rsplit(":", 1)[-1]
    return {
        "str": "text",
        "int": "a number",
        "float": "a number",
        "bool": "true/false",
        "null": "empty",
        "timestamp": "a date",
    }.get(tag, tag)
