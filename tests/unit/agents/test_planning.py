"""What `/status` says of an idea's planning, and the order of the phases."""

from __future__ import annotations

import pytest

from bot.agents.planning import describe, next_phase
from storage.models import PlanningRun, PlanningStatus, SpecPhase


def test_the_phases_follow_one_another_and_end_with_the_tasks() -> None:
    assert [next_phase(p) for p in ("requirements", "design", "tasks")] == ["design", "tasks", None]
    assert next_phase("explore") is None


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (PlanningStatus.QUEUED, "the planner `claude` is queued to write the design"),
        (PlanningStatus.RUNNING, "is writing the design in `specs/x.yaml`"),
        (PlanningStatus.ASKING, "answer them here, then comment `/specify continue`"),
        (PlanningStatus.OPENED, "wait for review and merge in #7"),
        (PlanningStatus.MERGED, "are merged (#7)"),
        (PlanningStatus.FAILED, "failed: it wrote outside (`/specify continue` runs it again)"),
    ],
)
def test_status_says_where_the_planning_is(status: PlanningStatus, said: str) -> None:
    run = PlanningRun(
        id=3,
        phase=SpecPhase.DESIGN,
        status=status,
        agent="claude",
        spec_path="specs/x.yaml",
        pull_request_number=7,
        revision=1,
        error="it wrote outside",
    )
    text = describe(run)
    assert text.startswith("Planning phase **design** (run 3, revision 1):")
    assert said in text
