"""Where a planned spec's files go, in each format, and what the planner is told.

One phase per run: requirements, then design, then tasks. The spec's place is chosen
by specbridge, not by the planner: a YAML file `<specs_path><name>.yaml`, a spec-kit
feature folder `specs/NNN-<name>/`, or a Kiro folder `.kiro/specs/<name>/`. The
planner may write there and nowhere else (bot/agents/planning.py checks it).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from specs.importers import slug

PHASES = ("requirements", "design", "tasks")
# Where the planner writes its questions when the idea is too unclear to write a phase
# (never committed); spec-kit's own marker in a file it wrote asks the same.
QUESTIONS_FILE = ".specbridge-questions.md"
QUESTION_NAMES = {"questions.md", "questions.txt"}
CLARIFY = re.compile(r"\[NEEDS CLARIFICATION:?\s*([^\]]*)\]")
_FEATURE_NUMBER = re.compile(r"^(\d+)-")

# The files each phase writes, in the native formats (a YAML spec is one file).
_NATIVE_FILES = {
    "spec-kit": {
        "requirements": ("spec.md",),
        "design": ("plan.md", "data-model.md", "contracts/"),
        "tasks": ("tasks.md",),
    },
    "kiro": {
        "requirements": ("requirements.md",),
        "design": ("design.md",),
        "tasks": ("tasks.md",),
    },
}


@dataclass(frozen=True)
class SpecLayout:
    format: str  # yaml | spec-kit | kiro
    path: str  # as specbridge records the spec: the YAML file, or the folder with a slash

    def may_write(self, path: str) -> bool:
        """Whether the planner may change `path` (relative to the repository's root)."""
        if self.format == "yaml":
            return path == self.path
        return path.startswith(self.path) and ".." not in path.split("/")

    def files(self, phase: str) -> tuple[str, ...]:
        """What a phase writes (a folder ends with a slash)."""
        if self.format == "yaml":
            return (self.path,)
        return tuple(self.path + name for name in _NATIVE_FILES[self.format][phase])

    def is_phase_file(self, path: str, phase: str) -> bool:
        """Whether `path` is one of the documents `phase` writes (or inside its folder)."""
        return any(path == f or (f.endswith("/") and path.startswith(f)) for f in self.files(phase))

    def earlier_files(self, phase: str) -> tuple[str, ...]:
        """The files of the phases before `phase` (a YAML spec: its one file)."""
        if self.format == "yaml":
            return () if phase == "requirements" else (self.path,)
        before = PHASES[: PHASES.index(phase)]
        return tuple(f for p in before for f in self.files(p) if not f.endswith("/"))


def new_layout(
    fmt: str, title: str, specs_path: str, checkout: Path, taken: Collection[str] = ()
) -> SpecLayout:
    """A place for a new spec named after its title, taken by nothing in the checkout
    nor by another idea's spec still being planned (`taken`: their paths)."""
    name = slug(title)[:48].strip("-") or "idea"
    if fmt == "yaml":
        candidates = (f"{specs_path}{name}{n}.yaml" for n in _suffixes())
    elif fmt == "spec-kit":
        planned = [
            int(m[1]) for p in taken if (m := _FEATURE_NUMBER.match(p.removeprefix("specs/")))
        ]
        number = 1 + max([*_feature_numbers(checkout / "specs"), *planned], default=0)
        candidates = (f"specs/{number:03d}-{name}{n}/" for n in _suffixes())
    else:
        candidates = (f".kiro/specs/{name}{n}/" for n in _suffixes())
    path = next(p for p in candidates if not (checkout / p).exists() and p not in taken)
    return SpecLayout(fmt, path)


def _suffixes() -> list[str]:
    return ["", *(f"-{n}" for n in range(2, 100))]


def _feature_numbers(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    return [int(m[1]) for p in folder.iterdir() if (m := _FEATURE_NUMBER.match(p.name))]


def what_to_write(layout: SpecLayout, phase: str, spec_id: str, title: str) -> str:
    """The phase's instructions, in the repository's format."""
    if layout.format == "yaml":
        return _YAML[phase].format(path=layout.path, id=spec_id, title=title)
    return _NATIVE[layout.format][phase].format(folder=layout.path, title=title)


_YAML = {
    "requirements": """\
Write the file `{path}`, a specbridge spec in YAML, with the requirements only:

```yaml
id: {id}
title: {title}
phase: requirements
context: |
  What exists today that the idea touches, found while exploring.
requirements:
  - id: REQ-1
    text: WHEN <trigger> THE SYSTEM SHALL <response>   # EARS
    acceptance:
      - id: AC-1
        text: <how a person checks it>
```""",
    "design": """\
Add the design to `{path}` (keep its id, title, context and requirements as they are):
set `phase: design` and add `design: |`, Markdown: the architecture, the data model,
the API, the risks. No tasks yet.""",
    "tasks": """\
Add the tasks to `{path}` (keep everything it says): set `phase: tasks` and add
`tasks:`, each with `id` (TSK-1, ...), `title`, `description`, `priority`
(critical | high | medium | low), `requirements` (the REQ ids it serves) and
`depends_on` (the task ids it waits for). Small tasks, each one pull request.""",
}
_NATIVE = {
    "spec-kit": {
        "requirements": """\
Write `{folder}spec.md` as spec-kit's spec template does: `# Feature Specification:
{title}`, `## User Scenarios & Testing` with user stories (`### User Story 1 - ...
(Priority: P1)`) and their acceptance scenarios, `## Requirements` with
`### Functional Requirements` (`- **FR-001**: System MUST ...`), key entities and
success criteria. Requirements only: no plan, no tasks.""",
        "design": """\
Write the plan in `{folder}plan.md` (`# Implementation Plan: {title}`: technical
context, structure, decisions), and where they help `{folder}data-model.md` and API
contracts under `{folder}contracts/`. No tasks yet.""",
        "tasks": """\
Write `{folder}tasks.md` as spec-kit's tasks template does: `# Tasks: {title}`,
phases (`## Phase 1: Setup`, ...), one task a line: `- [ ] T001 [P] [US1] what, in
which file`.""",
    },
    "kiro": {
        "requirements": """\
Write `{folder}requirements.md` as Kiro does: `# Requirements Document`, an
introduction, then `### Requirement 1` with a user story (`**User Story:** As a ...,
I want ..., so that ...`) and `#### Acceptance Criteria` in EARS (`1. WHEN ... THEN
the system SHALL ...`).""",
        "design": """\
Write `{folder}design.md` as Kiro does: `# Design Document` with overview,
architecture, components and interfaces, data models, error handling, testing.""",
        "tasks": """\
Write `{folder}tasks.md` as Kiro does: a checklist of numbered tasks (`- [ ] 1. ...`,
sub-tasks `- [ ] 1.1 ...`), each ending with `_Requirements: 1.1, 2.3_`.""",
    },
}


def is_questions_file(path: str) -> bool:
    """A file of questions the planner wrote instead of the phase: specbridge's, or a
    `questions.md` (or .txt) wherever it put it."""
    return path == QUESTIONS_FILE or path.rsplit("/", 1)[-1].lower() in QUESTION_NAMES


def questions_in(texts: dict[str, str]) -> list[str]:
    """The questions the planner left: each line of a questions file (its path starts
    with QUESTIONS_FILE), and each `[NEEDS CLARIFICATION: ...]` marker in the others."""
    found: list[str] = []
    for path, text in texts.items():
        if path.startswith(QUESTIONS_FILE):
            found += [
                q for line in text.splitlines() if (q := line.strip().lstrip("-*0123456789. "))
            ]
        else:
            found += [m.strip() or "(no question given)" for m in CLARIFY.findall(text)]
    return list(dict.fromkeys(found))
