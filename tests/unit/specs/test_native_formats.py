"""spec-kit and Kiro folders are specs as they are: found by where they live, mapped
as `specbridge import` maps them, validated by the format's rules, with every
finding at the Markdown file and line it is about."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from specs.importers import spec_yaml
from specs.importers.kiro import import_kiro
from specs.importers.spec_kit import import_spec_kit
from specs.load import load_spec
from specs.progress import mark_done
from specs.sources import format_of, group, spec_files, spec_path_of, tasks_file
from specs.validate import validate_files

FIXTURES = Path(__file__).parent / "fixtures"


def repository_files() -> dict[str, bytes]:
    """The two fixture folders as a repository holds them, beside a YAML spec and
    spec-kit's own contracts (OpenAPI YAML, not a spec)."""
    files = {}
    for base in (FIXTURES / "spec-kit", FIXTURES / "kiro"):
        for path in base.rglob("*.md"):
            files[path.relative_to(base).as_posix()] = path.read_bytes()
    files["specs/001-photo-albums/contracts/albums.yaml"] = b"openapi: 3.1.0\n"
    files["specs/login.yaml"] = b"title: Login\nphase: tasks\ntasks:\n  - id: L1\n    title: Do\n"
    return files


@pytest.mark.parametrize(
    ("path", "formats", "expected"),
    [
        ("specs/login.yaml", None, "specs/login.yaml"),
        ("specs/001-photo-albums/tasks.md", None, "specs/001-photo-albums/"),
        ("specs/001-photo-albums/spec.md", None, "specs/001-photo-albums/"),
        ("specs/001-photo-albums/plan.md", None, "specs/001-photo-albums/"),
        ("specs/001-photo-albums/research.md", None, None),
        ("specs/001-photo-albums/contracts/albums.yaml", None, None),
        ("specs/001-photo-albums/contracts/albums.yaml", ("yaml",), "specs/001-…"),
        ("specs/001-photo-albums/tasks.md", ("yaml", "kiro"), None),
        (".kiro/specs/auth/requirements.md", None, ".kiro/specs/auth/"),
        (".kiro/specs/auth/tasks.md", ("yaml", "spec-kit"), None),
        (".kiro/specs/auth/notes.yaml", None, None),
        ("docs/specs/001-x/tasks.md", None, None),  # spec-kit's folder is at the root
        ("specs/auth/tasks.md", None, None),  # not a numbered feature folder
        ("README.md", None, None),
    ],
)
def test_which_spec_a_file_belongs_to(path: str, formats, expected) -> None:  # type: ignore[no-untyped-def]
    found = spec_path_of(path, formats or ("yaml", "spec-kit", "kiro"), specs_path="specs/")
    if expected == "specs/001-…":
        expected = path  # with spec-kit off, a YAML file there is a YAML spec, as before
    assert found == expected


def test_a_spec_path_names_its_format_and_files() -> None:
    assert format_of("specs/login.yaml") == "yaml"
    assert format_of("specs/001-photo-albums/") == "spec-kit"
    assert format_of(".kiro/specs/auth/") == "kiro"
    assert spec_files("specs/001-photo-albums/") == (
        "specs/001-photo-albums/spec.md",
        "specs/001-photo-albums/plan.md",
        "specs/001-photo-albums/tasks.md",
    )
    assert tasks_file(".kiro/specs/auth/") == ".kiro/specs/auth/tasks.md"
    assert tasks_file("specs/login.yaml") == "specs/login.yaml"


def test_files_are_grouped_into_specs() -> None:
    grouped = group(repository_files())
    assert sorted(grouped) == [
        ".kiro/specs/user-authentication/",
        "specs/001-photo-albums/",
        "specs/login.yaml",
    ]
    assert grouped["specs/001-photo-albums/"] == [
        "specs/001-photo-albums/plan.md",
        "specs/001-photo-albums/spec.md",
        "specs/001-photo-albums/tasks.md",
    ]


