"""`specbridge worker` with one more handler, for tests that kill a worker mid-delivery.

The first delivery of `specbridge_test_slow` writes the worker's session id to
`$SLOW_MARKS/started` and then hangs; any later run writes it to `$SLOW_MARKS/done`
and returns.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from bot.cli import main
from bot.events.router import Event, router

SLOW_EVENT = "specbridge_test_slow"


@router.register(SLOW_EVENT)
def slow(_event: Event) -> None:
    marks = Path(os.environ["SLOW_MARKS"])
    try:
        first = os.open(marks / "started", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        (marks / "done").write_text(str(os.getsid(0)))
        return
    os.write(first, str(os.getsid(0)).encode())
    os.close(first)
    time.sleep(3600)  # until the test kills this worker


if __name__ == "__main__":
    sys.exit(main(["worker"]))
