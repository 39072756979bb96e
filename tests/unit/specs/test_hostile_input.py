"""Hostile or broken input gives a finding, never an exception or a hang."""

from __future__ import annotations

import string

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from specs.load import MAX_BYTES, load_spec

BILLION_LAUGHS = "a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def code(text: str | bytes) -> tuple[str, int]:
    spec, found = load_spec(text, "specs/x.yaml")
    assert spec is None
    return found[0].code, found[0].line


def test_alias_bomb_is_refused_at_the_first_alias() -> None:
    assert code(BILLION_LAUGHS) == ("yaml-alias", 2)


def test_oversized_file_is_refused_before_parsing() -> None:
    assert code(b"a" * (MAX_BYTES + 1)) == ("too-large", 1)


def test_deep_nesting_is_refused() -> None:
    assert code("a: " + "[" * 50 + "]" * 50) == ("too-deep", 1)


def test_binary_and_non_utf8_content_is_refused() -> None:
    assert code(b"title: \x00\x01") == ("not-text", 1)
    assert code(b"title: caf\xe9\nphase: tasks\n") == ("not-text", 1)


def test_several_documents_are_refused() -> None:
    assert code("title: a\nphase: explore\n---\ntitle: b\n") == ("multiple-documents", 3)


def test_python_tags_are_refused() -> None:
    assert code("title: !!python/object/apply:os.system ['true']\nphase: explore\n") == (
        "unsafe-tag",
        1,
    )
    assert code("title: !custom x\nphase: explore\n") == ("unsafe-tag", 1)


def test_syntax_errors_are_positioned() -> None:
    assert code("title: T\nphase: [explore\n") == ("yaml-syntax", 3)


def test_empty_file() -> None:
    assert code("") == ("empty", 1)
    assert code("# only a comment\n") == ("empty", 1)


def test_a_utf8_bom_is_accepted() -> None:
    spec, found = load_spec("\ufefftitle: T\nphase: explore\n".encode(), "specs/bom.yaml")
    assert found == [] and spec is not None


def _check(text: str | bytes) -> None:
    spec, found = load_spec(text, "specs/fuzz.yaml")
    assert isinstance(found, list)
    assert (spec is None) == any(f.is_error for f in found)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(), st.binary(), st.text(alphabet=string.printable + "&*!|>-[]{}:#")))
def test_arbitrary_text_only_gives_findings(text: str | bytes) -> None:
    _check(text)


documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "id",
                    "title",
                    "phase",
                    "tasks",
                    "requirements",
                    "depends_on",
                    "text",
                    "acceptance",
                    "x",
                ]
            )
            | st.text(max_size=8),
            children,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(documents)
def test_arbitrary_yaml_structures_only_give_findings(document: object) -> None:
    _check(yaml.safe_dump(document))
