"""Several attempts at one task: the comment that compares them, and which draft is
marked ready once its checks pass."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from bot.agents import pull_checks
from bot.agents.attempts import MARKER, Attempt, Seen, comparison, pick_of, stays_draft
from bot.agents.profiles import AgentProfile
from bot.github.repository import DiffSize
from bot.settings import load_settings
from storage.db import session_scope
from storage.models import CheckVerdict, Repository, Spec, SpecTask, Task, TaskStatus, Ticket

PROFILES = {"claude": AgentProfile("claude", "true"), "codex": AgentProfile("codex", "true")}
MANUAL = {**PROFILES, "codex": AgentProfile("codex", "true", pick="manual")}


def test_the_comparison_has_a_row_per_attempt_with_tests_checks_diff_and_cost() -> None:
    said = comparison(
        [
            Attempt(1, "claude", TaskStatus.SUCCEEDED, 12, "abc", "passed", None, "$0.42"),
            Attempt(
                2, "codex", TaskStatus.FAILED, None, None, "failed", "the tests failed", "~$1.10"
            ),
        ],
        {1: Seen(DiffSize(files=3, additions=40, deletions=2), "pending")},
        "first",
    )
    assert said.startswith(MARKER)
    assert "| tests | checks | diff | cost |" in said
    assert (
        "| 1 | `claude` | succeeded | #12 | passed | pending | +40 -2 in 3 files | $0.42 |" in said
    )
    assert "| 2 | `codex` | failed | none | failed | none | none | ~$1.10 |" in said
    assert "The first to pass its checks is marked ready for review" in said
    assert "merge the one to keep" in said.lower()


def test_with_pick_manual_the_comparison_says_people_pick() -> None:
    one = Attempt(1, "claude", TaskStatus.SUCCEEDED, 12, "abc", "none", None, "unknown")
    said = comparison([one], {1: Seen(DiffSize(1, 1, 0), "passed")}, "manual")
    assert "+1 -0 in 1 file |" in said
    assert "None is marked ready for review (`pick: manual`): people pick." in said


def _ticket(session: Session, agents: tuple[str, str], pick: str | None = None) -> Ticket:
    repository = Repository(full_name=f"acme/{'-'.join(agents)}-{pick}")
    ticket = Ticket(repository=repository, issue_number=1)
    if pick is not None:
        spec = Spec(repository=repository, key="fly", path="specs/fly.yaml", title="Fly")
        ticket.spec_task = SpecTask(spec=spec, key="T-1", title="Fly", pick=pick)
    for number, agent in enumerate(agents, start=1):
        session.add(
            Task(
                ticket=ticket,
                agent=agent,
                status=TaskStatus.SUCCEEDED,
                attempt_number=number,
                pull_request_number=10 + number,
            )
        )
    session.add(ticket)
    session.flush()
    return ticket


def _passed(session: Session, ticket: Ticket, pull: int) -> None:
    session.add(
        CheckVerdict(
            ticket_id=ticket.id, pull_request_number=pull, head_sha=f"h{pull}", verdict="passed"
        )
    )
    session.flush()


def test_the_first_attempt_to_pass_is_marked_ready_and_the_other_stays_a_draft(
    session: Session,
) -> None:
    ticket = _ticket(session, ("claude", "codex"))
    assert stays_draft(session, ticket, 12, PROFILES) is None  # the first to pass
    _passed(session, ticket, 12)
    assert stays_draft(session, ticket, 11, PROFILES) == (
        "#12, another attempt, passed its checks first"
    )
    assert stays_draft(session, ticket, 12, PROFILES) is None  # its own verdict again


def test_a_pull_request_that_is_not_an_attempt_is_marked_ready(session: Session) -> None:
    ticket = _ticket(session, ("claude", "codex"))
    _passed(session, ticket, 11)
    assert stays_draft(session, ticket, 99, PROFILES) is None


def test_pick_manual_on_a_profile_or_the_task_marks_none(session: Session) -> None:
    mixed = _ticket(session, ("claude", "codex"))
    assert pick_of(mixed, MANUAL) == "manual"  # one attempt's profile says manual
    assert stays_draft(session, mixed, 11, MANUAL) == (
        "people pick one of the attempts (`pick: manual`)"
    )
    assert pick_of(mixed, PROFILES) == "first"


def test_the_tasks_pick_overrides_the_profiles(session: Session) -> None:
    assert pick_of(_ticket(session, ("claude", "claude"), pick="manual"), PROFILES) == "manual"
    assert pick_of(_ticket(session, ("codex", "codex"), pick="first"), MANUAL) == "first"


def test_once_no_attempt_runs_the_others_checks_are_read_again(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """News of an attempt's checks while another ran was left to that run: when the last
    one ends, the others' pull requests are looked at again."""
    looked: list[tuple[int, int]] = []
    monkeypatch.setattr(pull_checks, "follow_after_run", lambda _, t, n: looked.append((t, n)))
    settings = load_settings({"DATABASE_URL": db, "GITHUB_TOKEN": "t"})
    with session_scope(db) as session:
        ticket = _ticket(session, ("claude", "codex"))
        first, second = sorted(ticket.tasks, key=lambda t: t.attempt_number or 0)
        second.status = TaskStatus.RUNNING
        session.commit()
        ids = (ticket.id, first.id, second.id)
    pull_checks.look_at_the_other_attempts(settings, ids[1])
    assert looked == []  # the second still runs: it owns the card
    with session_scope(db) as session:
        session.get_one(Task, ids[2]).status = TaskStatus.SUCCEEDED
        session.commit()
    pull_checks.look_at_the_other_attempts(settings, ids[2])
    assert looked == [(ids[0], 11)]  # the first's; the second's own push asked for its own