def test_native_folders_load_as_the_importers_map_them() -> None:
    results = validate_files(repository_files())
    spec_kit, found = results["specs/001-photo-albums/"]
    assert spec_kit is not None and spec_kit.path == "specs/001-photo-albums/"
    texts = {
        name: (FIXTURES / "spec-kit/specs/001-photo-albums" / name).read_text()
        for name in ("spec.md", "plan.md", "tasks.md")
    }
    imported, _ = load_spec(
        spec_yaml(import_spec_kit(texts, "001-photo-albums"), "t"), "specs/x.yaml"
    )
    assert imported is not None
    assert spec_kit.tasks == imported.tasks  # the same mapping as `specbridge import`
    assert spec_kit.requirements == imported.requirements
    assert [t.id for t in spec_kit.tasks if t.done] == ["T001"]  # - [x] T001
    # spec.md's FR-004 still asks a question: a warning at its line, not a failure.
    assert [(f.path, f.line, f.code) for f in found] == [
        ("specs/001-photo-albums/spec.md", 51, "needs-clarification")
    ]
    kiro, found = results[".kiro/specs/user-authentication/"]
    assert kiro is not None and kiro.id == "user-authentication"
    assert kiro.title == "User authentication"
    assert [t.id for t in kiro.tasks][:3] == ["TASK-1", "TASK-2", "TASK-2.1"]
    assert dict((t.id, t.depends_on) for t in kiro.tasks)["TASK-2"] == ("TASK-2.1", "TASK-2.2")
    assert [t.id for t in kiro.tasks if t.done] == ["TASK-1"]
    assert found == []  # user stories are not EARS by design; optional tasks are mapped
    assert results["specs/login.yaml"][0] is not None


TASKS = """# Tasks: Exports

## Phase 1: Setup

<!--
  A comment spanning lines, as spec-kit's templates have them:
  line numbers still count it.
-->

- [ ] T001 Scaffold the exporter
- [ ] T002 Write CSV (depends on T003)
- [ ] T003 [P] Write JSON (depends on T002)
- [x] T001 Scaffold again
- [ ] [P] Forgot the id
"""


def test_findings_point_at_the_markdown_line() -> None:
    [(spec, found)] = validate_files({"specs/007-exports/tasks.md": TASKS}).values()
    assert spec is None
    assert [(f.path, f.line, f.severity, f.code) for f in found] == [
        ("specs/007-exports/tasks.md", 11, "error", "dependency-cycle"),
        ("specs/007-exports/tasks.md", 13, "error", "duplicate-id"),  # and no cycle through it
        ("specs/007-exports/tasks.md", 14, "warning", "not-mapped"),
    ]
    duplicate = next(f for f in found if f.code == "duplicate-id")
    assert duplicate.message == "task id 'T001' is already used on line 10"


def test_a_kiro_finding_points_at_requirements_md() -> None:
    requirements = "# Requirements\n\n### Requirement 1\n\n### Requirement 1\n"
    tasks = "- [ ] 1. Build\n  - _Requirements: 1.1_\n- [ ] 1. Build again\n"
    files = {".kiro/specs/x/requirements.md": requirements, ".kiro/specs/x/tasks.md": tasks}
    [(spec, found)] = validate_files(files).values()
    assert spec is None
    assert [(f.path, f.line, f.code) for f in found] == [
        (".kiro/specs/x/requirements.md", 5, "duplicate-id"),
        (".kiro/specs/x/tasks.md", 3, "duplicate-id"),
    ]


def test_a_spec_id_used_by_a_yaml_file_and_a_folder_is_an_error_in_both() -> None:
    files = {
        "specs/007-exports/tasks.md": "- [ ] T001 Scaffold\n",
        "specs/007-exports.yaml": "title: Exports\nphase: tasks\ntasks:\n  - {id: A, title: a}\n",
    }
    results = validate_files(files)
    assert results["specs/007-exports/"][0] is None
    assert results["specs/007-exports.yaml"][0] is None
    [finding] = results["specs/007-exports/"][1]
    assert (finding.path, finding.code) == ("specs/007-exports/tasks.md", "duplicate-spec-id")


def test_a_binary_markdown_file_is_an_error_at_that_file() -> None:
    [(spec, [finding])] = validate_files({".kiro/specs/x/tasks.md": b"\x00\x01"}).values()
    assert spec is None
    assert (finding.path, finding.code) == (".kiro/specs/x/tasks.md", "not-text")


def test_import_maps_a_checked_task_to_done() -> None:
    imported = import_kiro({"tasks.md": "- [x] 1. Built\n- [-] 2. Building\n"}, "x")
    assert [t.get("done") for t in imported.spec["tasks"]] == [True, None]
    spec, _ = load_spec(spec_yaml(imported, "t"), "specs/x.yaml")
    assert spec is not None and [t.done for t in spec.tasks] == [True, False]


