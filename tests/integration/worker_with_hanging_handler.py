"""`specbridge worker` with a handler that hangs on its first run, for the tests of the
warm events lane: `specbridge_test_hang` sleeps (RQ's alarm stops it at the job's
timeout); `specbridge_test_stubborn` blocks that alarm first (only the supervisor's
kill stops it). Each writes its lane's pid to `$HANG_MARKS/<event>` on the first run
and to `$HANG_MARKS/<event>.again` on a later one, which returns at once.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from bot.cli import main
from bot.events import worker
from bot.events.router import Event, router

HANG = "specbridge_test_hang"
STUBBORN = "specbridge_test_stubborn"
worker.HANG_GRACE_SECONDS = 2  # the supervisor's patience past a job's timeout


def _first_run(event: Event) -> bool:
    marks = Path(os.environ["HANG_MARKS"])
    try:
        first = os.open(marks / event.name, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        (marks / f"{event.name}.again").write_text(str(os.getpid()))
        return False
    os.write(first, str(os.getpid()).encode())
    os.close(first)
    return True


@router.register(HANG)
def hang(event: Event) -> None:
    if _first_run(event):
        time.sleep(3600)


@router.register(STUBBORN)
def stubborn(event: Event) -> None:
    if _first_run(event):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(3600)


@router.register("specbridge_test_quick")
def quick(event: Event) -> None:
    (Path(os.environ["HANG_MARKS"]) / f"quick-{event.delivery_id}").write_text(str(os.getpid()))


if __name__ == "__main__":
    sys.exit(main(["worker"]))
