"""The spec-kit and Kiro readers on Markdown they have never seen: never a traceback,
every finding on a line of the file it names, every task found again at its line,
and the folder read as a spec the same as the YAML `specbridge import` writes from it."""

from __future__ import annotations

import contextlib
import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specs.importers import spec_yaml
from specs.importers.markdown import lines_of
from specs.load import load_spec
from specs.progress import mark_done
from specs.propose import CannotPropose, add_task, remove_task
from specs.sources import _import, files_read
from specs.validate import validate_files

FOLDERS = {"spec-kit": "specs/004-fuzz/", "kiro": ".kiro/specs/fuzz/"}
NAMES = {"spec-kit": "004-fuzz", "kiro": "fuzz"}

ids = st.sampled_from(
    [
        "T001",
        "T002",
        "T002a",
        "**T003**",
        "`T004`",
        "**T005:**",
        "P001",
        "QG01",
        "C-1",
        "1.",
        "1.1",
        "2.",
        "2.1",
        "10a.",
        "10a.1",
        "Task 3:",
        "T1.1:",
        "",
        "TXXX",
        "3d",
        "1.1.1",
    ]
)
boxes = st.sampled_from(["- [ ]", "- [x]", "- [X]", "* [ ]", "- [-]", "- [ ]*", "- [x]\\*", "-[ ]"])
words = st.sampled_from(
    [
        "Build it",
        "[P]",
        "[US1]",
        "[US9]",
        "`[api] [P]`",
        "(depends on T001)",
        "@octocat",
        "yes",
        "2024-01-01",
        "1:30",
        "✅",
        "é",
        "a\tb",
        "'quoted'",
        '"q"',
        "x" * 40,
        "|",
        "*",
        "#",
    ]
)
lines = st.one_of(
    st.builds(
        lambda indent, box, id_, text: f"{indent}{box} {id_} {text}".rstrip(),
        st.sampled_from(["", "", "  ", "    ", "\t"]),
        boxes,
        ids,
        st.lists(words, max_size=3).map(" ".join),
    ),
    st.builds(
        lambda level, text: f"{'#' * level} {text}",
        st.integers(1, 5),
        st.sampled_from(
            [
                "Phase 1: Setup",
                "Phase 3: User Story 1 - X (Priority: P1)",
                "Requirement 1",
                "Requirement 2: Two",
                "Acceptance Criteria",
                "Introduction",
                "2. Parent",
                "T009 - Heading task",
                "Task 4: Deploy ✅",
                "Implementation Strategy",
                "Glossary",
                "User Story 1 - Export (Priority: P2)",
                "Feature Specification: Fuzz",
                "Tasks: Fuzz",
            ]
        ),
    ),
    st.sampled_from(
        [
            "",
            "",
            "  - detail",
            "  - _Requirements: 1.1, 2.3_",
            "  - _Requirements: All_",
            "  - _Requirements: 1.1,",
            "    2.1_",
            "  - **Validates: Requirements 1.2**",
            "  - _Requirements: free text only_",
            "1. WHEN x THEN the system SHALL y",
            "   continued",
            "**User Story:** As a user, I want x",
            "- **FR-001**: System MUST x",
            "- **FR-001**: Users MUST be able to y",
            "**Acceptance Scenarios**:",
            "1. **Given** a, **When** b, **Then** c",
            "```",
            "~~~",
            "<!--",
            "-->",
            "---",
            "- **Status**: [X] Completed",
            "[NEEDS CLARIFICATION: what?]",
            '**Input**: "x"',
        ]
    ),
    st.text(max_size=30),
)
markdown = st.lists(lines, max_size=40).map(lambda xs: "\n".join(xs) + "\n")


@st.composite
def folders(draw):  # type: ignore[no-untyped-def]
    fmt = draw(st.sampled_from(sorted(FOLDERS)))
    names = draw(st.lists(st.sampled_from(files_read(fmt)), min_size=1, unique=True))
    return fmt, {FOLDERS[fmt] + name: draw(markdown) for name in names}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(folders())
def test_no_traceback_and_every_finding_on_a_line_of_its_file(folder) -> None:  # type: ignore[no-untyped-def]
    fmt, files = folder
    [(spec, findings)] = validate_files(files).values()
    for finding in findings:
        assert finding.path in files, finding
        assert 1 <= finding.line <= max(1, len(lines_of(files[finding.path]))), finding
    texts = {name.removeprefix(FOLDERS[fmt]): text for name, text in files.items()}
    imported = _import(fmt, texts, NAMES[fmt])
    tasks_md = lines_of(texts.get("tasks.md", ""))
    for key, (file, line) in imported.where.items():
        assert file in texts and 1 <= line <= len(lines_of(texts[file])), key
        if key.startswith("task:"):
            assert tasks_md[line - 1].strip(), key  # the task's own line
    if spec is not None:
        # The folder as a spec is the spec `specbridge import` writes, read back.
        again, _ = load_spec(spec_yaml(imported, "fuzz"), "specs/fuzz.yaml")
        assert again is not None
        assert dataclasses.replace(again, path=spec.path) == spec


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(FOLDERS)), markdown, st.data())
def test_edits_of_tasks_md_never_fail_and_touch_only_their_lines(fmt, text, data) -> None:  # type: ignore[no-untyped-def]
    folder = FOLDERS[fmt]
    imported = _import(fmt, {"tasks.md": text}, "fuzz")
    task_ids = [key.removeprefix("task:") for key in imported.where if key.startswith("task:")]
    wanted = {t: data.draw(st.booleans()) for t in task_ids}
    marked = mark_done(folder, text, wanted)
    assert len(lines_of(marked)) == len(lines_of(text))
    changed = [(a, b) for a, b in zip(lines_of(text), lines_of(marked), strict=True) if a != b]
    assert all(len(a) == len(b) for a, b in changed)  # one box's character each
    try:
        added = add_task(folder, text, "A proposed task", "Proposed in #1.")
    except CannotPropose:  # a task list written as a table is edited by hand
        assert any(line.lstrip().startswith("|") for line in lines_of(text))
        return
    again = _import(fmt, {"tasks.md": added.text}, "fuzz")
    assert f"task:{added.task_id}" in again.where
    for task_id in task_ids[:3]:
        with contextlib.suppress(CannotPropose):
            remove_task(folder, text, task_id)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(FOLDERS)), st.text(max_size=400))
def test_any_text_is_read_or_refused_without_a_traceback(fmt, text) -> None:  # type: ignore[no-untyped-def]
    for name in files_read(fmt):
        validate_files({FOLDERS[fmt] + name: text})
