"""spec-kit and Kiro plans become specs that validate and plan, dependencies included."""

from __future__ import annotations

from pathlib import Path

from bot.sync.plan import diff_spec
from specs.importers import Imported, spec_yaml
from specs.importers.kiro import FILES as KIRO_FILES
from specs.importers.kiro import import_kiro
from specs.importers.spec_kit import FILES as SPEC_KIT_FILES
from specs.importers.spec_kit import import_spec_kit
from specs.load import load_spec

FIXTURES = Path(__file__).parent / "fixtures"
SPEC_KIT = FIXTURES / "spec-kit" / "specs" / "001-photo-albums"
KIRO = FIXTURES / "kiro" / ".kiro" / "specs" / "user-authentication"


def read(directory: Path, names: tuple[str, ...]) -> dict[str, str]:
    return {name: (directory / name).read_text() for name in names}


def round_trip(imported: Imported) -> dict[str, tuple[str, ...]]:
    """Validate the written YAML and plan it against an empty state; the dependencies."""
    spec, findings = load_spec(spec_yaml(imported, "test"), f"specs/{imported.spec['id']}.yaml")
    assert spec is not None, [f for f in findings if f.is_error]
    diff = diff_spec(None, spec, known_agents={"default"})
    assert [t.id for t in diff.open] == [t["id"] for t in imported.spec["tasks"]]
    done = set(diff.done_at_once)  # ticked in the file: closed as completed once opened
    assert diff.start_now and all(
        set(t.depends_on) <= done for t in diff.open if t.id in diff.start_now
    )
    return {task.id: task.depends_on for task in spec.tasks}


def test_spec_kit_feature_directory() -> None:
    imported = import_spec_kit(read(SPEC_KIT, SPEC_KIT_FILES), SPEC_KIT.name)
    spec = imported.spec
    assert (spec["id"], spec["title"], spec["phase"]) == (
        "001-photo-albums",
        "Photo albums",
        "tasks",
    )
    requirements = {r["id"]: r for r in spec["requirements"]}
    assert requirements["FR-001"]["text"] == (
        "THE SYSTEM SHALL let users create an album from one or more photos"
    )
    assert requirements["FR-003"]["text"] == "THE SYSTEM SHALL allow users to rename an album"
    assert [c["id"] for c in requirements["US1"]["acceptance"]] == ["US1-AC1", "US1-AC2"]
    assert "Edge Cases" in spec["context"] and "Albums are rows" in spec["design"]
    dependencies = round_trip(imported)
    assert dependencies["T001"] == ()
    assert dependencies["T002"] == ("T001",)  # no [P]: after the task before it
    assert dependencies["T003"] == ()  # [P] in the first phase
    assert dependencies["T004"] == ("T002", "T003")  # Foundational waits for Setup
    assert dependencies["T006"] == ("T004", "T005")  # stories wait for Foundational
    assert dependencies["T009"] == ("T008",)  # "(depends on T008)", once
    assert dependencies["T011"] == ("T004", "T005")  # stories run in parallel
    assert dependencies["T014"] == ("T006", "T007", "T010", "T013")  # Polish waits for stories
    tasks = {t["id"]: t for t in spec["tasks"]}
    assert tasks["T008"]["requirements"] == ["US1"] and tasks["T008"]["priority"] == "high"
    assert tasks["T012"]["priority"] == "medium"
    assert tasks["T001"]["done"] is True and "done" not in tasks["T002"]  # - [x] T001
    assert imported.unmapped == [
        "FR-004 still needs clarification: retention period not specified",
    ]


def test_kiro_spec_directory() -> None:
    imported = import_kiro(read(KIRO, KIRO_FILES), KIRO.name)
    spec = imported.spec
    assert (spec["id"], spec["title"], spec["phase"]) == (
        "user-authentication",
        "User authentication",
        "tasks",
    )
    first = spec["requirements"][0]
    assert first["id"] == "REQ-1" and first["text"].startswith("As a visitor")
    assert first["acceptance"][0] == {
        "id": "AC-1.1",
        "text": "WHEN a visitor submits a valid email address and password THEN the system SHALL "
        "create an account and sign the visitor in",
    }
    assert spec["context"].startswith("Users sign in with an email address")
    assert spec["design"].startswith("## Overview")
    dependencies = round_trip(imported)
    assert dependencies["TASK-1"] == ()
    assert dependencies["TASK-2.1"] == ("TASK-1",)  # its parent's previous sibling
    assert dependencies["TASK-2.2"] == ("TASK-2.1",)
    assert dependencies["TASK-2"] == ("TASK-2.1", "TASK-2.2")  # not the optional 2.3
    assert dependencies["TASK-3.1"] == ("TASK-2",)  # indented sub-tasks too
    assert dependencies["TASK-4"] == ("TASK-3",)
    tasks = {t["id"]: t for t in spec["tasks"]}
    assert tasks["TASK-2.1"]["requirements"] == ["REQ-1"]
    assert tasks["TASK-4"]["requirements"] == ["REQ-1", "REQ-2"]
    assert tasks["TASK-2.3"]["priority"] == "low"
    assert "Store the email address" in tasks["TASK-2.1"]["description"]
    assert tasks["TASK-1"]["done"] is True and "done" not in tasks["TASK-2"]  # - [x] 1.
    assert imported.unmapped == [
        "task 2.3 is optional in Kiro; imported with priority low",
    ]


def test_what_cannot_be_mapped_is_said() -> None:
    tasks = (
        "## Phase 1: Setup\n\n- [ ] T001 Scaffold\n- [ ] TXXX Placeholder\n"
        "- [ ] T002 [US9] Build (depends on T077)\n"
    )
    imported = import_spec_kit({"tasks.md": tasks}, "002-x")
    assert [t["id"] for t in imported.spec["tasks"]] == ["T001", "T002"]
    assert imported.spec["tasks"][1]["depends_on"] == ["T001"]
    assert imported.unmapped == [
        "task T002 belongs to US9, which spec.md does not define",
        "tasks.md line 4: no task id, so not a task: - [ ] TXXX Placeholder; to make one a "
        "task, write it as `- [ ] T001 Title`",
        "task T002 depends on T077, which is not a task",
    ]
    kiro = import_kiro({"tasks.md": "- [ ] 1. Build\n  - _Requirements: 4.1_\n"}, "x")
    assert kiro.unmapped == ["task TASK-1 names requirement 4.1, not defined"]


def test_text_that_yaml_1_1_misreads_is_written_quoted() -> None:
    imported = import_kiro({"tasks.md": "- [ ] 1. yes\n- [ ] 2. 2024-01-01\n"}, "on")
    text = spec_yaml(imported, "test")
    assert "title: 'yes'" in text and "title: '2024-01-01'" in text
    spec, _ = load_spec(text, "specs/on.yaml")
    assert spec is not None and [t.title for t in spec.tasks] == ["yes", "2024-01-01"]
