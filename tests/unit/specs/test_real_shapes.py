"""The shapes real spec-kit and Kiro folders take (docs/specs/spec-kit-and-kiro.md,
"What real folders look like"), each in a small file of our own: read as their authors
mean them, or refused with one finding at the line to change."""

from __future__ import annotations

import pytest

from specs.model import Finding, Spec
from specs.propose import CannotPropose, add_task
from specs.validate import validate_files

SPEC_KIT = "specs/007-exports/"
KIRO = ".kiro/specs/exports/"


def read(folder: str, **texts: str) -> tuple[Spec | None, list[Finding]]:
    files = {folder + name.replace("_", "."): text for name, text in texts.items()}
    [(spec, findings)] = validate_files(files).values()
    return spec, findings


def tasks_of(folder: str, **texts: str) -> dict[str, object]:
    spec, findings = read(folder, **texts)
    assert spec is not None, [f for f in findings if f.is_error]
    return {task.id: task for task in spec.tasks}


def places(findings: list[Finding]) -> list[tuple[str, int, str, str]]:
    return [(f.path.rsplit("/", 1)[-1], f.line, f.severity, f.code) for f in findings]


# -- spec-kit -------------------------------------------------------------------------


def test_bold_ids_and_their_separators_are_ids() -> None:
    tasks = tasks_of(
        SPEC_KIT,
        tasks_md="## Phase 1: Setup\n\n"
        "- [x] **T001** [SETUP] Scaffold the exporter\n"
        "- [ ] **T002**: Write CSV\n"
        "- [ ] **T003:** Write JSON\n"
        "- [ ] `T004` Write XML\n"
        "- [ ] **T005** · Write YAML\n",
    )
    assert list(tasks) == ["T001", "T002", "T003", "T004", "T005"]
    assert tasks["T001"].title == "[SETUP] Scaffold the exporter" and tasks["T001"].done
    assert [tasks[t].title for t in ("T002", "T003", "T004", "T005")] == [
        "Write CSV",
        "Write JSON",
        "Write XML",
        "Write YAML",
    ]
    assert tasks["T005"].depends_on == ("T004",)


def test_a_spec_of_bold_ids_only_is_in_the_tasks_phase() -> None:
    spec, _ = read(SPEC_KIT, tasks_md="- [ ] **T001** Build\n- [ ] **T002** Ship\n")
    assert spec is not None and spec.phase == "tasks" and len(spec.tasks) == 2


def test_a_task_inserted_with_a_letter_keeps_its_place() -> None:
    tasks = tasks_of(
        SPEC_KIT,
        tasks_md="- [ ] T001 Model\n- [ ] T002 Store\n- [ ] T002a Index it\n- [ ] T003 Serve\n",
    )
    assert list(tasks) == ["T001", "T002", "T002a", "T003"]
    assert tasks["T002a"].depends_on == ("T002",) and tasks["T003"].depends_on == ("T002a",)


def test_other_id_prefixes_are_ids() -> None:
    tasks = tasks_of(
        SPEC_KIT,
        tasks_md="## Phase 0: Planning\n\n- [x] P001 Analyze the tasks\n"
        "## Phase 1: Setup\n\n- [ ] T001 [EXECUTOR: MAIN] Scaffold\n"
        "- [ ] QG01 Type-check and build\n",
    )
    assert list(tasks) == ["P001", "T001", "QG01"]
    assert tasks["T001"].title == "[EXECUTOR: MAIN] Scaffold"  # a marker specbridge ignores
    assert tasks["T001"].depends_on == ("P001",)


def test_markers_in_backticks_and_stories_are_read() -> None:
    spec_md = "# Feature Specification: Exports\n\n### User Story 1 - Export (Priority: P1)\n"
    tasks = tasks_of(SPEC_KIT, spec_md=spec_md, tasks_md="- [ ] T001 `[api] [P] [US1]` Add it\n")
    assert tasks["T001"].title == "[api] Add it"
    assert tasks["T001"].requirements == ("US1",) and tasks["T001"].priority == "high"


