"""`specbridge worker`'s lanes: the event queues (interactive first) in a warm process,
agents forked per run."""

from __future__ import annotations

from rq import SimpleWorker, Worker

from bot.events.worker import WarmWorker, lane_queues


def test_event_queues_go_to_the_warm_lane_interactive_first_and_agents_to_their_own() -> None:
    assert lane_queues(["interactive", "events", "agents"]) == (
        ["interactive", "events"],
        ["agents"],
    )
    assert lane_queues(["agents", "events", "interactive"])[0] == ["interactive", "events"]


def test_a_worker_asked_for_events_takes_the_interactive_queue_too() -> None:
    assert lane_queues(["events"]) == (["interactive", "events"], [])
    assert lane_queues(["interactive"]) == (["interactive"], [])
    assert lane_queues(["agents"]) == ([], ["agents"])


def test_the_warm_lane_runs_jobs_in_its_own_process_and_agents_fork() -> None:
    assert issubclass(WarmWorker, SimpleWorker)
    assert not issubclass(Worker, SimpleWorker)  # RQ's Worker forks a work horse per job
