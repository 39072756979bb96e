"""Every rule of the spec format: its code and the exact line and column."""

from __future__ import annotations

import textwrap

import pytest

from specs.load import load_spec
from specs.model import Finding
from specs.validate import validate_files

VALID = """\
id: login
title: Login
phase: tasks
requirements:
  - id: REQ-1
    text: WHEN a user signs in THE SYSTEM SHALL greet them
    acceptance:
      - id: AC-1
        text: The greeting names the user
tasks:
  - id: TSK-1
    title: Greet
    requirements: [REQ-1]
  - id: TSK-2
    title: Say goodbye
    depends_on: [TSK-1]
"""


def findings(text: str, path: str = "specs/login.yaml", **kwargs) -> list[Finding]:  # type: ignore[no-untyped-def]
    return load_spec(textwrap.dedent(text), path, **kwargs)[1]


def only(text: str, **kwargs) -> Finding:  # type: ignore[no-untyped-def]
    found = findings(text, **kwargs)
    assert len(found) == 1, found
    return found[0]


def test_a_valid_spec_loads_with_every_field() -> None:
    spec, found = load_spec(VALID, "specs/login.yaml")
    assert found == []
    assert spec is not None
    assert (spec.id, spec.title, spec.phase, spec.path) == (
        "login",
        "Login",
        "tasks",
        "specs/login.yaml",
    )
    assert spec.requirements[0].acceptance[0].text == "The greeting names the user"
    assert [t.id for t in spec.tasks] == ["TSK-1", "TSK-2"]
    assert spec.tasks[1].depends_on == ("TSK-1",)
    assert spec.tasks[0].priority == "medium"


def test_id_defaults_to_the_file_stem() -> None:
    spec, _ = load_spec("title: T\nphase: explore\n", "specs/search-speed.yaml")
    assert spec is not None and spec.id == "search-speed"


@pytest.mark.parametrize(
    ("text", "code", "line", "column", "words"),
    [
        ("- a\n- b\n", "not-a-mapping", 1, 1, "must be a mapping"),
        ("title: T\n", "missing-key", 1, 1, "needs 'phase'"),
        ("title: T\nphase: explore\ntitel: X\n", "unknown-key", 3, 1, "did you mean 'title'?"),
        ("title: [a]\nphase: explore\n", "wrong-type", 1, 8, "'title' must be text, not a list"),
        (
            "title: T\nphase: coding\n",
            "invalid-value",
            2,
            8,
            "explore, requirements, design, tasks",
        ),
        ("title: T\nphase: explore\napproval: maybe\n", "invalid-value", 3, 11, "none, required"),
        ("title: T\nphase: explore\nid: Bad_Id\n", "invalid-id", 3, 5, "lowercase"),
        ("title: T\nphase: tasks\n", "no-tasks", 1, 1, "at least one task"),
        ("title: T\nphase: tasks\ntasks: []\n", "no-tasks", 3, 8, "at least one task"),
        ("title: T\ntitle: U\nphase: explore\n", "duplicate-key", 2, 1, "first on line 1"),
    ],
)
def test_top_level_rules(text: str, code: str, line: int, column: int, words: str) -> None:
    finding = only(text)
    assert (finding.code, finding.line, finding.column, finding.severity) == (
        code,
        line,
        column,
        "error",
    )
    assert words in finding.message


def test_task_rules() -> None:
    text = """\
        title: T
        phase: tasks
        requirements:
          - id: REQ-1
            text: THE SYSTEM SHALL work
        tasks:
          - id: TSK-1
            title: A
            priority: urgent
            requirements: [REQ-2]
            depends_on: [TSK-1, TSK-9]
          - id: TSK-1
            title: B
          - title: C
          - id: 9lives
            title: D
            estimate: 3
        """
    found = [(f.code, f.line, f.column) for f in findings(text)]
    assert found == [
        ("invalid-value", 9, 15),  # priority
        ("unknown-reference", 10, 20),  # REQ-2, did you mean REQ-1
        ("self-dependency", 11, 18),
        ("unknown-reference", 11, 25),  # TSK-9
        ("duplicate-id", 12, 9),
        ("missing-key", 14, 5),  # task without id
        ("invalid-id", 15, 9),
        ("unknown-key", 17, 5),  # estimate
    ]
    messages = {f.code: f.message for f in findings(text)}
    assert "already used on line 7" in messages["duplicate-id"]