def test_a_task_after_the_last_phase_is_under_its_own_heading() -> None:
    tasks = tasks_of(
        SPEC_KIT,
        tasks_md="## Phase 1: Setup\n\n- [ ] T001 Scaffold\n\n"
        "## Implementation Strategy\n\n- [ ] T002 Ship the MVP first\n",
    )
    assert tasks["T001"].description == "spec-kit phase: Setup"
    assert tasks["T002"].description == "spec-kit phase: Implementation Strategy"
    assert tasks["T002"].depends_on == ("T001",)  # a later section waits for the one before


def test_sub_phases_keep_one_phase_and_name_their_section() -> None:
    tasks = tasks_of(
        SPEC_KIT,
        tasks_md="## Phase 1: Core\n\n### Phase 1.1: Setup\n- [ ] T001 Scaffold\n"
        "### Phase 1.2: Tests\n- [ ] T002 [P] Test it\n- [ ] T003 Fix it\n"
        "## Phase 2: Polish\n- [ ] T004 [P] Docs\n",
    )
    assert tasks["T002"].description == "spec-kit phase: Core > Phase 1.2: Tests"
    assert tasks["T003"].depends_on == ("T002",)
    assert tasks["T004"].depends_on == ("T001", "T003")  # waits for the phase before it


def test_lines_below_a_task_are_its_description() -> None:
    tasks = tasks_of(
        SPEC_KIT,
        tasks_md="## Phase 1: Setup\n\n- [ ] T001 Add the column\n"
        "      in `schema.prisma`, no backfill\n  - [ ] generate the migration\n",
    )
    assert tasks["T001"].description.strip() == (
        "spec-kit phase: Setup\nin `schema.prisma`, no backfill\n[ ] generate the migration"
    )


def test_examples_in_code_blocks_and_front_matter_are_not_tasks() -> None:
    tasks = tasks_of(
        SPEC_KIT,
        tasks_md="---\ndescription: tasks\n---\n# Tasks: Exports\n\n```markdown\n"
        "- [ ] T900 An example\n```\n\n- [ ] T001 Real\n",
    )
    assert list(tasks) == ["T001"]


def test_heading_tasks_with_their_steps_as_checkboxes() -> None:
    tasks = tasks_of(
        SPEC_KIT,
        tasks_md="# Admin panel tasks\n\n## Phase 1: Foundation\n\n"
        "### T001 - Install dependencies\n"
        "- [x] Install the table library\n- [x] Check for conflicts\n\n"
        "### T002 - Row level security\n- [x] Add the policy\n- [ ] Test it\n\n"
        "## Task 3: Deploy ✅\n- **Status**: [X] Completed\n",
    )
    assert list(tasks) == ["T001", "T002", "TASK-3"]
    assert [t.done for t in tasks.values()] == [True, False, True]
    assert tasks["T002"].title == "Row level security"
    assert "[ ] Test it" in tasks["T002"].description
    assert tasks["TASK-3"].title == "Deploy"


def test_an_overview_heading_does_not_repeat_its_task() -> None:
    tasks = tasks_of(
        KIRO,
        tasks_md="## Overview\n\n### Task 1: Primitives\n*What comes first.*\n\n## Tasks\n\n"
        "- [x] 1. Implement the primitives\n- [ ] 2. Serialize\n",
    )
    assert list(tasks) == ["TASK-1", "TASK-2"]


def test_checklists_without_ids_are_told_once_per_run() -> None:
    spec, findings = read(
        SPEC_KIT,
        tasks_md="- [ ] T001 Build\n\n## Validation Checklist\n\n"
        "- [ ] All tasks have ids\n- [ ] Each story has a test\n- [ ] MVP is defined\n",
    )
    assert spec is not None
    assert places(findings) == [("tasks.md", 5, "warning", "not-mapped")]
    assert "lines 5-7 under 'Validation Checklist': 3 checkboxes" in findings[0].message


