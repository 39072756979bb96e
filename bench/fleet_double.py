"""The fleet against the GitHub double, with GitHub's pacing: `python -m bench.bench_fleet
--double`.

Real processes: `specbridge serve`, k `specbridge worker` (each runs one agent at a
time: k agent slots), Redis and the database, specbridge's pace of one write a second
and the double's content limits (80 a minute, 500 an hour). The agent profile's
command sleeps the time the bench drew for its task (written in the task's
description, seeded) and commits a file of its own; the bench merges each pull
request as a person would (the double's admin API) once its run succeeded, so its
issue closes and its dependents become ready.

It reports, as ratios where it can:

- makespan / max(critical path, total work / k): from the first agent's start to
  the last run's end (the sync before it, at one write a second, is reported apart);
- pairs of tasks whose files overlap that ran at once (must be 0);
- the delay from a task's last dependency merging to its agent's start;
- the fairness scenario: a 300-task spec whose tasks are all ready, a 3-task spec
  pushed 5 s after it (in the same repository, in another one of the installation,
  in another installation's), 2 workers: seconds from the small spec's push to its
  first agent (the stack is stopped then: that run fails, unseen).
"""

from __future__ import annotations

import random
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import requests

from bench.bench_fleet import Task, critical_path, layered_graph, overlapping_pairs
from bench.bench_workers import CONFIG, Bench, bench
from tests.e2e.harness import wait_until
from tests.support import REPO_ROOT

MIN_SECONDS, MAX_SECONDS = 2.0, 15.0
# The agent: sleep the drawn time its task's description names, then commit a file of
# its own (files of its own: the bench measures the scheduler, not conflicts).
PROFILES = """\
sleeper:
  command: >-
    sleep "$(sed -n 's/.*bench-sleep=\\([0-9.]*\\).*/\\1/p' "$SPECBRIDGE_TASK_FILE" | head -n 1)";
    echo done > "work-$SPECBRIDGE_ISSUE.txt"
  timeout: 120
"""


@contextmanager
def fleet(workers: int) -> Iterator[Bench]:
    """serve and `workers` workers at GitHub's pace, the sleeper profile configured."""
    folder = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    folder.chmod(0o755)  # the agents' account enters it (their workspaces go there)
    profiles = folder / "agents.yaml"
    profiles.write_text(PROFILES)
    with bench(workers, 1.0, REPO_ROOT, SPECBRIDGE_AGENTS=str(profiles), TMPDIR=str(folder)) as s:
        yield s


def spec_yaml(spec: str, tasks: dict[int, Task], seconds: dict[int, float]) -> str:
    """The graph as a YAML spec: ids T-n, each task's sleep in its description."""
    lines = [f"id: {spec}", f"title: {spec}", "phase: tasks", "agent: sleeper", "tasks:"]
    for task_id, task in tasks.items():
        run = task.run
        lines += [
            f"  - id: T-{task_id}",
            f"    title: Task {task_id}",
            f"    description: bench-sleep={seconds[task_id]:.1f}",
            f"    priority: {run.priority}",
            f"    depends_on: [{', '.join(f'T-{d}' for d in task.depends_on)}]",
        ]
        if run.files is not None:
            lines.append(f"    files: [{', '.join(repr(f) for f in run.files)}]")
        if run.parallel:
            lines.append("    parallel: true")
    return "\n".join(lines) + "\n"


def drawn(tasks: dict[int, Task], seed: int) -> dict[int, float]:
    """Each task's sleep, drawn again on the double's scale (seconds, not minutes)."""
    draw = random.Random(seed)
    return {task_id: round(draw.uniform(MIN_SECONDS, MAX_SECONDS), 1) for task_id in tasks}


def runs(stack: Bench, full_name: str) -> list[tuple[int, str, str, float | None, float | None]]:
    """(issue, spec task id, status, started, finished) of each run in the repository."""
    return stack.sql(
        "select t.issue_number, st.key, k.status, extract(epoch from k.started_at), "
        "extract(epoch from k.finished_at) from tasks k join tickets t on t.id = k.ticket_id "
        "join spec_tasks st on st.id = t.spec_task_id join repositories r "
        f"on r.id = t.repository_id where r.full_name = '{full_name}' order by k.id"
    )


class Merger:
    """A person merging each agent's pull request once its run succeeded."""

    def __init__(self, stack: Bench, full_name: str) -> None:
        self.stack, self.full_name = stack, full_name
        self.merged: dict[int, float] = {}  # pull request → when it merged (epoch seconds)
        self.by_issue: dict[int, int] = {}  # issue → its pull request
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            rows = self.stack.sql(
                "select t.issue_number, k.pull_request_number from tasks k join tickets t "
                "on t.id = k.ticket_id join repositories r on r.id = t.repository_id "
                f"where r.full_name = '{self.full_name}' and k.status = 'succeeded' "
                "and k.pull_request_number is not null"
            )
            for issue, pull in rows:
                if pull in self.merged:
                    continue
                try:
                    self.stack.admin(
                        "POST", f"repos/{self.full_name}/pulls/{pull}/merge", user="alice"
                    )
                except requests.RequestException as error:  # tried again on the next round
                    print(f"merging #{pull}: {error}", flush=True)
                    continue
                self.merged[pull] = time.time()
                self.by_issue[issue] = pull
            self.stop.wait(0.3)

    def __enter__(self) -> Merger:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(30)


