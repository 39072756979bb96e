"""Immutable model of a spec file, as the rest of specbridge sees it."""

from __future__ import annotations

from dataclasses import dataclass, field

PHASES = ("explore", "requirements", "design", "tasks")
PRIORITIES = ("critical", "high", "medium", "low")
APPROVALS = ("none", "required")
# How one of a task's several attempts is kept: the first to pass its checks is marked
# ready for review, or people pick.
PICKS = ("first", "manual")
MANUAL_AGENT = "manual"


@dataclass(frozen=True)
class Finding:
    """One problem found in a spec file; line and column are 1-based."""

    path: str
    line: int
    column: int
    severity: str  # "error" | "warning"
    code: str  # stable, e.g. "unknown-key", "dependency-cycle"
    message: str

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


@dataclass(frozen=True)
class AcceptanceCriterion:
    id: str
    text: str


@dataclass(frozen=True)
class Requirement:
    id: str
    text: str
    acceptance: tuple[AcceptanceCriterion, ...] = ()


@dataclass(frozen=True)
class SpecTask:
    id: str
    title: str
    description: str = ""
    priority: str = "medium"
    requirements: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    agent: str | None = None  # None: the spec's agent
    # Ticked in its file: `done: true` in YAML, `- [x]` in tasks.md. The bot writes it
    # back from the state; it changes no issue.
    done: bool = False
    # The files it touches, as globs from the repository's root; () when unknown.
    files: tuple[str, ...] = ()
    # Safe to run beside the spec's other tasks (spec-kit's `[P]`) though its files are unknown.
    parallel: bool = False
    # Runs of its agent, each on its own branch and pull request (None: the profile's).
    attempts: int | None = None
    # Which attempt is marked ready (PICKS; None: the profile's).
    pick: str | None = None


@dataclass(frozen=True)
class Spec:
    id: str
    title: str
    phase: str
    path: str = ""
    owner: str | None = None
    labels: tuple[str, ...] = ()
    approval: str = "none"
    agent: str = "default"
    context: str = ""
    design: str = ""
    requirements: tuple[Requirement, ...] = ()
    tasks: tuple[SpecTask, ...] = field(default=())

    @property
    def produces_tickets(self) -> bool:
        return self.phase == "tasks"

    def requirement(self, requirement_id: str) -> Requirement | None:
        return next((r for r in self.requirements if r.id == requirement_id), None)
