"""A task's files and `parallel`, from YAML `files:` and from spec-kit's and Kiro's lines."""

from __future__ import annotations

from pathlib import Path

from specs.load import load_spec
from specs.sources import load_native

FIXTURES = Path(__file__).parent / "fixtures"

SPEC = """\
title: Files
phase: tasks
tasks:
  - id: A
    title: Models
    files: [src/models/*.py, src/db.py]
  - id: B
    title: Docs
    parallel: true
  - id: C
    title: Anything
    attempts: 2
"""


def test_yaml_tasks_name_their_files_and_may_be_parallel() -> None:
    spec, found = load_spec(SPEC, "specs/files.yaml")
    assert found == [] and spec is not None
    by_id = {task.id: task for task in spec.tasks}
    assert by_id["A"].files == ("src/models/*.py", "src/db.py")
    assert (by_id["B"].files, by_id["B"].parallel) == ((), True)
    assert (by_id["C"].files, by_id["C"].parallel) == ((), False)
    assert (by_id["A"].attempts, by_id["C"].attempts) == (None, 2)


def test_attempts_are_a_small_whole_number() -> None:
    _, found = load_spec(SPEC.replace("attempts: 2", "attempts: 9"), "specs/files.yaml")
    assert [(f.code, f.line) for f in found] == [("wrong-type", 12)]


def test_a_path_outside_the_repository_is_refused_at_its_line() -> None:
    text = SPEC.replace("src/db.py", "../etc/passwd")
    _, found = load_spec(text, "specs/files.yaml")
    assert [(f.code, f.line) for f in found] == [("invalid-path", 6)]


def test_spec_kit_task_lines_give_their_paths_and_p_marks_parallel() -> None:
    folder = "specs/001-photo-albums/"
    base = FIXTURES / "spec-kit" / folder
    files = {folder + p.name: p.read_bytes() for p in base.glob("*.md")}
    spec, _ = load_native("spec-kit", folder, files)
    assert spec is not None
    by_id = {task.id: task for task in spec.tasks}
    assert by_id["T005"].files == ("src/app.py",) and by_id["T005"].parallel
    assert by_id["T006"].files == ("tests/contract/test_albums.py",)
    assert not any(t.parallel for t in spec.tasks if t.id == "T001")
