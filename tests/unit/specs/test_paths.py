"""The files a task names, and whether two tasks' files can meet."""

from __future__ import annotations

import pytest

from specs.paths import overlap, paths_in


@pytest.mark.parametrize(
    ("line", "paths"),
    [
        ("Create User model in src/models/user.py", ("src/models/user.py",)),
        (
            "Contract test POST /api/users in tests/contract/test_users.py",
            ("tests/contract/test_users.py",),
        ),
        ("Update README.md and `docs/` (e.g. with Node.js v1.2)", ("README.md", "docs/")),
        ("Read https://example.com/a/b.py first, then ./lib/x.ts.", ("lib/x.ts",)),
        ("Set up the project structure", ()),
    ],
)
def test_paths_as_a_task_line_writes_them(line: str, paths: tuple[str, ...]) -> None:
    assert paths_in(line) == paths


@pytest.mark.parametrize(
    ("first", "second", "meet"),
    [
        (["src/a.py"], ["src/a.py"], True),
        (["src/a.py"], ["src/b.py"], False),
        (["src/*.py"], ["src/a.py"], True),
        (["src/*.py"], ["src/*.js"], False),
        (["src/**"], ["src/x/y.py"], True),
        (["src"], ["src/x.py"], True),  # a folder names what is below it
        (["src/"], ["src/x.py"], True),
        (["docs/**/*.md"], ["src/x.md"], False),
        (["**/*.md"], ["src/x.md"], True),
        (["tests/test_a*.py"], ["tests/test_b*.py"], False),
        (["tests/test_*.py"], ["tests/*_api.py"], True),
        (["a.py", "b.py"], ["c.py", "b.py"], True),
        ([], ["a.py"], False),
    ],
)
def test_two_sets_of_files_meet_when_a_file_could_be_in_both(
    first: list[str], second: list[str], meet: bool
) -> None:
    assert overlap(first, second) is meet
    assert overlap(second, first) is meet