def test_progress_flips_exactly_the_boxes_asked_for() -> None:
    text = (FIXTURES / "spec-kit/specs/001-photo-albums/tasks.md").read_text()
    new = mark_done("specs/001-photo-albums/", text, {"T001": False, "T005": True, "T404": True})
    changed = [(a, b) for a, b in zip(text.splitlines(), new.splitlines(), strict=True) if a != b]
    assert changed == [
        (
            "- [x] T001 Create project structure per implementation plan",
            "- [ ] T001 Create project structure per implementation plan",
        ),
        (
            "- [ ] T005 [P] Setup API routing and middleware structure in src/app.py",
            "- [x] T005 [P] Setup API routing and middleware structure in src/app.py",
        ),
    ]
    assert mark_done("specs/001-photo-albums/", new, {"T005": True}) == new  # already so
    kiro = (FIXTURES / "kiro/.kiro/specs/user-authentication/tasks.md").read_text()
    ticked = mark_done(".kiro/specs/user-authentication/", kiro, {"TASK-3.1": True})
    assert "  - [x] 3.1 Create the sessions table and SessionService\n" in ticked
    assert len(ticked) == len(kiro)


def test_progress_in_yaml_is_done_true_and_nothing_else_moves() -> None:
    text = (
        "title: X  # a comment\nphase: tasks\ntasks:\n"
        "  - id: A\n    title: a\n"
        "  - id: B\n    title: b\n    done: true\n"
        "  - {id: C, title: c}\n"
    )
    new = mark_done("specs/x.yaml", text, {"A": True, "B": False, "C": True})
    assert new == (
        "title: X  # a comment\nphase: tasks\ntasks:\n"
        "  - id: A\n    done: true\n    title: a\n"
        "  - id: B\n    title: b\n"
        "  - {id: C, title: c, done: true}\n"
    )
    spec, findings = load_spec(new, "specs/x.yaml")
    assert spec is not None and findings == []
    assert [t.done for t in spec.tasks] == [True, False, True]
    assert mark_done("specs/x.yaml", new, {"A": True, "B": False, "C": True}) == new


def test_done_must_be_true_or_false() -> None:
    text = 'title: X\nphase: tasks\ntasks:\n  - id: A\n    title: a\n    done: "yes"\n'
    spec, findings = load_spec(text, "specs/x.yaml")
    assert spec is None and [(f.line, f.code) for f in findings] == [(6, "wrong-type")]


def test_validate_reads_native_folders_and_reports_in_every_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import shutil

    from specs.report import validate_paths

    shutil.copytree(FIXTURES / "spec-kit" / "specs", tmp_path / "specs")
    shutil.copytree(FIXTURES / "kiro" / ".kiro", tmp_path / ".kiro")
    (tmp_path / "specs/001-photo-albums/contracts").mkdir()
    (tmp_path / "specs/001-photo-albums/contracts/albums.yaml").write_text("openapi: 3.1.0\n")
    (tmp_path / "specs/001-photo-albums/tasks.md").write_text(
        TASKS.replace("# Tasks: Exports", "# Tasks: Photo albums")
    )
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    assert validate_paths(["specs", ".kiro"], "json", out) == 1
    found = {(f["path"], f["line"], f["code"]) for f in json.loads(out.getvalue())}
    assert ("specs/001-photo-albums/tasks.md", 13, "duplicate-id") in found
    assert ("specs/001-photo-albums/spec.md", 51, "needs-clarification") in found
    assert not any("contracts" in path for path, _, _ in found)
    sarif = io.StringIO()
    validate_paths(["specs/001-photo-albums/tasks.md"], "sarif", sarif)  # the folder, all of it
    results = json.loads(sarif.getvalue())["runs"][0]["results"]
    locations = [r["locations"][0]["physicalLocation"] for r in results]
    assert {(loc["artifactLocation"]["uri"], loc["region"]["startLine"]) for loc in locations} >= {
        ("specs/001-photo-albums/tasks.md", 13),
        ("specs/001-photo-albums/spec.md", 51),
    }
    text = io.StringIO()
    assert validate_paths([".kiro/specs/user-authentication"], "text", text) == 0
    assert text.getvalue().endswith("3 files, 0 errors, 0 warnings\n")