def test_a_tasks_file_without_task_ids_is_an_error_not_a_design_spec() -> None:
    spec, findings = read(
        SPEC_KIT,
        plan_md="# Plan\n\nA design.\n",
        tasks_md="# Tasks\n\nSome words.\n\n- [ ] Scaffold\n- [ ] Ship\n",
    )
    assert spec is None
    assert places(findings) == [("tasks.md", 5, "error", "no-tasks")]
    assert "`- [ ] T001 Title`" in findings[0].message
    spec, findings = read(SPEC_KIT, plan_md="# Plan\n\nA design.\n", tasks_md="# Tasks\n\nTBD\n")
    assert spec is None and places(findings) == [("tasks.md", 1, "error", "no-tasks")]


def test_a_duplicate_is_one_finding_at_its_second_line() -> None:
    lines = [f"- [ ] T{n:03d} Task {n}" for n in range(1, 150)]
    lines.insert(100, "- [ ] T005 Task five again")
    spec, findings = read(SPEC_KIT, tasks_md="## Phase 1: All\n" + "\n".join(lines) + "\n")
    assert spec is None
    assert places(findings) == [("tasks.md", 102, "error", "duplicate-id")]
    assert findings[0].message == "task id 'T005' is already used on line 6"


def test_a_requirement_defined_twice_names_the_first() -> None:
    spec_md = (
        "# Feature Specification: X\n\n- **FR-001**: System MUST a\n- **FR-001**: System MUST b\n"
    )
    spec, findings = read(SPEC_KIT, spec_md=spec_md, tasks_md="- [ ] T001 Do\n")
    assert spec is None
    assert places(findings) == [("spec.md", 4, "error", "duplicate-id")]
    assert "already defined on line 3" in findings[0].message


def test_star_bullets_and_capital_x() -> None:
    tasks = tasks_of(SPEC_KIT, tasks_md="* [X] T001 Done\n+ [ ] T002 Open\n")
    assert [t.done for t in tasks.values()] == [True, False]


# -- Kiro -----------------------------------------------------------------------------

REQUIREMENTS = """# Requirements Document

## Introduction

Exports for everyone.

## Glossary

- **Export**: a file of the data

## Requirements

### Requirement 1

**User Story:** As a user, I want an export so that I keep my data,
even when the service is gone.

#### Acceptance Criteria

1. WHEN a user asks THEN the system SHALL write the file
   within a minute.
2. WHEN the steps run THEN the order SHALL be:
   1. collect
   2. write
3. THE system SHALL name the file

##### Errors

1. IF the disk is full THEN the system SHALL say so

### Requirement 2

**User Story:** As an admin, I want a log.

#### Acceptance Criteria

1. THE system SHALL log each export
"""


def test_kiro_criteria_and_stories_wrapped_over_lines() -> None:
    spec, findings = read(KIRO, requirements_md=REQUIREMENTS)
    assert spec is not None and findings == []
    first = spec.requirements[0]
    assert first.text.endswith("keep my data, even when the service is gone.")
    assert [c.id for c in first.acceptance] == ["AC-1.1", "AC-1.2", "AC-1.3", "AC-1.4"]
    assert first.acceptance[0].text.endswith("write the file within a minute.")
    assert first.acceptance[1].text.endswith("the order SHALL be: 1. collect 2. write")
    assert "### Glossary" in spec.context


def test_kiro_escaped_optional_marks_and_letter_numbers() -> None:
    tasks = tasks_of(
        KIRO,
        tasks_md="- [x] 20. Parent\n- [x]\\* 20.1 Optional tests\n  - Write them\n"
        "- [x] 20.2 Real work\n- [ ] 20a. Inserted later\n  - [ ] 20a.1 Its sub-task\n",
    )
    assert list(tasks) == ["TASK-20", "TASK-20.1", "TASK-20.2", "TASK-20a", "TASK-20a.1"]
    assert tasks["TASK-20.1"].priority == "low" and tasks["TASK-20.1"].description == "- Write them"
    assert tasks["TASK-20"].depends_on == ("TASK-20.2",)  # not the optional one
    assert tasks["TASK-20a.1"].depends_on == ("TASK-20",)
    assert tasks["TASK-20a"].depends_on == ("TASK-20a.1",)


