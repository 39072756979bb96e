"""The agent's supervising parent: an agent never outlives the job that started it.

Run as a file (`python -I supervise.py [--as UID:GID] COMMAND`), with the
agent's clean environment and no import of specbridge. It asks the kernel to
signal it when its parent (the worker's job) dies, runs COMMAND through the
shell in a process group of its own (as another account with --as), and on
SIGTERM — from the job (timeout, cancel) or from the kernel (the job was
killed) — kills that whole group and exits. Stdlib only, on purpose.
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def main() -> int:
    parent = os.getppid()
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    agents: list[subprocess.Popen[bytes]] = []

    def stop(signum: int, _frame: object) -> None:
        # No wait here: the interrupted wait below holds Popen's lock.
        for agent in agents:
            _kill_group(agent.pid)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if os.getppid() != parent:  # the parent died before we asked: stop at once
        return 143
    command, account = sys.argv[-1], {}
    if sys.argv[1] == "--as":
        uid, gid = (int(n) for n in sys.argv[2].split(":"))
        account = {"user": uid, "group": gid, "extra_groups": []}
    agent = subprocess.Popen(["/bin/sh", "-c", command], process_group=0, **account)
    agents.append(agent)
    status = agent.wait()
    # The command is done; anything it left running in its group goes with it.
    _kill_group(agent.pid)
    return status if status >= 0 else 128 - status


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
