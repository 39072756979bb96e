"""How a sync's cost grows with its spec, with real processes against the GitHub
double and pacing off: GitHub's writes and reads, the wall time from the push to
the sync's end, the worker's CPU per task, and each process tree's peak memory.

    python -m bench.bench_scale [--sizes 200,1000,2000,5000] [--code DIR ...]

For each size: `specbridge serve`, one `specbridge worker` (its lanes included) and
a push of a spec of that many tasks in chains of ten (bench/bench_bridge.py), on
the double with its limits lifted. The sync ends when every card has a Status,
no delivery is unfinished and no spec waits to continue; then `specbridge
reconcile` checks the board (every card where its ticket says).

Worker CPU is the whole worker tree's (user + system, children reaped included)
from the push to the end; peak memory is the highest PSS of each process tree
sampled every half second. `--code DIR` more than once runs each checkout in turn
at each size (e.g. `git worktree add /tmp/before 7e78a98`), for ratios measured in
one run. Counts and times, no verdict.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.bench_workers import Bench, bench, board_done, push_spec
from tests.e2e.harness import wait_until
from tests.support import REPO_ROOT

NO_LIMITS = {
    "content_per_minute": 10**7,
    "content_per_hour": 10**7,
    "rest_points_per_minute": 10**7,
    "graphql_points_per_minute": 10**7,
}
TICKS = os.sysconf("SC_CLK_TCK")


# -- process trees, read from /proc ---------------------------------------------------


def tree(root: int) -> list[int]:
    """The process and every descendant alive now."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(_stat(int(entry))[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command's name (state, ppid, ...)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(root: int) -> float:
    """User and system time of the tree, with what its reaped children used."""
    total = 0
    for pid in tree(root):
        try:
            fields = _stat(pid)
        except OSError:
            continue
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    return total / TICKS


def pss_mib(root: int) -> float:
    """Proportional set size of the tree: each shared page counted once in all."""
    total = 0
    for pid in tree(root):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total / 1024


class PeakMemory:
    """The highest PSS of each named process tree, sampled every half second."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots
        self.peaks = dict.fromkeys(roots, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, root in self.roots.items():
                self.peaks[name] = max(self.peaks[name], pss_mib(root))
            self._stop.wait(0.5)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


# -- one sync ---------------------------------------------------------------------------


@contextmanager
def unpaced(code: Path) -> Iterator[Bench]:
    """serve and one worker of `code`, pacing off, the double's limits lifted."""
    with bench(1, 0, code) as stack:
        stack.admin("POST", "limits", **NO_LIMITS)
        yield stack


def sync_ended(stack: Bench, full_name: str, tasks: int) -> bool:
    """Every card has a Status, and nothing of the sync is left to do."""
    return board_done(stack, full_name, tasks) and not stack._bot_busy()


def board_check(stack: Bench, full_name: str) -> str:
    """`specbridge reconcile` of the repository: what differs between cards and tickets."""
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "reconcile", "--repo", full_name],
        env=stack.environment(),
        cwd=stack.workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return (done.stdout + done.stderr).strip()


def scale(tasks: int, code: Path) -> dict[str, Any]:
    with unpaced(code) as stack:
        full_name = stack.repository("acme", "big")
        worker = stack.processes["worker1"].pid
        serve = stack.processes["serve"].pid
        stack.reset_requests()
        cpu_before = cpu_seconds(worker)
        with PeakMemory({"serve": serve, "worker": worker}) as memory:
            pushed = push_spec(stack, full_name, tasks)
            wait_until(lambda: sync_ended(stack, full_name, tasks), 120 + tasks, "the sync's end")
            wall = time.monotonic() - pushed
            cpu = cpu_seconds(worker) - cpu_before
        summary = stack.admin("GET", "requests/summary")
        requests = sum(summary["rest"].values()) + sum(summary["graphql"].values())
        check = board_check(stack, full_name)
    return {
        "tasks": tasks,
        "writes": summary["write_requests"],
        "reads": requests - summary["write_requests"],
        "wall": wall,
        "cpu": cpu,
        "cpu_per_task_ms": 1000 * cpu / tasks,
        "peak_serve": memory.peaks["serve"],
        "peak_worker": memory.peaks["worker"],
        "board_check": check,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="200,1000,2000,5000")
    parser.add_argument("--code", type=Path, action="append")
    args = parser.parse_args()
    codes = [c.resolve() for c in args.code or [REPO_ROOT]]
    results: dict[Path, list[dict[str, Any]]] = {code: [] for code in codes}
    for tasks in (int(n) for n in args.sizes.split(",")):
        for code in codes:  # interleaved: each size of every checkout under the same load
            result = scale(tasks, code)
            results[code].append(result)
            print(
                f"{code.name}: {tasks} tasks: {result['writes']} writes, {result['reads']} reads, "
                f"{result['wall']:.1f} s wall, worker CPU {result['cpu']:.1f} s "
                f"({result['cpu_per_task_ms']:.1f} ms a task), peak PSS serve "
                f"{result['peak_serve']:.0f} MiB, worker tree {result['peak_worker']:.0f} MiB; "
                f"board check: {result['board_check']}",
                flush=True,
            )
    for code, rows in results.items():
        base = rows[0]["cpu_per_task_ms"]
        growth = ", ".join(f"{r['tasks']}: {r['cpu_per_task_ms'] / base:.2f}x" for r in rows)
        print(f"{code.name}: CPU per task against {rows[0]['tasks']} tasks: {growth}")
    if len(codes) == 2:
        old, new = (results[c] for c in codes)
        for before, after in zip(old, new, strict=True):
            print(
                f"{before['tasks']} tasks, {codes[1].name} / {codes[0].name}: CPU "
                f"{after['cpu'] / before['cpu']:.2f}x, wall {after['wall'] / before['wall']:.2f}x, "
                f"writes {after['writes'] / before['writes']:.2f}x, "
                f"reads {after['reads'] / max(before['reads'], 1):.2f}x"
            )


if __name__ == "__main__":
    main()