def test_kiro_sub_tasks_under_a_heading_keep_their_order() -> None:
    tasks = tasks_of(
        KIRO,
        tasks_md="# Implementation Plan\n\n### 1. Model\n\n- [ ] 1.1 Table\n- [ ] 1.2 Class\n\n"
        "### 2. Parent\n\n- [ ] 2.1 First\n- [ ] 2.2 Second\n",
    )
    assert list(tasks) == ["TASK-1.1", "TASK-1.2", "TASK-2.1", "TASK-2.2"]
    assert tasks["TASK-1.1"].depends_on == ()
    assert tasks["TASK-2.1"].depends_on == ("TASK-1.1", "TASK-1.2")
    assert tasks["TASK-2.2"].depends_on == ("TASK-2.1",)


def test_kiro_requirement_references_as_people_write_them() -> None:
    tasks_md = (
        "- [ ] 1. Ranges\n  - _Requirements: 1.1\u20131.3, 2.1_\n"
        "- [ ] 2. All of them\n  - _Requirements: All_\n"
        "- [ ] 3. A property test\n  - **Property 1: Round trip**\n"
        "  - **Validates: Requirements 2.1**\n"
        "- [ ] 4. Wrapped\n  - _Requirements: 1.1,\n    2.1_\n"
        "- [ ] 5. Free text\n  - _Requirements: Comprehensive crop variety database_\n"
    )
    spec, findings = read(KIRO, requirements_md=REQUIREMENTS, tasks_md=tasks_md)
    assert spec is not None
    served = {t.id: t.requirements for t in spec.tasks}
    assert served["TASK-1"] == ("REQ-1", "REQ-2")
    assert served["TASK-2"] == ("REQ-1", "REQ-2")
    assert served["TASK-3"] == ("REQ-2",)
    assert served["TASK-4"] == ("REQ-1", "REQ-2")
    assert served["TASK-5"] == ()
    assert places(findings) == [("tasks.md", 12, "warning", "not-mapped")]  # one, not per word
    assert "Comprehensive crop variety database" in findings[0].message


def test_kiro_steps_without_ids_under_a_task_are_its_description() -> None:
    spec, findings = read(
        KIRO, tasks_md="- [x] 1. Tests\n  - [x] A test of the fast path\n  - [ ] A stress test\n"
    )
    assert spec is not None and findings == []
    assert spec.tasks[0].description.strip() == (
        "- [x] A test of the fast path\n- [ ] A stress test"
    )


def test_kiro_duplicate_number_is_told_at_its_second_line() -> None:
    spec, findings = read(
        KIRO, tasks_md="- [ ] 1. A\n- [ ] 1.1 B\n- [ ] 1.2 C\n- [ ] 1.1 B again\n- [ ] 2. D\n"
    )
    assert spec is None
    assert places(findings) == [("tasks.md", 4, "error", "duplicate-id")]
    assert findings[0].message == "task id 'TASK-1.1' is already used on line 2"


def test_a_numbered_kiro_folder_is_read_as_kiro() -> None:
    tasks = tasks_of(".kiro/specs/2-exports/", tasks_md="- [ ] 1. A\n  - _Requirements: 1.1_\n")
    assert list(tasks) == ["TASK-1"]


def test_dependencies_named_one_by_one_or_as_a_range() -> None:
    tasks = tasks_of(
        SPEC_KIT,
        tasks_md="## Phase 1: Build\n\n- [x] T001 [P] Add the library\n- [x] T002 [P] Wire it\n"
        "- [ ] T003 [P] Use it (depends on T001, T002)\n- [ ] T004 [P] Check it (depends on "
        "T001-T003) — **not run**: needs a browser\n",
    )
    assert tasks["T003"].depends_on == ("T001", "T002")
    assert tasks["T004"].depends_on == ("T001", "T002", "T003")


def test_a_task_proposed_from_github_goes_after_the_last_task_and_what_is_its() -> None:
    from specs.propose import add_task

    text = "## Phase 1\n\n- [ ] T001 Build\n  in two steps\n  - [ ] a step\n\n## Notes\n\nEnd.\n"
    added = add_task(SPEC_KIT, text, "Ship it")
    assert added.text == text.replace("  - [ ] a step\n", "  - [ ] a step\n- [ ] T002 Ship it\n")
    headings = "### T001 - Install\n- [x] Add the library\n- [ ] Check it\n\n## Notes\n"
    added = add_task(SPEC_KIT, headings, "Ship it")
    assert added.text == headings.replace("Check it\n", "Check it\n\n### T002 - Ship it\n")
    tasks = tasks_of(SPEC_KIT, tasks_md=added.text)
    assert list(tasks) == ["T001", "T002"] and "[ ] Check it" in tasks["T001"].description


