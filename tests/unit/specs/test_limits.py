"""A spec that validates fits GitHub and the database: what they would refuse at sync
is refused when the spec is read, at the line to change (specs/limits.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import String

from specs import limits
from specs.load import load_spec
from specs.validate import validate_files
from storage import models


def findings_of(text: str) -> list[tuple[int, str, str]]:
    _, findings = load_spec(text, "specs/x.yaml")
    return [(f.line, f.severity, f.code) for f in findings]


def spec(title: str = "X", tasks: str = "  - {id: T1, title: Do}\n", extra: str = "") -> str:
    return f"title: {title}\nphase: tasks\n{extra}tasks:\n{tasks}"


def test_a_task_title_past_githubs_limit_is_refused_at_its_line() -> None:
    assert findings_of(spec(tasks=f"  - id: T1\n    title: {'x' * 600}\n")) == [
        (5, "error", "too-long")
    ]
    _, [finding] = load_spec(spec(tasks=f"  - id: T1\n    title: {'x' * 600}\n"), "s.yaml")
    assert "its issue's title 'T1: …' would be 604" in finding.message
    assert "shorten it to 252 or less" in finding.message
    fits = spec(tasks=f"  - id: T1\n    title: {'x' * 252}\n")  # "T1: " + 252 = 256
    assert findings_of(fits) == []


def test_a_spec_title_leaves_room_for_what_its_issues_add() -> None:
    assert findings_of(spec(title="t" * 250)) == []
    assert findings_of(spec(title="t" * 251)) == [(1, "error", "too-long")]
    many = "".join(f"  - {{id: T{n}, title: Do}}\n" for n in range(101))
    assert findings_of(spec(title="t" * 239, tasks=many)) == []
    assert findings_of(spec(title="t" * 240, tasks=many)) == [(1, "error", "too-long")]


def test_labels_owners_and_agents_github_and_storage_cannot_hold() -> None:
    assert findings_of(spec(extra=f"labels: [ok, {'l' * 51}]\n")) == [(3, "error", "too-long")]
    _, [finding] = load_spec(spec(extra="owner: '@octocat'\n"), "s.yaml")
    assert (finding.code, finding.line) == ("invalid-value", 3)
    assert finding.message.endswith("did you mean 'octocat'?")
    assert findings_of(spec(extra=f"agent: {'a' * 129}\n")) == [(3, "error", "too-long")]


def test_a_body_past_githubs_limit_is_refused_and_shared_text_is_warned() -> None:
    big = "d" * 70_000
    text = spec(tasks=f"  - id: T1\n    title: Do\n    description: {big}\n")
    assert findings_of(text) == [(6, "error", "too-long")]
    text = spec(extra=f"design: {big}\n")
    assert findings_of(text) == [(3, "warning", "body-cut")]


def test_a_markdown_task_written_as_a_long_line_is_read_with_its_title_cut() -> None:
    """In tasks.md the line is the task: its opening becomes the title, cut at a
    sentence or clause within GitHub's 256 characters, and the whole line opens the
    description, so nothing is lost (a YAML `title:` that long is refused instead)."""
    line = "Wire the cache into the layout (research.md 1). " + "It must survive navigation. " * 12
    files = {".kiro/specs/x/tasks.md": f"- [ ] 1. Short\n- [ ] 2. {line}\n  - a detail\n"}
    [(spec_, findings)] = validate_files(files).values()
    assert spec_ is not None and findings == []
    task = spec_.tasks[1]
    assert len(f"{task.id}: {task.title}") <= limits.ISSUE_TITLE
    assert task.title.startswith("Wire the cache into the layout (research.md 1)")
    assert task.title.endswith("navigation…")
    assert task.description.startswith(line.strip())
    assert task.description.rstrip().endswith("- a detail")


def test_too_many_tasks_for_one_tracking_issue() -> None:
    many = "".join(f"  - {{id: T{n}, title: Do}}\n" for n in range(limits.TASKS + 1))
    found = findings_of(spec(tasks=many))
    assert found == [(3, "error", "too-many-tasks")]


@pytest.mark.parametrize(
    ("column", "longest"),
    [
        (models.Spec.__table__.c.key, limits.SPEC_ID),
        (models.Spec.__table__.c.title, limits.title_room(0)),
        (models.Spec.__table__.c.owner, 39),
        (models.Spec.__table__.c.agent, limits.AGENT),
        (models.SpecTask.__table__.c.key, limits.ITEM_ID),
        (models.SpecTask.__table__.c.title, limits.ISSUE_TITLE - len("T: ")),
        (models.SpecTask.__table__.c.agent, limits.AGENT),
        (models.SpecRequirement.__table__.c.key, limits.ITEM_ID),
        (models.SpecAcceptanceCriterion.__table__.c.key, limits.ITEM_ID),
        (models.Ticket.__table__.c.agent_override, limits.AGENT),
        (models.Task.__table__.c.agent, limits.AGENT),
        (models.TaskProposal.__table__.c.task_key, limits.ITEM_ID),
    ],
)
def test_storage_columns_hold_what_the_validator_allows(column, longest: int) -> None:  # type: ignore[no-untyped-def]
    assert (
        not isinstance(column.type, String)
        or column.type.length is None
        or (column.type.length >= longest)
    ), f"{column} holds {column.type.length}, the validator allows {longest}"


def test_a_spec_path_of_any_length_can_be_recorded() -> None:
    assert models.Spec.__table__.c.path.type.length is None
