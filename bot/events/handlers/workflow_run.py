"""`workflow_run` (requested, in_progress, completed) of a run a `hosted: workflow` task
dispatched → its card to Building while it runs; a run that fails fails the task with
the run's link (bot/agents/hosted.py). Runs specbridge did not dispatch are ignored."""

from __future__ import annotations

from bot.agents.hosted import WorkflowRunEvent, follow_workflow_run
from bot.events.router import Event, router


@router.register("workflow_run", "in_progress", "completed")
def on_workflow_run(event: Event) -> None:
    follow_workflow_run(
        event.session,
        event.settings,
        event.repository_gateway(),
        event.board_gateway(),
        WorkflowRunEvent.from_payload(event.payload["action"], event.payload["workflow_run"]),
    )
