"""Which checks count on an agent's pull request, and what they say together
(bot/agents/check_verdict.py `judge`)."""

from __future__ import annotations

from bot.agents.check_verdict import judge
from bot.github.pull_requests import CheckResult


def run(name: str, conclusion: str | None, app: str = "github-actions") -> CheckResult:
    return CheckResult(name=name, kind="check run", conclusion=conclusion, app=app)


def status(context: str, state: str | None) -> CheckResult:
    return CheckResult(name=context, kind="commit status", conclusion=state)


def test_without_protection_every_check_but_specbridges_own_counts() -> None:
    checks = [run("tests", "success"), status("ci/jenkins", "success")]
    ours = run("specbridge", "failure", app="specbridge")
    verdict = judge([*checks, ours], [], "specbridge")
    assert verdict.state == "passed" and verdict.names == ["tests", "ci/jenkins"]
    # Without the App's slug known, its check is known by its name.
    assert judge([*checks, ours], [], None).state == "passed"
    # Another App's check of the same name counts.
    assert judge([run("specbridge", "failure")], [], "specbridge").state == "failed"


def test_the_required_checks_alone_count_and_all_must_report() -> None:
    checks = [run("tests", "success"), run("lint", "failure")]
    assert judge(checks, ["tests"], "specbridge").state == "passed"
    waiting = judge(checks, ["tests", "ci/deploy"], "specbridge")
    assert waiting.state == "pending" and waiting.waiting == ["ci/deploy"]
    # Status contexts are matched without regard to case, as GitHub does.
    assert judge([status("CI/Deploy", "success"), *checks], ["tests", "ci/deploy"], None).state == (
        "passed"
    )


def test_a_failure_is_told_once_every_check_that_counts_is_done() -> None:
    running = judge([run("tests", "failure"), run("e2e", None)], [], "specbridge")
    assert running.state == "pending" and running.waiting == ["e2e"]
    done = judge([run("tests", "failure"), run("e2e", "success")], [], "specbridge")
    assert done.state == "failed" and done.names == ["tests"]


def test_neutral_and_skipped_pass_and_every_other_conclusion_fails() -> None:
    passing = [run("a", "success"), run("b", "neutral"), run("c", "skipped")]
    assert judge(passing, [], None).state == "passed"
    for conclusion in ("failure", "timed_out", "cancelled", "action_required", "stale"):
        assert judge([run("a", conclusion)], [], None).state == "failed", conclusion
    for state in ("failure", "error"):
        assert judge([status("ci", state)], [], None).state == "failed", state


def test_no_check_at_all_says_nothing() -> None:
    assert judge([], [], "specbridge").state == "none"
    assert judge([run("specbridge", "success", app="specbridge")], [], "specbridge").state == (
        "none"
    )
