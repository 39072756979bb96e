"""(event, action) → handler, as in python/bedevere and gidgethub's router."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from bot.github import BoardGateway, RepositoryGateway, github_client
from bot.settings import Settings


@dataclass
class Event:
    """One webhook delivery being processed, with what its handlers need."""

    name: str
    payload: dict[str, Any]
    delivery_id: str
    settings: Settings
    session: Session
    action: str | None = field(init=False)

    def __post_init__(self) -> None:
        self.action = self.payload.get("action")

    @property
    def installation_id(self) -> int | None:
        return (self.payload.get("installation") or {}).get("id")

    @property
    def repository_full_name(self) -> str | None:
        return (self.payload.get("repository") or {}).get("full_name")

    @property
    def sender(self) -> str:
        return (self.payload.get("sender") or {}).get("login", "")

    def repository_gateway(self, full_name: str | None = None) -> RepositoryGateway:
        """The gateway for the event's repository (or another of the same installation)."""
        name = full_name or self.repository_full_name
        assert name is not None
        return RepositoryGateway(github_client(self.settings, self.installation_id), name)

    def board_gateway(self) -> BoardGateway:
        return BoardGateway(github_client(self.settings, self.installation_id))


Handler = Callable[[Event], None]
# Says from the payload alone that a handler would do nothing (the webhook then queues no job).
Skip = Callable[[dict[str, Any]], bool]


class Router:
    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str | None], list[Handler]] = {}
        self._skips: dict[Handler, Skip] = {}

    def register(
        self, event: str, *actions: str, unless: Skip | None = None
    ) -> Callable[[Handler], Handler]:
        """Register for some actions of an event, or for all of them when none is named.

        `unless(payload)`: true when the handler has nothing to do for that payload,
        known before any work (a bot's comment): the delivery then gets no job.
        The handler still checks it itself.
        """

        def decorate(handler: Handler) -> Handler:
            for action in actions or (None,):
                self._handlers.setdefault((event, action), []).append(handler)
            if unless is not None:
                self._skips[handler] = unless
            return handler

        return decorate

    def wanted(self, event: str, payload: dict[str, Any]) -> bool:
        """Whether any handler has something to do for this payload."""
        return any(
            handler not in self._skips or not self._skips[handler](payload)
            for handler in self.handlers_for(event, payload.get("action"))
        )

    def handlers_for(self, event: str, action: str | None) -> list[Handler]:
        every_action = self._handlers.get((event, None), [])
        if action is None:  # push and other events without actions
            return list(every_action)
        return every_action + self._handlers.get((event, action), [])

    def dispatch(self, event: Event) -> bool:
        """Run every handler for the event; False when none is registered."""
        handlers = self.handlers_for(event.name, event.action)
        for handler in handlers:
            handler(event)
        return bool(handlers)


router = Router()
