"""Where a planned spec's files go in each format, what the planner may write, and the
questions it leaves."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.agents.planning_layout import (
    QUESTIONS_FILE,
    SpecLayout,
    is_questions_file,
    new_layout,
    questions_in,
    what_to_write,
)
from bot.repo_config import parse_repo_config


def test_a_new_spec_is_named_after_its_title_in_each_format(tmp_path: Path) -> None:
    (tmp_path / "specs/001-photo-albums").mkdir(parents=True)
    (tmp_path / "specs/007-search").mkdir()
    (tmp_path / "specs/launch-button.yaml").write_text("taken\n")

    yaml = new_layout("yaml", "Launch button!", "specs/", tmp_path)
    assert yaml == SpecLayout("yaml", "specs/launch-button-2.yaml")  # the first is taken
    assert new_layout("spec-kit", "Launch button", "specs/", tmp_path).path == (
        "specs/008-launch-button/"
    )
    assert new_layout("kiro", "Launch button", "specs/", tmp_path).path == (
        ".kiro/specs/launch-button/"
    )


def test_a_second_idea_planned_at_once_takes_the_next_place_not_the_firsts(
    tmp_path: Path,
) -> None:
    """Two ideas planned side by side: neither has merged, so the checkout shows neither."""
    (tmp_path / "specs/007-search").mkdir(parents=True)
    first = new_layout("spec-kit", "Launch button", "specs/", tmp_path)
    assert first.path == "specs/008-launch-button/"

    taken = {first.path}
    assert new_layout("spec-kit", "Photo albums", "specs/", tmp_path, taken).path == (
        "specs/009-photo-albums/"
    )
    assert new_layout("yaml", "Launch", "specs/", tmp_path, {"specs/launch.yaml"}).path == (
        "specs/launch-2.yaml"
    )
    assert new_layout("kiro", "Launch", "specs/", tmp_path, {".kiro/specs/launch/"}).path == (
        ".kiro/specs/launch-2/"
    )


@pytest.mark.parametrize(
    ("layout", "allowed", "refused"),
    [
        (
            SpecLayout("yaml", "specs/launch.yaml"),
            ["specs/launch.yaml"],
            ["specs/other.yaml", "README.md", "specs/launch.yaml.bak"],
        ),
        (
            SpecLayout("spec-kit", "specs/003-launch/"),
            ["specs/003-launch/spec.md", "specs/003-launch/contracts/api.yaml"],
            ["specs/004-other/spec.md", "specs/003-launch/../../README.md", "src/app.py"],
        ),
        (
            SpecLayout("kiro", ".kiro/specs/launch/"),
            [".kiro/specs/launch/design.md"],
            [".kiro/steering/product.md", ".github/workflows/ci.yml"],
        ),
    ],
)
def test_the_planner_may_write_its_spec_and_nothing_else(
    layout: SpecLayout, allowed: list[str], refused: list[str]
) -> None:
    assert all(layout.may_write(p) for p in allowed)
    assert not any(layout.may_write(p) for p in refused)


def test_each_phase_reads_the_files_of_the_phases_before_it() -> None:
    kit = SpecLayout("spec-kit", "specs/003-launch/")
    assert kit.files("design") == (
        "specs/003-launch/plan.md",
        "specs/003-launch/data-model.md",
        "specs/003-launch/contracts/",
    )
    assert kit.earlier_files("requirements") == ()
    assert kit.earlier_files("tasks") == (
        "specs/003-launch/spec.md",
        "specs/003-launch/plan.md",
        "specs/003-launch/data-model.md",
    )
    kiro = SpecLayout("kiro", ".kiro/specs/launch/")
    assert kiro.earlier_files("design") == (".kiro/specs/launch/requirements.md",)
    yaml = SpecLayout("yaml", "specs/launch.yaml")
    assert yaml.earlier_files("requirements") == () and yaml.earlier_files("tasks") == (
        "specs/launch.yaml",
    )


def test_what_to_write_is_in_the_repository_format() -> None:
    said = what_to_write(SpecLayout("yaml", "specs/launch.yaml"), "requirements", "launch", "L")
    assert "phase: requirements" in said and "acceptance:" in said and "id: launch" in said
    assert "spec.md" in what_to_write(
        SpecLayout("spec-kit", "specs/003-x/"), "requirements", "x", "X"
    )
    assert "design.md" in what_to_write(SpecLayout("kiro", ".kiro/specs/x/"), "design", "x", "X")


def test_questions_come_from_the_questions_file_and_the_clarification_markers() -> None:
    found = questions_in(
        {
            QUESTIONS_FILE: "1. Which colour?\n- Who may press it?\n\n",
            "specs/003-x/spec.md": "- **FR-001**: System MUST [NEEDS CLARIFICATION: how fast?]\n"
            "- **FR-002**: [NEEDS CLARIFICATION: Which colour?]",
        }
    )
    assert found == ["Which colour?", "Who may press it?", "how fast?"]
    assert questions_in({"specs/a.yaml": "phase: requirements\n"}) == []


def test_planner_and_phases_are_settings() -> None:
    config, error = parse_repo_config(b"planner: claude\nphases: auto\n")
    assert error is None and (config.planner, config.phases) == ("claude", "auto")
    assert parse_repo_config(b"")[0].phases == "manual"
    assert parse_repo_config(b"phases: sometimes\n")[1] is not None
    assert parse_repo_config(b"planner: [a]\n")[1] is not None


def test_only_the_phase_documents_are_read_for_clarification_markers() -> None:
    kit = SpecLayout("spec-kit", "specs/003-launch/")
    assert kit.is_phase_file("specs/003-launch/spec.md", "requirements")
    assert kit.is_phase_file("specs/003-launch/contracts/api.yaml", "design")
    assert not kit.is_phase_file("specs/003-launch/notes.txt", "requirements")
    assert not kit.is_phase_file("specs/003-launch/plan.md", "requirements")


def test_a_questions_file_is_the_planners_own_or_any_questions_md() -> None:
    assert is_questions_file(QUESTIONS_FILE)
    assert is_questions_file("specs/003-launch/QUESTIONS.md")
    assert is_questions_file("questions.txt")
    assert not is_questions_file("specs/003-launch/spec.md")


def test_the_settings_schema_knows_the_planner_and_its_phases() -> None:
    from bot.repo_config import CONFIG_PATH, check_config_file

    assert check_config_file(b"planner: claude\nphases: auto\n", CONFIG_PATH) == []
    [finding] = check_config_file(b"phases: sometimes\n", CONFIG_PATH)
    assert "'phases' must be one of manual, auto" in finding.message
