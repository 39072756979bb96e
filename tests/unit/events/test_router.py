"""The router runs each registered handler once per delivery."""

from __future__ import annotations

from typing import Any

from bot.events.router import Event, Router
from bot.settings import Settings


def _event(name: str, payload: dict[str, Any]) -> Event:
    return Event(name, payload, "d-1", Settings(), session=None)  # type: ignore[arg-type]


def test_a_handler_for_every_action_runs_once_for_an_event_without_action() -> None:
    router = Router()
    calls: list[str] = []
    router.register("push")(lambda event: calls.append(event.name))

    assert router.dispatch(_event("push", {"ref": "refs/heads/main"}))
    assert calls == ["push"]


def test_handlers_for_all_actions_and_for_one_action_both_run() -> None:
    router = Router()
    calls: list[str] = []
    router.register("issues")(lambda event: calls.append("any"))
    router.register("issues", "closed")(lambda event: calls.append("closed"))

    router.dispatch(_event("issues", {"action": "closed"}))
    router.dispatch(_event("issues", {"action": "opened"}))
    assert calls == ["any", "closed", "any"]
