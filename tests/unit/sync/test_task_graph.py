"""The graph drawn on the tracking issue (bot/sync/task_graph.py)."""

from __future__ import annotations

from bot.sync.render import tracking_body
from storage.models import (
    IssueState,
    Repository,
    Spec,
    SpecTask,
    Ticket,
    TicketDependency,
    TicketPhase,
)


def tickets(dependency_order: list[int]) -> list[Ticket]:
    """t3 waits on t1 and t2, its dependency rows in `dependency_order`."""
    made = {
        n: Ticket(
            id=n,
            issue_number=10 + n,
            state=IssueState.OPEN,
            phase=TicketPhase.BACKLOG,
            blocked=False,
            spec_task=SpecTask(key=f"t{n}", title=f"Task {n}"),
        )
        for n in (1, 2, 3)
    }
    made[3].dependencies = [TicketDependency(depends_on_id=n) for n in dependency_order]
    return list(made.values())


def test_the_same_dependencies_read_in_another_order_draw_the_same_tracking_issue() -> None:
    # The database returns a ticket's dependency rows in no set order; a body that
    # followed it would be rewritten on GitHub with nothing changed.
    spec = Spec(
        key="rocket",
        title="Rocket",
        path="specs/rocket.yaml",
        labels=[],
        context="",
        repository=Repository(full_name="octo/rocket"),
    )
    first = tracking_body(spec, tickets([1, 2]))
    assert "t11 --> t13" in first and "t12 --> t13" in first  # by issue number
    assert tracking_body(spec, tickets([2, 1])) == first


def test_a_ticket_whose_run_failed_is_counted_drawn_and_listed_as_failed() -> None:
    spec = Spec(
        key="rocket",
        title="Rocket",
        path="specs/rocket.yaml",
        labels=[],
        context="",
        repository=Repository(full_name="octo/rocket"),
    )
    made = tickets([1, 2])
    made[0].phase, made[1].phase = TicketPhase.BUILDING, TicketPhase.BUILDING
    made[1].failure = "claude: not found (the command exited with status 127)"
    body = tracking_body(spec, made)
    # Counted apart from its phase: building 1, not building 2.
    assert "Open by phase: backlog 1, building 1, **failed 1**" in body
    assert "### Failed\n\n- #12: claude: not found (the command exited with status 127)" in body
    assert '  t12["#12 t2: Task 2 ✗ failed"]:::failed' in body
    assert "classDef failed fill:#ffebe9" in body
    assert "- [ ] #12 t2 (failed)" in body and "- [ ] #11 t1\n" in body
    # Closed, it is done, whatever its last run said.
    made[1].state, made[1].state_reason = IssueState.CLOSED, "completed"
    body = tracking_body(spec, made)
    assert "failed" not in body.replace("classDef failed", "")
