"""POST /webhook under load, against two baselines under the same gunicorn settings:
a bare Flask app answering 202, and one that first stores the body in one committed
INSERT into the same database (the floor for a webhook that stores before it
answers). Latency at a fixed rate of signed deliveries, and the rate at which p99
passes one second.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
    REDIS_URL=redis://127.0.0.1:6379/9 python -m bench.bench_webhook [--seconds 20]
    python -m bench.bench_webhook        # the embedded defaults: SQLite, no Redis

The load is open-loop: requests leave on a fixed schedule and latency counts
from when each was due, so a slow answer cannot hide the ones queued behind it.
With Redis no worker runs: the deliveries are stored and queued, which is what
the answer waits for. On the embedded defaults the serving process runs the jobs
too, as it does there.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from storage.migrate import upgrade
from tests.databases import create_empty_database, drop_database
from tests.e2e.harness import free_port, wait_until
from tests.support import WEBHOOK_SECRET, github_payload, webhook_headers

ROOT = Path(__file__).resolve().parents[1]

GUNICORN = ["--workers", "2", "--threads", "8", "--access-logfile", "-"]


def start(command: list[str], env: dict[str, str], url: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_until(lambda: _answers(url), 60, url)
    return process


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=1)
        return True
    except requests.RequestException:
        return False


def load(url: str, rate: float, seconds: float) -> list[float]:
    """Latencies (s) of `rate` signed push deliveries a second, counted from when each was due."""
    payload = json.dumps(github_payload("push", "payload.json")).encode()
    local = threading.local()
    latencies: list[float] = []
    lock = threading.Lock()

    def send(due: float) -> None:
        session = local.__dict__.setdefault("session", requests.Session())
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        headers = webhook_headers("push", str(uuid.uuid4()), payload)
        try:
            session.post(url, data=payload, headers=headers, timeout=30)
        finally:
            with lock:
                latencies.append(time.perf_counter() - due)

    count = int(rate * seconds)
    start = time.perf_counter() + 0.5
    with ThreadPoolExecutor(max_workers=128) as pool:
        for n in range(count):
            pool.submit(send, start + n / rate)
    return latencies


def p(values: list[float], percentile: float) -> float:
    return statistics.quantiles(values, n=1000)[int(percentile * 10) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=200)
    args = parser.parse_args()
    database_url = create_empty_database(Path("/tmp"))
    upgrade(database_url)
    embedded = not os.environ.get("REDIS_URL")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "BENCH_DATABASE_URL": database_url,
        "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "GITHUB_TOKEN": "t",
        "PYTHONPATH": str(ROOT),
        "GUNICORN_CMD_ARGS": " ".join(GUNICORN),
    }
    database = "SQLite" if database_url.startswith("sqlite") else "PostgreSQL"
    queue = "the embedded queue (its jobs run in the serving process)" if embedded else "Redis"
    print(f"specbridge on {database} and {queue}")
    ports = {name: free_port() for name in ("specbridge", "bare Flask", "bare Flask + INSERT")}
    # The floor runs as many processes as specbridge does (one on the embedded defaults).
    floor_workers = ["--workers", "1"] if embedded else []
    commands = {
        "specbridge": [
            sys.executable,
            "-m",
            "bot.cli",
            "serve",
            "--port",
            str(ports["specbridge"]),
        ],
        "bare Flask": _gunicorn(ports["bare Flask"], "bare_app:app"),
        "bare Flask + INSERT": _gunicorn(
            ports["bare Flask + INSERT"], "bare_app:durable", *floor_workers
        ),
    }
    servers = [
        start(
            command,
            env,
            f"http://127.0.0.1:{ports[name]}/" + ("healthz" if name == "specbridge" else ""),
        )
        for name, command in commands.items()
    ]
    try:
        results = {}
        for name, port in ports.items():
            load(f"http://127.0.0.1:{port}/webhook", args.rate, 2)  # warm up
            latencies = load(f"http://127.0.0.1:{port}/webhook", args.rate, args.seconds)
            results[name] = latencies
            print(
                f"{name}: {len(latencies)} deliveries at {args.rate:g}/s: "
                f"p50 {p(latencies, 50) * 1000:.1f} ms, p99 {p(latencies, 99) * 1000:.1f} ms"
            )
        ours = p(results["specbridge"], 99)
        print(f"p99 ratio specbridge / bare Flask: {ours / p(results['bare Flask'], 99):.2f}")
        floor = p(results["bare Flask + INSERT"], 99)
        print(f"p99 ratio specbridge / bare Flask + INSERT: {ours / floor:.2f}")
        for name, port in ports.items():
            print(f"{name}: p99 passes 1 s at {saturation(port):g} deliveries/s")
    finally:
        for server in servers:
            server.terminate()
            server.wait()
        drop_database(database_url)


def _gunicorn(port: int, app: str, *options: str) -> list[str]:
    where = ["-b", f"127.0.0.1:{port}", "--chdir", str(ROOT / "bench")]
    return [sys.executable, "-m", "gunicorn", *GUNICORN, *options, *where, app]


def saturation(port: int) -> float:
    """The lowest rate, doubling from 200, at which p99 passes one second (5 s each)."""
    rate = 200.0
    while rate <= 6400:
        if p(load(f"http://127.0.0.1:{port}/webhook", rate, 5), 99) > 1:
            return rate
        rate *= 2
    return float("inf")


if __name__ == "__main__":
    main()
