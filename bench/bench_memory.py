"""Memory a deployment holds: `specbridge serve` and one `specbridge worker` (its
lanes and helpers), idle and after a 200-task sync, as PSS (proportional set
size: a page shared by n processes counts 1/n in each, so a tree's PSS is what it
costs the machine).

    python -m bench.bench_memory [--tasks 200] [--rounds 2] [--code DIR ...]

Pacing off, the double's limits lifted (bench/bench_scale.py). Each process's PSS
is printed by its name (`ps -o comm`), then each tree's total. `--code DIR` more
than once alternates the checkouts round by round, for ratios measured in one run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from bench.bench_scale import pss_mib, sync_ended, tree, unpaced
from bench.bench_workers import push_spec
from tests.e2e.harness import wait_until
from tests.support import REPO_ROOT

SETTLE_SECONDS = 5


def _own_pss(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def memory(tasks: int, code: Path) -> dict[str, Any]:
    with unpaced(code) as stack:
        full_name = stack.repository("acme", "big")
        roots = {"serve": stack.processes["serve"].pid, "worker": stack.processes["worker1"].pid}
        time.sleep(SETTLE_SECONDS)
        idle = {name: pss_mib(root) for name, root in roots.items()}
        push_spec(stack, full_name, tasks)
        wait_until(lambda: sync_ended(stack, full_name, tasks), 300 + tasks, "the sync's end")
        time.sleep(SETTLE_SECONDS)
        after = {name: pss_mib(root) for name, root in roots.items()}
        parts = {name: _parts(root) for name, root in roots.items()}
    return {"idle": idle, "after": after, "parts": parts}


def _parts(root: int) -> dict[str, float]:
    own = {pid: _own_pss(pid) for pid in tree(root)}
    names = {}
    for pid in own:
        try:
            names[pid] = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            names[pid] = str(pid)
    return {f"{names[pid]}({pid})": mib for pid, mib in own.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--code", type=Path, action="append")
    args = parser.parse_args()
    codes = [c.resolve() for c in args.code or [REPO_ROOT]]
    results: dict[Path, list[dict[str, Any]]] = {code: [] for code in codes}
    for _ in range(args.rounds):
        for code in codes:
            result = memory(args.tasks, code)
            results[code].append(result)
            print(
                f"{code.name}: serve {result['idle']['serve']:.0f} MiB idle, "
                f"{result['after']['serve']:.0f} after a {args.tasks}-task sync; worker tree "
                f"{result['idle']['worker']:.0f} idle, {result['after']['worker']:.0f} after",
                flush=True,
            )
            for tree_name, parts in result["parts"].items():
                shown = ", ".join(f"{name} {mib:.0f}" for name, mib in parts.items())
                print(f"  {tree_name}: {shown}")
    medians = {
        code: {
            tree_name: statistics.median(r["after"][tree_name] for r in rows)
            for tree_name in ("serve", "worker")
        }
        for code, rows in results.items()
    }
    for code, tree_pss in medians.items():
        print(
            f"{code.name}: median after the sync: serve {tree_pss['serve']:.0f} MiB, "
            f"worker tree {tree_pss['worker']:.0f} MiB"
        )
    if len(codes) == 2:
        old, new = (medians[c] for c in codes)
        print(
            f"{codes[1].name} / {codes[0].name}: serve {new['serve'] / old['serve']:.2f}x, "
            f"worker tree {new['worker'] / old['worker']:.2f}x"
        )


if __name__ == "__main__":
    main()
