"""spec-kit and Kiro specs on their way to issues: which specs a push changes, and
what a merge would do when a tasks.md is regenerated."""

from __future__ import annotations

from typing import Any

import pytest

from bot.events.handlers.push import changed_spec_paths
from bot.repo_config import RepoConfig, parse_repo_config
from bot.review import plan_report
from bot.sync.plan import Plan, diff_spec
from specs.validate import validate_files
from storage.models import IssueState, Spec, SpecTask, Ticket

TASKS = """# Tasks: Exports

## Phase 1: Setup

- [ ] T001 Scaffold the exporter
- [ ] T002 Write CSV
- [ ] T003 Write JSON
"""


def push(added=(), modified=(), removed=()) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    commit = {"added": list(added), "modified": list(modified), "removed": list(removed)}
    return {"commits": [commit]}


def test_a_change_to_spec_md_alone_resyncs_its_feature() -> None:
    config = RepoConfig()
    assert changed_spec_paths(push(modified=["specs/007-exports/spec.md"]), config) == (
        ["specs/007-exports/"],
        [],
    )
    assert changed_spec_paths(push(modified=[".kiro/specs/auth/requirements.md"]), config) == (
        [".kiro/specs/auth/"],
        [],
    )


def test_side_by_side_in_specs_yaml_specs_and_features_are_told_apart() -> None:
    payload = push(
        added=["specs/login.yaml", "specs/007-exports/tasks.md", "specs/007-exports/plan.md"],
        modified=["specs/007-exports/contracts/export.yaml", "specs/007-exports/research.md"],
        removed=["specs/old.yaml"],
    )
    assert changed_spec_paths(payload, RepoConfig()) == (
        ["specs/007-exports/", "specs/login.yaml"],
        ["specs/old.yaml"],
    )


def test_a_deleted_feature_file_is_read_again_not_taken_for_the_feature_gone() -> None:
    # Whether the feature is gone depends on its other files: its sync finds out.
    assert changed_spec_paths(push(removed=["specs/007-exports/tasks.md"]), RepoConfig()) == (
        ["specs/007-exports/"],
        [],
    )


def test_formats_leave_out_what_is_not_read() -> None:
    config, error = parse_repo_config(b"formats: [yaml]\n")
    assert error is None
    payload = push(added=["specs/007-exports/tasks.md", ".kiro/specs/a/tasks.md", "specs/a.yaml"])
    assert changed_spec_paths(payload, config) == (["specs/a.yaml"], [])
    assert config.spec_roots == ["specs/"]
    assert RepoConfig().spec_roots == ["specs/", ".kiro/specs/"]
    assert parse_repo_config(b"formats: [kiro]\n")[0].spec_roots == [".kiro/specs/"]


@pytest.mark.parametrize(
    ("text", "formats", "write_back"),
    [
        (b"", ("yaml", "spec-kit", "kiro"), "pull_request"),
        (b"formats: [spec-kit, yaml, spec-kit]\n", ("spec-kit", "yaml"), "pull_request"),
        (b"write_back: commit\n", ("yaml", "spec-kit", "kiro"), "commit"),
        (b"write_back: off\n", ("yaml", "spec-kit", "kiro"), "off"),  # YAML 1.1: false
        (b"write_back: 'off'\n", ("yaml", "spec-kit", "kiro"), "off"),
    ],
)
def test_formats_and_write_back_settings(text: bytes, formats, write_back) -> None:  # type: ignore[no-untyped-def]
    config, error = parse_repo_config(text)
    assert error is None
    assert (config.formats, config.write_back) == (formats, write_back)
    assert RepoConfig.from_dict(config.as_dict()) == config


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b"formats: [markdown]\n", "formats must list one or more of yaml, spec-kit, kiro"),
        (b"formats: []\n", "formats must list one or more"),
        (b"write_back: push\n", "write_back must be one of pull_request, commit, off"),
    ],
)
def test_bad_formats_or_write_back_fall_back_to_defaults(text: bytes, reason: str) -> None:
    config, error = parse_repo_config(text)
    assert config == RepoConfig() and error is not None and reason in error


def recorded(tasks: str) -> Spec:
    """The spec as a sync recorded it from this tasks.md, every task with an open issue."""
    [(spec_file, _)] = validate_files({"specs/007-exports/tasks.md": tasks}).values()
    assert spec_file is not None
    spec = Spec(key=spec_file.id, path=spec_file.path, title=spec_file.title, labels=[])
    spec.tracking_issue_number = 1
    for position, task in enumerate(spec_file.tasks):
        row = SpecTask(
            key=task.id,
            title=task.title,
            description=task.description,
            priority=task.priority,
            requirement_keys=list(task.requirements),
            depends_on=list(task.depends_on),
            position=position,
        )
        spec.tasks.append(row)
        spec.tickets.append(
            Ticket(spec_task=row, issue_number=10 + position, state=IssueState.OPEN)
        )
    return spec


def plan_of(before: str, after: str) -> Plan:
    [(spec_file, _)] = validate_files({"specs/007-exports/tasks.md": after}).values()
    assert spec_file is not None
    return Plan(diffs=[diff_spec(recorded(before), spec_file, known_agents=())])


def test_regenerated_with_the_same_ids_the_merge_changes_no_issue() -> None:
    ticked = TASKS.replace("- [ ] T001", "- [x] T001") + "\n<!-- regenerated -->\n"
    [diff] = plan_of(TASKS, ticked).diffs
    assert not diff.writes_anything and diff.renumbered == []


def test_a_renumbering_is_told_in_the_plan_before_the_merge() -> None:
    renumbered = TASKS.replace("T003 Write JSON", "T004 Write JSON").replace(
        "- [ ] T002 Write CSV", "- [ ] T002 Write CSV\n- [ ] T003 Write XML"
    )
    plan = plan_of(TASKS, renumbered)
    [diff] = plan.diffs
    assert [(r.old_key, r.new_key, r.issue_number) for r in diff.renumbered] == [
        ("T003", "T004", 12)
    ]
    summary = plan_report.summary(plan, "Plan")
    assert "**Renumbered?** 1 task would get a new issue" in summary
    assert "  - `T003` → `T004` Write JSON: #12 gets another task's title" in summary
    gone = plan_of(TASKS, TASKS.replace("T003 Write JSON", "T009 Write JSON")).diffs[0]
    assert [(r.old_key, r.new_key, r.retitled) for r in gone.renumbered] == [
        ("T003", "T009", False)
    ]
    assert "  - `T003` → `T009` Write JSON: #12 closes" in plan_report.summary(
        Plan(diffs=[gone]), "Plan"
    )