def test_dependency_cycle_names_every_task_once() -> None:
    text = """\
        title: T
        phase: tasks
        tasks:
          - id: TSK-1
            title: A
            depends_on: [TSK-3]
          - id: TSK-2
            title: B
            depends_on: [TSK-1]
          - id: TSK-3
            title: C
            depends_on: [TSK-2]
        """
    finding = only(text)
    assert finding.code == "dependency-cycle"
    assert finding.message == "dependency cycle: TSK-1 → TSK-3 → TSK-2 → TSK-1"
    assert (finding.line, finding.column) == (6, 18)


def test_requirement_rules() -> None:
    text = """\
        title: T
        phase: requirements
        requirements:
          - id: REQ-1
            text: Users can log in
            acceptance:
              - id: AC-1
                text: ok
              - id: AC-1
                text: again
          - id: REQ-1
            text: THE SYSTEM SHALL log out
        """
    found = findings(text)
    assert [(f.code, f.line, f.severity) for f in found] == [
        ("not-ears", 5, "warning"),
        ("duplicate-id", 9, "error"),
        ("duplicate-id", 11, "error"),
    ]
    assert "WHEN … THE SYSTEM SHALL" in found[0].message
    assert "IF … THEN THE SYSTEM SHALL" in found[0].message


def test_warnings_alone_keep_the_spec() -> None:
    spec, found = load_spec(
        "title: T\nphase: requirements\nrequirements:\n  - {id: R, text: fast}\n", "s.yaml"
    )
    assert spec is not None
    assert [f.code for f in found] == ["not-ears"]


@pytest.mark.parametrize(
    "text",
    [
        "WHEN a user signs in THE SYSTEM SHALL greet them",
        "While offline, the app shall queue writes",
        "IF the token expired THEN the system shall refuse it",
        "Where export is enabled the system shall offer it",
        "The mailer shall retry three times",
    ],
)
def test_ears_forms_are_accepted(text: str) -> None:
    spec = f"title: T\nphase: requirements\nrequirements:\n  - id: R\n    text: {text}\n"
    assert findings(spec) == []


def test_unknown_agent_is_a_finding_when_profiles_are_known() -> None:
    text = VALID + "agent: claud\n"
    finding = only(text, known_agents={"claude", "codex"})
    assert (finding.code, finding.line) == ("unknown-agent", 17)
    assert "did you mean 'claude'?" in finding.message
    assert findings(VALID + "agent: manual\n", known_agents={"claude"}) == []


def test_duplicate_spec_ids_across_files_are_errors_in_both() -> None:
    results = validate_files(
        {
            "specs/a.yaml": VALID,
            "specs/b.yaml": VALID,
            "specs/c.yaml": VALID.replace("id: login", "id: other"),
        }
    )
    for path in ("specs/a.yaml", "specs/b.yaml"):
        spec, found = results[path]
        assert spec is None
        assert [(f.code, f.line) for f in found] == [("duplicate-spec-id", 1)]
    assert "specs/b.yaml" in results["specs/a.yaml"][1][0].message
    assert results["specs/c.yaml"][0] is not None


def _chain(length: int, closing_back_to: int | None = None) -> str:
    """Tasks T0001 → T0002 → … (each waits on the next), listed head first."""
    lines = ["title: Chain", "phase: tasks", "tasks:"]
    for i in range(1, length + 1):
        lines += [f"  - id: T{i:04d}", f"    title: Task {i}"]
        target = i + 1 if i < length else closing_back_to
        if target is not None:
            lines.append(f"    depends_on: [T{target:04d}]")
    return "\n".join(lines) + "\n"


def test_a_chain_of_1500_tasks_listed_head_first_is_valid() -> None:
    spec, findings = load_spec(_chain(1500), "specs/chain.yaml")
    assert findings == []
    assert spec is not None and len(spec.tasks) == 1500


def test_a_cycle_at_the_end_of_a_1500_task_chain_is_named() -> None:
    _, findings = load_spec(_chain(1500, closing_back_to=1498), "specs/chain.yaml")
    assert [f.message for f in findings if f.code == "dependency-cycle"] == [
        "dependency cycle: T1498 → T1499 → T1500 → T1498"
    ]


def test_a_duplicate_task_is_one_finding_and_its_dependencies_make_no_cycle() -> None:
    text = (
        "title: X\nphase: tasks\ntasks:\n"
        "  - {id: A, title: a}\n"
        "  - {id: B, title: b, depends_on: [A]}\n"
        "  - {id: A, title: a again, depends_on: [B]}\n"
    )
    spec, findings = load_spec(text, "specs/x.yaml")
    assert spec is None
    assert [(f.line, f.code, f.message) for f in findings] == [
        (6, "duplicate-id", "task id 'A' is already used on line 4")
    ]
