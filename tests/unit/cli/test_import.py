"""`specbridge import` and `specbridge schema` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from specs.load import load_spec

FIXTURES = Path(__file__).parents[1] / "specs" / "fixtures"
KIRO = FIXTURES / "kiro" / ".kiro" / "specs" / "user-authentication"
SPEC_KIT = FIXTURES / "spec-kit" / "specs" / "001-photo-albums"


def test_import_writes_a_spec_that_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "user-authentication.yaml"
    assert main(["import", "kiro", str(KIRO), "--output", str(output)]) == 0
    spec, _ = load_spec(output.read_text(), str(output))
    assert spec is not None and len(spec.tasks) == 9
    err = capsys.readouterr().err
    assert "not mapped: task 2.3 is optional in Kiro" in err
    assert main(["validate", str(output)]) == 0


def test_import_prints_to_stdout_and_accepts_a_file_of_the_directory(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["import", "spec-kit", str(SPEC_KIT / "tasks.md")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Imported from spec-kit") and "id: 001-photo-albums" in out


def test_import_does_not_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "spec.yaml"
    output.write_text("mine\n")
    assert main(["import", "kiro", str(KIRO), "-o", str(output)]) == 2
    assert output.read_text() == "mine\n"
    assert "exists; not overwritten" in capsys.readouterr().err


def test_import_of_a_directory_without_the_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", "spec-kit", str(tmp_path)]) == 2
    assert "has none of spec.md, plan.md, tasks.md" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "shipped"),
    [
        (["schema"], Path("specs/spec.schema.json")),
        (["schema", "--config"], Path("bot/repo_config.schema.json")),
    ],
)
def test_schema_prints_the_shipped_schema(
    argv: list[str], shipped: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 0
    root = Path(__file__).parents[3]
    assert json.loads(capsys.readouterr().out) == json.loads((root / shipped).read_text())


def test_import_tells_each_finding_at_its_markdown_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "specs" / "009-exports"
    folder.mkdir(parents=True)
    lines = ["# Tasks: Exports", "", "## Phase 1: Setup", ""]
    lines += [f"- [ ] T{n:03d} Task {n}" for n in range(1, 40)] + ["- [ ] T005 Again"]
    lines += ["", "## Checks", "", "- [ ] All done", "- [ ] Docs updated"]
    (folder / "tasks.md").write_text("\n".join(lines) + "\n")
    assert main(["import", "spec-kit", str(folder)]) == 1
    err = capsys.readouterr().err
    where = f"{folder.as_posix()}/tasks.md"
    assert f"{where}:44: error[duplicate-id]: task id 'T005' is already used on line 9" in err
    assert f"{where}:48: not mapped: tasks.md lines 48-49 under 'Checks'" in err
    assert err.count("error[") == 1  # no cycle, nothing else follows from the copy