def makespan_run(size: int, workers: int, seed: int) -> dict[str, Any]:
    """The layered graph on `workers` workers, every pull request merged as it is ready."""
    tasks = layered_graph(size, seed, "fleet", unknown=0.0)
    seconds = drawn(tasks, seed)
    for task_id, task in tasks.items():
        task.seconds = seconds[task_id]
    with fleet(workers) as stack:
        full_name = stack.repository("acme", "fleet")
        with Merger(stack, full_name) as merger:
            pushed = time.time()
            stack.commit(
                full_name,
                {
                    CONFIG: "project: {owner: acme, number: 1}\n",
                    "specs/fleet.yaml": spec_yaml("fleet", tasks, seconds),
                },
            )

            def all_merged() -> bool:
                dead = [n for n, p in stack.processes.items() if p.poll() is not None]
                if dead:
                    raise RuntimeError(f"{', '.join(dead)} ended: see {stack.workdir}")
                return len(merger.merged) >= len(tasks)

            wait_until(all_merged, 600 + 30 * len(tasks), "every pull request merged")
        rows = runs(stack, full_name)
        writes = stack.admin("GET", "requests/summary")["write_requests"]
    by_task: dict[int, tuple[int, float, float]] = {}
    for issue, key, status, started, finished in rows:
        assert status == "succeeded", (key, status)
        by_task[int(key.removeprefix("T-"))] = (issue, float(started), float(finished))
    for task_id, (_, started, finished) in by_task.items():
        tasks[task_id].started_at, tasks[task_id].ended_at = started, finished
    merged_at = {
        task_id: merger.merged[merger.by_issue[issue]] for task_id, (issue, _, _) in by_task.items()
    }
    delays = [
        task.started_at - max(merged_at[d] for d in task.depends_on)
        for task in tasks.values()
        if task.depends_on and task.started_at is not None
    ]
    first = min(t.started_at for t in tasks.values() if t.started_at is not None)
    last = max(t.ended_at for t in tasks.values() if t.ended_at is not None)
    bound = max(critical_path(tasks), sum(seconds.values()) / workers)
    return {
        "size": len(tasks),
        "workers": workers,
        "ratio": (last - first) / bound,
        "bound": bound,
        "makespan": last - first,
        "sync_to_first": first - pushed,
        "overlapping": overlapping_pairs(tasks),
        "delays": sorted(delays),
        "writes": writes,
    }


# Where the small spec goes: the big one's repository, another repository of its
# installation (GitHub's content budget shared), another installation's.
WHERE = {"same": None, "repository": ("acme", "small"), "installation": ("beta", "small")}


def fairness_run(where: str, big: int = 300, timeout: float = 1200) -> float | None:
    """Seconds from a 3-task spec's push, 5 s after a `big`-task one's (all its tasks
    ready, none sharing files), to the small spec's first agent start; 2 workers. None:
    not within `timeout`."""
    with fleet(2) as stack:
        big_repo = stack.repository("acme", "big")
        elsewhere = WHERE[where]
        small_repo = stack.repository(*elsewhere) if elsewhere else big_repo
        every = {n: 10.0 for n in range(1, big + 1)}
        wide = layered_graph(big, 1, "big")
        for task in wide.values():
            task.depends_on = []
        stack.commit(
            big_repo,
            {
                CONFIG: "project: {owner: acme, number: 1}\n",
                "specs/big.yaml": spec_yaml("big", wide, every),
            },
        )
        time.sleep(5)
        small = layered_graph(15, 2, "small")
        three = {n: small[n] for n in (1, 2, 3)}
        for n, task in three.items():
            task.run = replace(task.run, files=(f"docs/small{n}.md",))
        files = {"specs/small.yaml": spec_yaml("small", three, {1: 5.0, 2: 5.0, 3: 5.0})}
        if elsewhere:
            files[CONFIG] = f"project: {{owner: {elsewhere[0]}, number: 1}}\n"
        pushed = time.time()
        stack.commit(small_repo, files)

        def small_started() -> float | None:
            found = stack.sql(
                "select min(extract(epoch from k.started_at)) from tasks k join tickets t "
                "on t.id = k.ticket_id join specs s on s.id = t.spec_id "
                "where s.key = 'small' and k.started_at is not null"
            )[0][0]
            return float(found) if found is not None else None

        try:
            started = wait_until(small_started, timeout, "the small spec's first agent")
        except AssertionError:
            return None
        return started - pushed


def report(sizes: list[int], workers: list[int], seed: int) -> None:
    print(
        "against the double at GitHub's pace (1 write/s, 80 creations a minute, 500 an "
        f"hour); agents sleep {MIN_SECONDS:g}-{MAX_SECONDS:g} s (seeded); one run, noisy: "
        "2 shared cores"
    )
    if sizes:
        print(
            f"{'tasks':>6} {'k':>3} {'makespan/LB':>12} {'LB s':>6} {'push→1st agent s':>17} "
            f"{'overlaps':>9} {'merge→start p50/p95/max s':>26} {'writes':>7}"
        )
    for size in sizes:
        for k in workers:
            result = makespan_run(size, k, seed)
            delays = result["delays"] or [0.0]
            print(
                f"{size:>6} {k:>3} {result['ratio']:>12.2f} {result['bound']:>6.0f} "
                f"{result['sync_to_first']:>17.1f} {result['overlapping']:>9} "
                f"{statistics.median(delays):>9.1f} / "
                f"{delays[int(0.95 * (len(delays) - 1))]:.1f} / {max(delays):<6.1f} "
                f"{result['writes']:>7}",
                flush=True,
            )
    for where, said in (
        ("same", "the same repository"),
        ("repository", "another repository of the installation"),
        ("installation", "another installation's repository"),
    ):
        seconds = fairness_run(where)
        shown = "not within the timeout" if seconds is None else f"{seconds:.1f} s"
        print(
            f"a 3-task spec pushed 5 s after a 300-task one, in {said}, 2 workers: "
            f"its first agent {shown} after its push",
            flush=True,
        )
