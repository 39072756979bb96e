"""A task proposed from GitHub is written into the spec's tasks file in the file's own
format, and only the task's lines change; a task removed takes its lines with it."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from specs.propose import CannotPropose, add_task, remove_task
from specs.sources import load_source

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).parent / "fixtures"
FEATURE = "specs/001-photo-albums/"
KIRO = ".kiro/specs/user-authentication/"


def _native(fmt_dir: Path, folder: str, tasks: str) -> dict[str, str]:
    files = {folder + p.name: p.read_text() for p in fmt_dir.iterdir() if p.is_file()}
    files[folder + "tasks.md"] = tasks
    return files


def _tasks_of(spec_path: str, files: dict[str, str]) -> dict[str, str]:
    spec, findings = load_source(spec_path, files)
    assert spec is not None, findings
    return {t.id: t.title for t in spec.tasks}


def _changed(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_yaml_gets_a_task_entry_with_the_next_id_in_its_style() -> None:
    path = "specs/passwordless-login.yaml"
    text = (ROOT / "specs/examples/passwordless-login.yaml").read_text()
    added = add_task(path, text, "Rate-limit link requests", "Proposed in #42.")
    assert added.task_id == "TSK-6"
    assert _changed(text, added.text) == [
        "+  - id: TSK-6",
        '+    title: "Rate-limit link requests"',
        '+    description: "Proposed in #42."',
    ]
    tasks = _tasks_of(path, {path: added.text})
    assert tasks["TSK-6"] == "Rate-limit link requests" and len(tasks) == 6


def test_yaml_flow_items_get_a_flow_item_and_odd_titles_are_quoted() -> None:
    path = "specs/x.yaml"
    text = "id: x\ntitle: X\nphase: tasks\ntasks:\n"
    text += "  - {id: a-1, title: One}\n  - {id: a-2, title: Two}\n"
    added = add_task(path, text, 'yes: "no" @ops', None)
    assert added.task_id == "a-3"
    assert added.text.endswith('  - {id: a-3, title: "yes: \\"no\\" @ops"}\n')
    assert _tasks_of(path, {path: added.text})["a-3"] == 'yes: "no" @ops'


def test_yaml_ids_without_numbers_get_one_from_the_title() -> None:
    path = "specs/x.yaml"
    text = "id: x\ntitle: X\nphase: tasks\ntasks:\n- id: build\n  title: Build\n# the end\n"
    added = add_task(path, text, "Ship It!", None)
    assert added.task_id == "ship-it"
    assert '- id: ship-it\n  title: "Ship It!"\n# the end\n' in added.text


def test_yaml_removal_takes_the_entry_and_the_dependencies_on_it() -> None:
    path = "specs/passwordless-login.yaml"
    text = (ROOT / "specs/examples/passwordless-login.yaml").read_text()
    removed = remove_task(path, text, "TSK-4")
    assert _changed(text, removed) == [
        "-  - id: TSK-4",
        "-    title: Expired link page",
        "-    priority: low",
        "-    requirements: [REQ-2]",
        "-    depends_on: [TSK-3]",
        "-    depends_on: [TSK-2, TSK-4]",
        "+    depends_on: [TSK-2]",
    ]
    assert "TSK-4" not in _tasks_of(path, {path: removed})
    with pytest.raises(CannotPropose):
        remove_task(path, text, "TSK-9")


def test_yaml_block_dependencies_lose_the_removed_task() -> None:
    path = "specs/x.yaml"
    text = (
        "id: x\ntitle: X\nphase: tasks\ntasks:\n"
        "  - id: a\n    title: A\n"
        "  - id: b\n    title: B\n    depends_on:\n      - a\n"
    )
    removed = remove_task(path, text, "a")
    assert removed.endswith("tasks:\n  - id: b\n    title: B\n    depends_on: []\n")


def test_spec_kit_gets_the_next_t_line_after_its_last_task() -> None:
    folder = FIXTURES / "spec-kit" / FEATURE
    text = (folder / "tasks.md").read_text()
    added = add_task(FEATURE, text, "Export an album as a zip", "ignored: no description")
    assert (added.task_id, added.line) == ("T016", "- [ ] T016 Export an album as a zip")
    assert _changed(text, added.text) == ["+- [ ] T016 Export an album as a zip"]
    lines = added.text.splitlines()
    assert lines[lines.index(added.line) - 1].startswith("- [ ] T015 ")
    tasks = _tasks_of(FEATURE, _native(folder, FEATURE, added.text))
    assert tasks["T016"] == "Export an album as a zip"


def test_spec_kit_removal_takes_the_line() -> None:
    folder = FIXTURES / "spec-kit" / FEATURE
    text = (folder / "tasks.md").read_text()
    removed = remove_task(FEATURE, text, "T014")
    assert _changed(text, removed) == ["-- [ ] T014 [P] Documentation updates in docs/albums.md"]
    assert "T014" not in _tasks_of(FEATURE, _native(folder, FEATURE, removed))


def test_kiro_gets_the_next_numbered_item_with_the_note_as_its_detail() -> None:
    folder = FIXTURES / "kiro" / KIRO
    text = (folder / "tasks.md").read_text()
    added = add_task(KIRO, text, "Lock an account after ten failed sign-ins", "Proposed in #42")
    assert added.task_id == "TASK-5"
    assert _changed(text, added.text) == [
        "+",
        "+- [ ] 5. Lock an account after ten failed sign-ins",
        "+  - Proposed in #42",
    ]
    spec, findings = load_source(KIRO, _native(folder, KIRO, added.text))
    assert spec is not None, findings
    task = next(t for t in spec.tasks if t.id == "TASK-5")
    assert task.title == "Lock an account after ten failed sign-ins"
    assert task.description == "- Proposed in #42"


def test_kiro_removal_takes_the_item_and_its_details_not_its_neighbours() -> None:
    folder = FIXTURES / "kiro" / KIRO
    text = (folder / "tasks.md").read_text()
    removed = remove_task(KIRO, text, "TASK-2.2")
    assert _changed(text, removed) == [
        "-- [ ] 2.2 Validate passwords on registration",
        "-  - Reject passwords shorter than 12 characters",
        "-  - _Requirements: 1.3_",
    ]
    assert "TASK-2.2" not in _tasks_of(KIRO, _native(folder, KIRO, removed))


def test_a_title_is_one_line_and_not_empty() -> None:
    folder = FIXTURES / "spec-kit" / FEATURE
    text = (folder / "tasks.md").read_text()
    assert add_task(FEATURE, text, "Two\nlines  here").line == "- [ ] T016 Two lines here"
    with pytest.raises(CannotPropose):
        add_task(FEATURE, text, "  ")


def test_a_task_added_after_a_heading_task_goes_below_its_code_block_not_into_it() -> None:
    # Found by the fuzz test: a `#` line inside a code block ended the heading's section
    # there, and the new task went into the block, where no reader sees it.
    text = "## 1. Set up\n```\n- [ ] T001\n# a shell comment\n- [ ] T001\n```\n"
    added = add_task(".kiro/specs/fuzz/", text, "A proposed task")
    assert added.text.startswith(text)  # the block whole, the task after it
    assert added.text[len(text) :] == "\n## 2. A proposed task\n"
