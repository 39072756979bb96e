"""Workers under load, with real processes against the GitHub double: whether people
get answers while big specs sync, how many cheap deliveries a worker handles a
second, and the board and first agent at GitHub's pace.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        python -m bench.bench_workers [fairness] [throughput] [board] [budget]
            [--pace 1.0] [--tasks 300] [--cases 1x1,2x1,1x2,2x2] [--code DIR]

fairness: `specbridge serve`, W `specbridge worker` and S pushes of a T-task spec,
each on an installation of its own, at `--pace` seconds per write (GitHub's is 1;
below it the double's windows shrink alike). Meanwhile a person comments
`/status` on a ticket of yet another installation every 2 s: the time until the
reply is on GitHub, p50/p95/max, and how many of them came while the syncs ran.
Cases are WxS.
throughput: N cheap deliveries (`issues` reopened on an issue specbridge does not
track: a handler runs and finds nothing to do) stored with no worker running, then
one worker: deliveries handled per second, first to last.
board: one 200-task spec at `--pace`, one worker, an agent profile whose command is
`true`: the time from the push to every card on the board, to the first agent's
start, the sync's writes, and the creations GitHub's limits refused.
budget: the board at 0.1 and 1.0 s per write (the double's windows scaled alike).

`--code DIR` runs another checkout's `specbridge` (e.g. `git archive main | tar -x
-C DIR`) with this bench, for before/after ratios. Counts and times, no verdict.
Each case starts its own Redis (redis-server on a free port) and database.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

import requests
from sqlalchemy import create_engine, text

from bench.bench_bridge import spec_text
from tests.databases import create_empty_database, drop_database
from tests.e2e.harness import Stack, wait_until
from tests.support import REPO_ROOT, SPECBRIDGE_COLUMNS, github_payload, webhook_headers

STATUS_EVERY_SECONDS = 2.0
PERSON = "alice"


class Bench(Stack):
    """The harness's stack with as many workers as asked, running `code`'s specbridge."""

    def __init__(self, workers: int, pace: float, code: Path, **extra_env: str) -> None:
        root = Path(mkdtemp(prefix="bench-workers-"))
        super().__init__(create_empty_database(root), None, root, own_redis=True)
        self.workers, self.code = workers, code
        limits = "none" if pace == 0 else f"80/{60 * pace:g},500/{3600 * pace:g}"
        self.pace = pace
        self.extra_env = {
            "GITHUB_WRITE_INTERVAL": f"{pace:g}",
            "GITHUB_CONTENT_LIMITS": limits,
            "SPECBRIDGE_CHECK_TRANSACTIONS": "0",
            "SPECBRIDGE_HEAD_CHECK_SECONDS": "0",
            "SPECBRIDGE_REDELIVER_SECONDS": "0",
            **extra_env,
        }

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env["PYTHONPATH"] = str(self.code)
        return env

    def start(self) -> None:
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.start_redis()
        env = self.environment()
        # The schema of the code under test (another checkout's may lack this one's).
        subprocess.run(
            [sys.executable, "-m", "bot.cli", "db", "upgrade"],
            env=env,
            cwd=self.workdir,
            check=True,
            timeout=120,
        )
        self._spawn(
            "hub",
            [
                sys.executable,
                "-m",
                "fakehub",
                "--port",
                str(self.hub_port),
                "--webhook-url",
                f"{self.bot}/webhook",
                "--webhook-secret",
                env["GITHUB_WEBHOOK_SECRET"],
                "--state-dir",
                str(self.workdir / "hub"),
            ],
            {**env, "PYTHONPATH": str(REPO_ROOT)},  # this checkout's double, whatever the code
        )
        self._spawn(
            "serve", [sys.executable, "-m", "bot.cli", "serve", "--port", str(self.bot_port)], env
        )
        wait_until(lambda: _answers(f"{self.hub}/_admin/state"), 60, "the GitHub double")
        wait_until(lambda: _answers(f"{self.bot}/healthz"), 60, "specbridge serve")
        if self.pace and self.pace != 1:
            self.admin("POST", "limits", time_scale=self.pace)
        self.start_workers(self.workers)

    def start_workers(self, count: int) -> None:
        """Start them and wait until each listens on Redis (a push before would time
        their start, not the work)."""
        for n in range(1, count + 1):
            self._spawn(
                f"worker{n}", [sys.executable, "-m", "bot.cli", "worker"], self.environment()
            )
        if count:
            from redis import Redis

            redis = Redis.from_url(self.redis_url or "")
            wait_until(lambda: redis.scard("rq:workers") >= count, 60, "the workers")
            time.sleep(2)  # the rest of them (lanes, schedulers)

    def repository(self, owner: str, name: str, files: dict[str, str] | None = None) -> str:
        self.admin(
            "POST",
            "repos",
            owner=owner,
            name=name,
            default_branch="main",
            files=files or {"README.md": "bench\n"},
            project={"number": 1},
            status_options=SPECBRIDGE_COLUMNS,
        )
        return f"{owner}/{name}"

    def sql(self, query: str) -> Any:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                return connection.execute(text(query)).all()
        finally:
            engine.dispose()

    def close(self) -> None:
        self.stop()
        drop_database(self.database_url)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code < 500
    except requests.RequestException:
        return False


@contextmanager
def bench(workers: int, pace: float, code: Path, **extra_env: str) -> Iterator[Bench]:
    stack = Bench(workers, pace, code, **extra_env)
    try:
        stack.start()
        yield stack
    finally:
        stack.close()


CONFIG = ".github/specbridge.yml"


def push_spec(stack: Bench, full_name: str, tasks: int) -> float:
    files = {
        CONFIG: f"project: {{owner: {full_name.split('/')[0]}, number: 1}}\n",
        "specs/big.yaml": spec_text(tasks),
    }
    pushed = time.monotonic()
    stack.commit(full_name, files)
    return pushed


def board_done(stack: Bench, full_name: str, tickets: int) -> bool:
    """Every ticket's card has a Status (read from the database: the double's whole
    state is too big to poll)."""
    rows = stack.sql(
        "select count(*) from tickets t join repositories r on r.id = t.repository_id "
        f"where r.full_name = '{full_name}' and t.status_set"
    )
    return rows[0][0] >= tickets


def comments(stack: Bench, full_name: str, number: int) -> list[dict[str, Any]]:
    response = requests.get(
        f"{stack.hub}/repos/{full_name}/issues/{number}/comments",
        params={"per_page": 100},
        # A token of its own each time: the double's points are per token, as GitHub's.
        headers={"Authorization": f"token bench-{uuid.uuid4().hex}"},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


class StatusProbe:
    """A person asking `/status` every few seconds on one ticket, timing each reply."""

    def __init__(self, stack: Bench, full_name: str, number: int) -> None:
        self.stack, self.full_name, self.number = stack, full_name, number
        self.latencies: list[float] = []
        self.unanswered = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _replies(self) -> int:
        found = comments(self.stack, self.full_name, self.number)
        return sum(1 for c in found if c["user"]["login"].endswith("[bot]"))

    def _run(self) -> None:
        while not self.stop.is_set():
            before = self._replies()
            asked = time.monotonic()
            self.stack.admin(
                "POST",
                f"repos/{self.full_name}/issues/{self.number}/comments",
                user=PERSON,
                body="/status",
                author_association="MEMBER",
            )
            while self._replies() <= before:
                if time.monotonic() - asked > 300:
                    self.unanswered += 1
                    break
                time.sleep(0.1)
            else:
                self.latencies.append(time.monotonic() - asked)
            rest = STATUS_EVERY_SECONDS - (time.monotonic() - asked)
            if rest > 0:
                self.stop.wait(rest)

    def __enter__(self) -> StatusProbe:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(330)


def chat_ticket(stack: Bench) -> tuple[str, int]:
    """A small spec on an installation of its own, synced: the ticket people ask about."""
    full_name = stack.repository("people", "chat")
    stack.commit(
        full_name,
        {
            CONFIG: "project: {owner: people, number: 1}\n",
            "specs/chat.yaml": "id: chat\ntitle: Chat\nphase: tasks\ntasks:\n"
            "  - {id: TSK-1, title: Talk}\n",
        },
    )
    wait_until(lambda: board_done(stack, full_name, 1), 120, "the small spec synced")
    rows = stack.sql(
        "select t.issue_number from tickets t join repositories r on r.id = t.repository_id "
        f"where r.full_name = '{full_name}'"
    )
    return full_name, rows[0][0]


def fairness(workers: int, syncs: int, tasks: int, pace: float, code: Path) -> dict[str, Any]:
    with bench(workers, pace, code) as stack:
        chat, number = chat_ticket(stack)
        bigs = [stack.repository(f"org{n}", "big") for n in range(syncs)]
        with StatusProbe(stack, chat, number) as probe:
            time.sleep(1)
            started = time.monotonic()
            for full_name in bigs:
                push_spec(stack, full_name, tasks)
            finished: dict[str, float] = {}

            def all_done() -> bool:
                for name in bigs:
                    if name not in finished and board_done(stack, name, tasks):
                        finished[name] = time.monotonic() - started
                return len(finished) == len(bigs)

            wait_until(all_done, 60 + tasks * 3 * pace * syncs, "every board complete")
        latencies = probe.latencies
    return {
        "workers": workers,
        "syncs": syncs,
        "asked": len(latencies) + probe.unanswered,
        "unanswered": probe.unanswered,
        "p50": statistics.median(latencies) if latencies else None,
        "p95": _p95(latencies),
        "max": max(latencies, default=None),
        "boards": sorted(finished.values()),
    }


def _p95(values: list[float]) -> float | None:
    if len(values) < 2:
        return values[0] if values else None
    return statistics.quantiles(values, n=100, method="inclusive")[94]


def throughput(count: int, code: Path) -> dict[str, Any]:
    """Cheap deliveries stored with no worker, then one worker: handled per second."""
    with bench(0, 0, code) as stack:
        payload = github_payload("issues", "reopened.payload.json")
        body = json.dumps(payload).encode()
        session = requests.Session()
        for _ in range(count):
            headers = webhook_headers("issues", str(uuid.uuid4()), body)
            session.post(f"{stack.bot}/webhook", data=body, headers=headers, timeout=30)
        stack.start_workers(1)

        def finished() -> bool:
            rows = stack.sql("select count(*) from deliveries where processed_at is not null")
            return rows[0][0] >= count

        wait_until(finished, 600, "every delivery handled")
        first, last = stack.sql("select min(processed_at), max(processed_at) from deliveries")[0]
    seconds = (last - first).total_seconds()
    return {"deliveries": count, "seconds": seconds, "per_second": (count - 1) / seconds}


AGENTS = "default:\n  command: 'true'\n"


def board(tasks: int, pace: float, code: Path) -> dict[str, Any]:
    profiles = Path(mkdtemp(prefix="bench-agents-")) / "agents.yaml"
    profiles.write_text(AGENTS)
    with bench(1, pace, code, SPECBRIDGE_AGENTS=str(profiles)) as stack:
        full_name = stack.repository("acme", "big")
        stack.reset_requests()
        pushed_at = time.time()
        pushed = push_spec(stack, full_name, tasks)
        wait_until(lambda: board_done(stack, full_name, tasks), 60 + tasks * 3 * pace, "board")
        on_board = time.monotonic() - pushed
        [(first_start,)] = stack.sql("select min(extract(epoch from started_at)) from tasks")
        summary = stack.admin("GET", "requests/summary")

        def synced() -> list[str]:  # the sync's own summary lines, its last one included
            paused = stack.sql("select count(*) from specs where resume_at is not null")[0][0]
            log = (stack.workdir / "worker1.log").read_text()
            return [] if paused else re.findall(r"synced big: .*? (\d+) writes", log)

        wait_until(lambda: synced() and time.sleep(3) is None and synced(), 120, "the sync's end")
        segments = synced()
    return {
        "tasks": tasks,
        "pace": pace,
        "board_seconds": on_board,
        "first_agent_seconds": float(first_start) - pushed_at if first_start else None,
        "writes": summary["write_requests"],
        "reads": sum(summary["rest"].values())
        + sum(summary["graphql"].values())
        - summary["write_requests"],
        "sync_writes": sum(int(n) for n in segments),
        "sync_segments": len(segments),
        "refused": summary.get("content_refused", 0) + summary.get("requests_limited", 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "what", nargs="*", default=["fairness", "throughput", "budget"], help="what to measure"
    )
    parser.add_argument("--pace", type=float, default=1.0)
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--cases", default="1x1,2x1,1x2,2x2")
    parser.add_argument("--deliveries", type=int, default=600)
    parser.add_argument("--code", type=Path, default=REPO_ROOT)
    args = parser.parse_args()
    code = args.code.resolve()
    print(f"code: {code}")
    if "fairness" in args.what:
        for case in args.cases.split(","):
            workers, syncs = (int(n) for n in case.split("x"))
            result = fairness(workers, syncs, args.tasks, args.pace, code)
            print(
                f"fairness: {workers} worker(s), {syncs} sync(s) of {args.tasks} tasks at "
                f"{args.pace:g} s/write: /status asked {result['asked']}, unanswered "
                f"{result['unanswered']}, p50 {_s(result['p50'])}, p95 {_s(result['p95'])}, "
                f"max {_s(result['max'])}; boards complete after "
                + ", ".join(f"{b:.0f} s" for b in result["boards"])
            )
    if "throughput" in args.what:
        result = throughput(args.deliveries, code)
        print(
            f"throughput: {result['deliveries']} cheap deliveries, one worker: "
            f"{result['per_second']:.1f} per second ({result['seconds']:.1f} s first to last)"
        )
    boards = [args.pace] if "board" in args.what else []
    if "budget" in args.what:
        boards += [pace for pace in (0.1, 1.0) if pace not in boards]
    for pace in boards:
        result = board(200, pace, code)
        print(
            f"board: {result['tasks']} tasks at {result['pace']:g} s/write, one worker: "
            f"board complete {result['board_seconds']:.1f} s after the push, first agent "
            f"started {_s(result['first_agent_seconds'])} after it; the sync's writes "
            f"{result['sync_writes']} in {result['sync_segments']} job(s), {result['writes']} "
            f"writes and {result['reads']} reads in all (agents' too), {result['refused']} "
            "refused by GitHub's limits"
        )


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


if __name__ == "__main__":
    main()
