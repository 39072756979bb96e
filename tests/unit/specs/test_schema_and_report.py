"""The JSON Schema agrees with the validator; `specbridge validate` reports in three formats."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from specs import rules
from specs.model import APPROVALS, PHASES, PRIORITIES
from specs.report import validate_paths

SPECS = Path(rules.__file__).parent
SCHEMA = json.loads((SPECS / "spec.schema.json").read_text())
EXAMPLES = sorted((SPECS / "examples").glob("*.yaml"))


def test_schema_keys_and_enums_are_the_validators() -> None:
    defs = SCHEMA["$defs"]
    assert list(SCHEMA["properties"]) == list(rules.TOP_KEYS)
    assert SCHEMA["required"] == list(rules.REQUIRED_TOP_KEYS)
    assert list(defs["requirement"]["properties"]) == list(rules.REQUIREMENT_KEYS)
    assert list(defs["criterion"]["properties"]) == list(rules.CRITERION_KEYS)
    assert list(defs["task"]["properties"]) == list(rules.TASK_KEYS)
    assert SCHEMA["properties"]["phase"]["enum"] == list(PHASES)
    assert SCHEMA["properties"]["approval"]["enum"] == list(APPROVALS)
    assert defs["task"]["properties"]["priority"]["enum"] == list(PRIORITIES)
    assert SCHEMA["properties"]["id"]["pattern"] == rules.SPEC_ID.pattern
    assert defs["task"]["properties"]["id"]["pattern"] == rules.ITEM_ID.pattern


def test_there_is_an_example_per_phase_and_all_are_valid() -> None:
    phases = set()
    for example in EXAMPLES:
        document = yaml.safe_load(example.read_text())
        jsonschema.validate(document, SCHEMA)
        phases.add(document["phase"])
    assert phases == set(PHASES)
    out = io.StringIO()
    assert validate_paths([str(SPECS / "examples")], "text", out) == 0
    assert out.getvalue() == f"{len(EXAMPLES)} files, 0 errors, 0 warnings\n"


@pytest.mark.parametrize(
    "document",
    [
        {"title": "T", "phase": "coding"},
        {"title": "T", "phase": "tasks"},
        {"title": "T", "phase": "explore", "colour": "red"},
        {
            "title": "T",
            "phase": "tasks",
            "tasks": [{"id": "TSK-1", "title": "A", "priority": "now"}],
        },
        {"phase": "explore"},
    ],
)
def test_schema_and_validator_both_reject(document: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA)
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(document))
    assert validate_paths([str(path)], "json", io.StringIO()) == 1


BROKEN = "title: T\nphase: tasks\ntasks:\n  - id: TSK-1\n    title: A\n    depends_on: [TSK-9]\n"


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    path = tmp_path / "specs"
    path.mkdir()
    (path / "login.yaml").write_text(BROKEN)
    return path


def test_text_format(broken: Path) -> None:
    out = io.StringIO()
    assert validate_paths([str(broken)], "text", out) == 1
    assert out.getvalue().splitlines() == [
        f"{broken}/login.yaml:6:18: error[unknown-reference]: task TSK-1 depends on 'TSK-9', "
        "which is not a task of this spec; did you mean 'TSK-1'?",
        "1 file, 1 error, 0 warnings",
    ]


def test_json_format(broken: Path) -> None:
    out = io.StringIO()
    validate_paths([str(broken / "login.yaml")], "json", out)
    [finding] = json.loads(out.getvalue())
    assert finding["code"] == "unknown-reference"
    assert (finding["line"], finding["column"], finding["severity"]) == (6, 18, "error")


def test_github_format_escapes_properties_and_message(broken: Path) -> None:
    out = io.StringIO()
    validate_paths([str(broken)], "github", out)
    assert out.getvalue() == (
        f"::error file={broken}/login.yaml,line=6,col=18,title=unknown-reference::"
        "task TSK-1 depends on 'TSK-9', which is not a task of this spec; did you mean 'TSK-1'?\n"
    )


def test_missing_path_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_paths([str(tmp_path / "nope")], "text", io.StringIO()) == 2
    assert "neither a file nor a directory" in capsys.readouterr().err