def test_markers_before_the_id_and_ids_in_brackets() -> None:
    spec_md = "# Feature Specification: X\n\n### US1: Export (Priority: P1)\n\nText.\n"
    tasks = tasks_of(
        SPEC_KIT,
        spec_md=spec_md,
        tasks_md="- [ ] T001 Scaffold\n- [ ] [P] [US1] T002 Export\n- [ ] [T003] Ship\n",
    )
    assert list(tasks) == ["T001", "T002", "T003"]
    assert tasks["T002"].title == "Export" and tasks["T002"].requirements == ("US1",)
    assert tasks["T002"].depends_on == () and tasks["T003"].depends_on == ("T002",)


def test_requirements_in_bold_forms() -> None:
    spec, _ = read(
        SPEC_KIT,
        spec_md="# Feature Specification: X\n\n**FR-001:** System MUST export\n"
        "- **FR-002** Users MUST be able to import\n",
        tasks_md="- [ ] T001 Do\n",
    )
    assert spec is not None
    assert [(r.id, r.text) for r in spec.requirements] == [
        ("FR-001", "THE SYSTEM SHALL export"),
        ("FR-002", "THE SYSTEM SHALL allow users to import"),
    ]


def test_kiro_criteria_under_a_bold_line_and_as_bullets() -> None:
    spec, findings = read(
        KIRO,
        requirements_md="### Requirement 1: Export\n\n**User Story:** As a user, I want x.\n\n"
        "**Acceptance Criteria:**\n\n- WHEN a user asks THEN the system SHALL export\n"
        "- WHEN it fails THEN the system SHALL say so\n",
    )
    assert spec is not None and findings == []
    assert [c.id for c in spec.requirements[0].acceptance] == ["AC-1.1", "AC-1.2"]


def test_a_dependency_on_a_later_task_wins_over_the_order_read() -> None:
    tasks = tasks_of(
        SPEC_KIT,
        tasks_md="## Phase 1: Setup\n\n- [ ] T001 Scaffold\n- [ ] T002 Config (depends on T004)\n"
        "## Phase 2: Build\n\n- [ ] T003 Build\n- [ ] T004 Schema\n- [ ] T005 Ship\n",
    )
    assert tasks["T002"].depends_on == ("T001", "T004")  # read, and no cycle refused
    assert tasks["T003"].depends_on == ("T002",)  # the phase gate, as read
    assert tasks["T004"].depends_on == ()  # "after T003" would close the cycle: it gives way
    assert tasks["T005"].depends_on == ("T004",)


def test_an_id_without_a_title_is_an_error_at_its_line() -> None:
    spec, findings = read(SPEC_KIT, tasks_md="- [ ] T001\n- [ ] T002 Real\n")
    assert spec is None
    assert places(findings) == [("tasks.md", 1, "error", "no-title")]


def test_a_task_list_written_as_a_table() -> None:
    table = (
        "# Tasks: Demo\n\n| Order | Task | Owner | Status |\n| --- | --- | --- | --- |\n"
        "| 1 | Write the docs | Code | Done |\n| 2 | Rebuild the bundle | Code | Backlog |\n"
    )
    tasks = tasks_of(SPEC_KIT, tasks_md=table)
    assert [(t.id, t.title, t.done) for t in tasks.values()] == [
        ("TASK-1", "Write the docs", True),
        ("TASK-2", "Rebuild the bundle", False),
    ]
    with pytest.raises(CannotPropose, match="rows of a table"):
        add_task(SPEC_KIT, table, "Ship")  # a checkbox would turn the table into a summary
    summary = "- [ ] T001 Build\n\n| ID | Task |\n| --- | --- |\n| T001 | Build |\n"
    assert list(tasks_of(SPEC_KIT, tasks_md=summary)) == ["T001"]  # a summary of the tasks
