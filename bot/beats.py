"""Something kept fresh while a block runs: a delivery's lease, a task's heartbeat."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, update

from bot.settings import Settings
from storage.db import session_scope

log = logging.getLogger(__name__)


@contextmanager
def beating(seconds: float, beat: Callable[[], None], name: str) -> Iterator[None]:
    """Call `beat` every `seconds` from a thread of its own until the block ends.

    A beat that fails (the database away for a moment) is logged, and the next
    one tries again: the block itself goes on.
    """
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(seconds):
            try:
                beat()
            except Exception:
                log.warning("%s failed; trying again in %ss", name, seconds, exc_info=True)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def heartbeat(
    settings: Settings, model: type[Any], still_running: ColumnElement[bool], name: str
) -> AbstractContextManager[None]:
    """A run's row (a Task, a PlanningRun) gets `heartbeat_at` now, every heartbeat
    (SPECBRIDGE_TASK_HEARTBEAT_SECONDS) while the block runs and `still_running` holds
    for it: the reaper takes back a run silent for too long (bot/agents/reaper.py)."""

    def beat() -> None:
        with session_scope(settings.database_url) as session:
            session.execute(
                update(model).where(still_running).values(heartbeat_at=datetime.now(UTC))
            )

    return beating(settings.task_heartbeat_seconds, beat, name)
