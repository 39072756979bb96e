"""Something kept fresh while a block runs: a delivery's lease, a task's heartbeat."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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
