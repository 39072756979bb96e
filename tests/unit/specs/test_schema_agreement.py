"""The shipped JSON Schemas and specbridge accept and refuse the same files.

Files are generated as YAML text, with values written plain or quoted, and the
schema is given the document as specbridge reads it (YAML 1.1). Cross-reference
rules (unique ids, dependencies on tasks that exist, cycles) are beyond what a
JSON Schema can say, so generated references are never dangling.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import repo_config
from specs import rules
from specs.load import load_spec
from specs.model import Spec, SpecTask

SCHEMA = json.loads((Path(rules.__file__).parent / "spec.schema.json").read_text())
CONFIG_SCHEMA = json.loads(
    (Path(repo_config.__file__).parent / "repo_config.schema.json").read_text()
)

# Texts that YAML 1.1 reads as something else when unquoted, and ordinary ones.
WORDS = ["Login", "yes", "No", "on", "OFF", "2024-01-01", "1:30", "12", "3.5", "null", "", "~"]
WORDS += ["explore", "design", "tasks", "high", "medium", "none", "required", "default", "Bad Id"]


def scalar(words: list[str] = WORDS) -> st.SearchStrategy[str]:
    """A value as YAML text: plain (as YAML 1.1 reads it) or quoted (always text)."""
    return st.tuples(st.sampled_from(words), st.booleans()).map(
        lambda pair: json.dumps(pair[0]) if pair[1] else pair[0]
    )


TEXT_WORDS = ["Login", '"yes"', '"2024-01-01"', '"1:30"', '"12"', '"Sign in: fast"']


def mostly(good: list[str], bad: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[str]:
    """A valid value most of the time, so that about half the files are valid."""
    return st.integers(0, 14).flatmap(
        lambda n: (scalar() if bad is None else bad) if n == 0 else st.sampled_from(good)
    )


def item_id(good: str) -> st.SearchStrategy[str]:
    # Bad ids are never equal to another item's: duplicates are the validator's alone to see.
    bad = st.sampled_from(["yes", "12", "2024-01-01", "on", json.dumps(f"1{good}")])
    return mostly([good, json.dumps(good)], bad)


def flow_list(items: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Mostly an empty list written [] or left empty (null); else items, or no list at all."""
    return st.integers(0, 9).flatmap(
        lambda n: (
            st.sampled_from(["[]", ""])
            if n > 1
            else st.lists(items, min_size=1, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]")
            if n == 1
            else scalar()
        )
    )


