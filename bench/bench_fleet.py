"""The fleet's scheduler, measured: `python -m bench.bench_fleet`.

A simulation in virtual time over the real admission code (bot/agents/admission.py,
specs/paths.py), not a run against the double: each agent "sleeps" a drawn time (30
to 180 s, seeded), its pull request merges the moment it ends, and every event runs
the admission pass the scheduler runs, on the same values. What the double would add
(a webhook, a queue pickup, GitHub's pacing) is a constant per start, measured apart
by the end-to-end tests; the pass's own cost here is real CPU time.

For a generated layered DAG (200 and 1,000 tasks, file overlaps, a few tasks naming
no files) and k = 2, 8, 32 workers it reports, as ratios:

- makespan / max(critical path, total work / k) (the lower bound);
- the workers' idle share while ready work waits (idle workers that waiting work
  could have used: it waited for files, or for a spec to drain);
- pairs of tasks that ran at once though their files overlap (must be 0);
- the delay from a task's last dependency merging to its start, over the mean run
  (in virtual time it is all waiting: for a worker, for files, for a spec to
  drain); the scheduler's own part is the pass, whose real cost is the last
  column (against the 5 s the issue allows a start after a merge);
- and a 3-task spec pushed 5 s after a 300-task one on 2 workers: how long until its
  first agent starts, against first-come-first-served (the order a queue holds).
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import time
from dataclasses import dataclass, field, replace

from bot.agents.admission import Caps, Run, admit
from specs.paths import overlap

MIN_SECONDS, MAX_SECONDS = 30.0, 180.0
REPO = "acme/bench"


@dataclass
class Task:
    run: Run
    seconds: float
    depends_on: list[int] = field(default_factory=list)
    ready_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None


def layered_graph(size: int, seed: int, spec: str = "big", unknown: float = 0.0) -> dict[int, Task]:
    """A layered DAG: each task waits for one or two of the layer before; files drawn
    from a pool half the graph's size (so some overlap); a share `unknown` name no
    files, half of those marked parallel."""
    draw = random.Random(seed)
    layers = max(5, size // 20)
    per_layer = size // layers
    pool = [f"src/module{n}.py" for n in range(size // 2)] + ["src/shared/*.py"]
    tasks: dict[int, Task] = {}
    previous: list[int] = []
    next_id = 1
    for _ in range(layers):
        current = []
        for _ in range(per_layer):
            kind = draw.random()
            files: tuple[str, ...] | None = tuple(draw.sample(pool, draw.choice((1, 1, 2))))
            parallel = False
            if kind < unknown / 2:
                files = None
            elif kind < unknown:
                files, parallel = None, True
            run = Run(
                id=next_id,
                profile="sleeper",
                repository=REPO,
                installation="1",
                spec=spec,
                files=files,
                parallel=parallel,
                priority=draw.choice(("high", "medium", "medium", "low")),
                position=next_id,
                label=f"#{next_id}",
            )
            depends = draw.sample(previous, min(len(previous), draw.choice((1, 2))))
            tasks[next_id] = Task(run, draw.uniform(MIN_SECONDS, MAX_SECONDS), depends)
            current.append(next_id)
            next_id += 1
        previous = current
    return tasks


def critical_path(tasks: dict[int, Task]) -> float:
    longest: dict[int, float] = {}
    for task_id in sorted(tasks):  # ids follow the layers: dependencies come first
        task = tasks[task_id]
        longest[task_id] = task.seconds + max((longest[d] for d in task.depends_on), default=0)
    return max(longest.values())


@dataclass
class Outcome:
    makespan: float
    idle_share: float
    overlapping: int
    merge_to_start: list[float]
    pass_seconds: list[float]


def simulate(
    tasks: dict[int, Task], workers: int, arrivals: dict[int, float] | None = None, fifo=False
) -> Outcome:
    """Run the graph on `workers` workers; `arrivals`: when a task's spec was pushed
    (0 by default). `fifo`: start in the order tasks became ready, as a plain queue
    would, instead of the admission pass (files still respected)."""
    arrivals = arrivals or {}
    caps = Caps(per_installation=workers)
    merged: set[int] = set()
    waiting: dict[int, Task] = {}
    active: dict[int, Task] = {}
    events: list[tuple[float, int, str]] = []  # (time, task, "arrive" | "end")
    for task_id, task in tasks.items():
        if not task.depends_on:
            heapq.heappush(events, (arrivals.get(task_id, 0.0), task_id, "arrive"))
    idle_time = ready_time = 0.0
    now = 0.0
    pass_seconds: list[float] = []
    while events:
        at = events[0][0]
        if waiting:
            ready_time += (at - now) * workers
            # idle workers that waiting work could have used
            idle_time += (at - now) * min(workers - len(active), len(waiting))
        now = at
        while events and events[0][0] == now:
            _, task_id, kind = heapq.heappop(events)
            task = tasks[task_id]
            if kind == "end":
                task.ended_at = now
                del active[task_id]
                merged.add(task_id)
                for other_id, other in tasks.items():
                    if task_id in other.depends_on and all(d in merged for d in other.depends_on):
                        heapq.heappush(
                            events, (max(now, arrivals.get(other_id, 0.0)), other_id, "arrive")
                        )
            else:
                task.ready_at = now
                waiting[task_id] = task
        began = time.perf_counter()
        if fifo:
            started = _fifo(waiting, active, caps)
        else:
            started = admit(
                [t.run for t in waiting.values()], [t.run for t in active.values()], caps
            ).started
        pass_seconds.append(time.perf_counter() - began)
        for run in started:
            task = waiting.pop(run.id)
            task.started_at = now
            active[run.id] = task
            heapq.heappush(events, (now + task.seconds, run.id, "end"))
    assert not waiting and not active, "the graph did not finish"
    delays = [
        t.started_at - t.ready_at
        for t in tasks.values()
        if t.depends_on and t.started_at is not None and t.ready_at is not None
    ]
    return Outcome(
        makespan=max(t.ended_at or 0 for t in tasks.values()),
        idle_share=idle_time / ready_time if ready_time else 0.0,
        overlapping=overlapping_pairs(tasks),
        merge_to_start=delays,
        pass_seconds=pass_seconds,
    )


def _fifo(waiting: dict[int, Task], active: dict[int, Task], caps: Caps) -> list[Run]:
    """First come, first served: the oldest ready task that may start, one at a time."""
    holding = [t.run for t in active.values()]
    started = []
    for task in sorted(waiting.values(), key=lambda t: (t.ready_at, t.run.id)):
        one = admit([task.run], holding, caps).started
        if one:
            holding.append(task.run)
            started.append(task.run)
    return started


def overlapping_pairs(tasks: dict[int, Task]) -> int:
    """Pairs that ran at once though their files overlap (or one ran alone in its spec)."""
    runs = sorted(tasks.values(), key=lambda t: t.started_at or 0)
    count = 0
    for index, first in enumerate(runs):
        for second in runs[index + 1 :]:
            if (second.started_at or 0) >= (first.ended_at or 0):
                break
            a, b = first.run, second.run
            if (
                a.spec == b.spec
                and ((a.files is None and not a.parallel) or (b.files is None and not b.parallel))
            ) or (a.files is not None and b.files is not None and overlap(a.files, b.files)):
                count += 1
    return count


def fairness(seed: int, fifo: bool) -> float:
    """Seconds from a 3-task spec's push (5 s after a 300-task one's) to its first start."""
    big = layered_graph(300, seed, "big")
    for task in big.values():
        task.depends_on = []  # all ready at once: the worst case for the small spec
    small = layered_graph(3 * 5, seed + 1, "small")  # 5 layers of 3: take the first 3
    tasks = dict(big)
    arrivals = {}
    for offset, task in enumerate(list(small.values())[:3], start=1):
        run = replace(task.run, id=1000 + offset, files=(f"docs/small{offset}.md",))
        tasks[run.id] = Task(run, task.seconds)
        arrivals[run.id] = 5.0
    simulate(tasks, 2, arrivals, fifo=fifo)
    return min(tasks[i].started_at or 0 for i in arrivals) - 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", help="tasks of each graph (200,1000; with --double: 40)")
    parser.add_argument("--workers", help="workers (2,8,32; with --double: 2,8)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--unknown", default="0,0.1", help="shares of tasks naming no files, one table each"
    )
    parser.add_argument(
        "--double",
        action="store_true",
        help="against the GitHub double at GitHub's pace (bench/fleet_double.py), not simulated",
    )
    parser.add_argument(
        "--fairness-only", action="store_true", help="with --double: only the fairness scenario"
    )
    args = parser.parse_args()
    if args.double:
        from bench import fleet_double  # it builds on this module's graphs

        sizes = [] if args.fairness_only else [int(s) for s in (args.sizes or "40").split(",")]
        workers = [int(k) for k in (args.workers or "2,8").split(",")]
        fleet_double.report(sizes, workers, args.seed)
        return
    args.sizes, args.workers = args.sizes or "200,1000", args.workers or "2,8,32"
    print("simulation over bot/agents/admission.py (virtual time; agent runs of 30-180 s)")
    for unknown in (float(u) for u in args.unknown.split(",")):
        print(f"\n{unknown:.0%} of the tasks name no files (half of them marked parallel)")
        _table(args, unknown)
    fair, queued = fairness(args.seed, fifo=False), fairness(args.seed, fifo=True)
    print(
        "\na 3-task spec pushed 5 s after a 300-task one, 2 workers: first agent after "
        f"{fair:.0f} s (the next free slot), against {queued:.0f} s first come first served "
        f"({queued / max(fair, 1e-9):.0f}x)"
    )


def _table(args: argparse.Namespace, unknown: float) -> None:
    mean_run = (MIN_SECONDS + MAX_SECONDS) / 2
    print(
        f"{'tasks':>6} {'k':>3} {'makespan/LB':>12} {'idle share':>11} {'overlaps':>9} "
        f"{'merge→start p50/p95 (÷mean run)':>32} {'pass ms mean/max':>17}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        for workers in (int(k) for k in args.workers.split(",")):
            tasks = layered_graph(size, args.seed, unknown=unknown)
            bound = max(critical_path(tasks), sum(t.seconds for t in tasks.values()) / workers)
            outcome = simulate(tasks, workers)
            delays = sorted(outcome.merge_to_start)
            p50 = statistics.median(delays) / mean_run
            p95 = delays[int(0.95 * (len(delays) - 1))] / mean_run
            passes = outcome.pass_seconds
            print(
                f"{size:>6} {workers:>3} {outcome.makespan / bound:>12.2f} "
                f"{outcome.idle_share:>11.1%} {outcome.overlapping:>9} "
                f"{p50:>15.2f} / {p95:<14.2f} "
                f"{1000 * statistics.mean(passes):>7.2f} / {1000 * max(passes):<7.1f}"
            )


if __name__ == "__main__":
    main()
