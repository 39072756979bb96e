"""What `specbridge validate` tells: quoting YAML 1.1 values, each finding once, syntax
errors where they start, the early-task warning, SARIF and GitHub's annotation limit."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from specs.load import load_spec
from specs.report import validate_paths


def codes(text: str) -> list[tuple[str, int, int, str]]:
    return [(f.code, f.line, f.column, f.message) for f in load_spec(text, "specs/x.yaml")[1]]


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        ("title: yes\nphase: explore\n", "yes", "true/false"),
        (
            "title: T\nphase: tasks\ntasks:\n  - {id: NO, title: a}\n  - {id: B, title: b}\n",
            "NO",
            "true/false",
        ),
        ("title: T\nphase: explore\ncontext: 2024-01-01\n", "2024-01-01", "a date"),
        ("title: 1:30\nphase: explore\n", "1:30", "a number"),
        ("title: T\nphase: explore\nlabels: [ off]\n", "off", "true/false"),
    ],
)
def test_yaml_1_1_values_are_told_to_be_quoted(text: str, value: str, kind: str) -> None:
    [(code, _, _, message)] = codes(text)
    assert code == "needs-quotes"
    assert f"YAML 1.1 reads {value} as {kind}" in message and f'quote it: "{value}"' in message
    assert load_spec(text.replace(f" {value}", f' "{value}"'), "specs/x.yaml")[1] == []


def test_a_wrong_choice_is_a_wrong_choice_before_a_quoting_problem() -> None:
    [(code, _, _, message)] = codes("title: T\nphase: explore\napproval: no\n")
    assert code == "invalid-value" and "not 'no'" in message


def test_no_finding_twice() -> None:
    text = "title: T\nphase: tasks\ntasks:\n  - id: A\n    title: a\n    requirements: [1]\n"
    assert [c[0] for c in codes(text)] == ["needs-quotes"]


def test_an_unclosed_quote_is_reported_at_its_opening_quote() -> None:
    [(code, line, column, message)] = codes('title: "Login\nphase: explore\nowner: me\n')
    assert (code, line, column) == ("yaml-syntax", 1, 8)
    assert "never closed" in message


def test_a_tab_gets_a_hint() -> None:
    [(code, line, _, message)] = codes("title: T\n\tphase: explore\n")
    assert (code, line) == ("yaml-syntax", 2)
    assert "indent with spaces" in message


def test_tasks_before_the_tasks_phase_get_a_warning() -> None:
    text = "title: T\nphase: design\ntasks:\n  - id: A\n    title: a\n"
    spec, findings = load_spec(text, "specs/x.yaml")
    assert spec is not None
    [finding] = findings
    assert (finding.severity, finding.code, finding.line) == ("warning", "tasks-not-worked", 3)
    assert "will not be worked until 'phase: tasks'" in finding.message


def test_no_spec_file_is_exit_1_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.md").write_text("# not a spec\n")
    assert validate_paths([str(tmp_path)], "text", io.StringIO()) == 1
    assert "no spec files (*.yaml, *.yml)" in capsys.readouterr().err


def test_sarif(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("title: yes\nphase: explore\ncolour: red\n")
    out = io.StringIO()
    assert validate_paths([str(tmp_path / "a.yaml")], "sarif", out) == 1
    log = json.loads(out.getvalue())
    assert log["version"] == "2.1.0"
    [run] = log["runs"]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["needs-quotes", "unknown-key"]
    first = run["results"][0]
    assert (first["ruleId"], first["level"]) == ("needs-quotes", "error")
    location = first["locations"][0]["physicalLocation"]
    assert location["region"] == {"startLine": 1, "startColumn": 8}
    assert location["artifactLocation"]["uri"] == (tmp_path / "a.yaml").as_uri()


def test_github_says_how_many_findings_it_could_not_show(tmp_path: Path) -> None:
    keys = "".join(f"colour{i}: x\n" for i in range(13))
    (tmp_path / "a.yaml").write_text("title: T\nphase: explore\n" + keys)
    out = io.StringIO()
    validate_paths([str(tmp_path)], "github", out)
    lines = out.getvalue().splitlines()
    assert sum(line.startswith("::error ") for line in lines) == 10
    assert sum("error[unknown-key]" in line for line in lines) == 3  # in the step's log
    assert lines[-1].startswith("::notice title=specbridge::3 more findings not shown")


def test_output_to_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    # Far more output than a pipe holds, so the writer is still writing when it closes.
    keys = "".join(f"colour{i}: red\n" for i in range(30))
    for i in range(100):
        (tmp_path / f"s{i}.yaml").write_text("title: T\nphase: explore\n" + keys)
    validate = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "validate", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).parents[3],
    )
    assert validate.stdout is not None and validate.stderr is not None
    validate.stdout.readline()
    validate.stdout.close()  # as `| head -1` does
    assert validate.wait(timeout=60) == 141
    assert validate.stderr.read() == b""