@st.composite
def mapping(draw, fields: dict[str, st.SearchStrategy[str]], required: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """Entries of a mapping: some of its fields (the required ones usually), maybe a stray key."""
    keys = [
        k for k in fields if (k in required and draw(st.integers(0, 9)) > 0) or draw(st.booleans())
    ]
    entries = {key: draw(fields[key]) for key in keys}
    if draw(st.integers(0, 19)) == 0:
        entries[draw(st.sampled_from(["colour", "on", "yes", "Title"]))] = "x"
    return entries


TEXT = mostly(TEXT_WORDS)


def block(entries: dict[str, str], indent: str) -> str:
    lines = []
    for key, value in entries.items():
        if isinstance(value, list):  # a list of mappings
            lines.append(f"{indent}{key}:")
            for item in value:
                first, *rest = block(item, indent + "    ").splitlines() or ["    {}"]
                lines.append(f"{indent}  - {first.strip()}")
                lines.extend(rest)
        else:
            lines.append(f"{indent}{key}: {value}".rstrip())
    return "\n".join(lines)


@st.composite
def spec_files(draw) -> str:  # type: ignore[no-untyped-def]
    n_requirements = draw(st.integers(0, 2))
    requirements = [
        draw(
            mapping(
                {
                    "id": item_id(f"REQ-{i}"),
                    "text": mostly(["THE SYSTEM SHALL work", '"WHEN on THE SYSTEM SHALL stop"']),
                    "acceptance": st.one_of(
                        st.sampled_from(["[]", ""]),
                        st.builds(
                            lambda c: [c],
                            mapping({"id": item_id(f"AC-{i}"), "text": TEXT}, ("id", "text")),
                        ),
                    ),
                },
                ("id", "text"),
            )
        )
        for i in range(n_requirements)
    ]
    n_tasks = draw(st.integers(0, 3))
    tasks = [
        draw(
            mapping(
                {
                    "id": item_id(f"TSK-{i}"),
                    "title": TEXT,
                    "description": TEXT,
                    "priority": mostly(["high", "low", '"medium"']),
                    # Unquoted values YAML 1.1 reads as booleans, numbers or dates: quoted,
                    # they would be references to nothing, which only the validator sees.
                    "requirements": flow_list(st.sampled_from(["yes", "12", "2024-01-01"])),
                    "depends_on": flow_list(st.sampled_from(["on", "7", "1:30"])),
                    "agent": TEXT,
                },
                ("id", "title"),
            )
        )
        for i in range(n_tasks)
    ]
    top = draw(
        mapping(
            {
                "id": mostly(["login", '"2024"'], scalar(["Login", "yes", "12", "a b"])),
                "title": TEXT,
                "phase": mostly(["explore", "design", "tasks", "tasks", '"tasks"']),
                "owner": TEXT,
                "labels": flow_list(TEXT),
                "approval": mostly(["none", "required"]),
                "agent": TEXT,
                "context": TEXT,
                "design": TEXT,
            },
            ("title", "phase"),
        )
    )
    for key, items in (("requirements", requirements), ("tasks", tasks)):
        choice = draw(st.integers(0, 9))
        if choice > 2:
            top[key] = items or "[]"
        elif choice == 2:
            top[key] = draw(flow_list(scalar()))
    return block(top, "") + "\n"


def validator_accepts(text: str) -> bool:
    _, findings = load_spec(text, "specs/generated.yaml")
    return not any(f.is_error for f in findings)


def schema_accepts(document: object, schema: dict) -> bool:  # type: ignore[type-arg]
    return jsonschema.Draft202012Validator(schema).is_valid(document)


# Derandomized: CI runs the same examples every time; widen max_examples to hunt locally.
@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(spec_files())
def test_schema_and_validator_agree_on_generated_files(text: str) -> None:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:  # not YAML at all: an editor says so, and so must specbridge
        assert not validator_accepts(text), text
        return
    assert schema_accepts(document, SCHEMA) == validator_accepts(text), text


@pytest.mark.parametrize(
    "text",
    [
        "title: yes\nphase: explore\n",
        "id: NO\ntitle: T\nphase: explore\n",
        "title: T\nphase: explore\ncontext: 2024-01-01\n",
        "title: 1:30\nphase: explore\n",
        "title: T\nphase: tasks\ntasks:\n  - id: TSK-1\n    title: A\n    depends_on: null\n",
        "title: T\nphase: tasks\ntasks: null\n",
        'title: "yes"\nphase: explore\nlabels:\n',
    ],
)
def test_the_cases_that_used_to_disagree(text: str) -> None:
    assert schema_accepts(yaml.safe_load(text), SCHEMA) == validator_accepts(text)


def test_every_property_is_described_with_its_default() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(Spec)}
    defaults |= {f"task.{f.name}": f.default for f in dataclasses.fields(SpecTask)}
    objects = {"": SCHEMA, **{f"{name}.": d for name, d in SCHEMA["$defs"].items()}}
    for prefix, definition in objects.items():
        for name, prop in definition["properties"].items():
            where = prefix + name
            assert prop.get("description"), where
            if name in definition.get("required", []):
                continue
            assert "Default:" in prop["description"] or "default" in prop, where
            if "default" in prop and where in defaults:
                model_default = defaults[where]
                assert prop["default"] == (
                    list(model_default) if model_default == () else model_default
                ), where


@pytest.mark.parametrize(
    "text",
    [
        "",
        "specs_path: plans/\n",
        "specs_path: /\n",
        "specs_path: 3\n",
        "project: {owner: acme, number: 3}\n",
        "project: {owner: acme}\n",
        "project: {owner: acme, number: yes}\n",
        "project: {owner: acme, number: '3'}\n",
        "project:\n",
        "status: {done: Shipped, testing: QA}\n",
        "status: {shipped: Done}\n",
        "status: {done: yes}\n",
        "status: {on: Done}\n",
        "status:\n",
        "board: 3\n",
        "- specs/\n",
        "formats: [yaml, kiro]\n",
        "formats: []\n",
        "formats: [markdown]\n",
        "formats: yaml\n",
        "formats:\n",
        "write_back: commit\n",
        "write_back: off\n",
        "write_back: 'off'\n",
        "write_back: push\n",
        "write_back: yes\n",
    ],
)
def test_config_schema_and_repo_config_agree(text: str) -> None:
    _, problem = repo_config.parse_repo_config(text.encode())
    assert schema_accepts(yaml.safe_load(text), CONFIG_SCHEMA) == (problem is None), problem
