"""Several attempts at one task: the comment that compares them."""

from __future__ import annotations

from bot.agents.attempts import MARKER, Attempt, comparison
from storage.models import TaskStatus


def test_the_comparison_has_a_row_per_attempt_with_its_outcome_tests_and_size() -> None:
    said = comparison(
        [
            Attempt(1, "claude", TaskStatus.SUCCEEDED, 12, "abc", "passed", None),
            Attempt(2, "codex", TaskStatus.FAILED, None, None, "failed", "the tests failed"),
        ],
        {1: 3},
    )
    assert said.startswith(MARKER)
    assert "| 1 | `claude` | succeeded | #12 | passed | 3 |" in said
    assert "| 2 | `codex` | failed | none | failed | none |" in said
    assert "merge the one to keep" in said
