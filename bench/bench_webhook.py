"""POST /webhook under load, against a bare Flask app answering 202 under the same
gunicorn settings: latency at a fixed rate of signed deliveries, and the rate
at which p99 passes one second.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
    REDIS_URL=redis://127.0.0.1:6379/9 python -m bench.bench_webhook [--seconds 20]

The load is open-loop: requests leave on a fixed schedule and latency counts
from when each was due, so a slow answer cannot hide the ones queued behind it.
No worker runs: the deliveries are stored and queued, which is what the answer
waits for.
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
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "GITHUB_TOKEN": "t",
        "PYTHONPATH": str(ROOT),
        "GUNICORN_CMD_ARGS": " ".join(GUNICORN),
    }
    bot_port, bare_port = free_port(), free_port()
    bare = ["-b", f"127.0.0.1:{bare_port}", "--chdir", str(ROOT / "bench"), "bare_app:app"]
    servers = [
        start(
            [sys.executable, "-m", "bot.cli", "serve", "--port", str(bot_port)],
            env,
            f"http://127.0.0.1:{bot_port}/healthz",
        ),
        start(
            [sys.executable, "-m", "gunicorn", *GUNICORN, *bare],
            env,
            f"http://127.0.0.1:{bare_port}/",
        ),
    ]
    try:
        results = {}
        for name, port in (("specbridge", bot_port), ("bare Flask", bare_port)):
            load(f"http://127.0.0.1:{port}/webhook", args.rate, 2)  # warm up
            latencies = load(f"http://127.0.0.1:{port}/webhook", args.rate, args.seconds)
            results[name] = latencies
            print(
                f"{name}: {len(latencies)} deliveries at {args.rate:g}/s: "
                f"p50 {p(latencies, 50) * 1000:.1f} ms, p99 {p(latencies, 99) * 1000:.1f} ms"
            )
        ratio = p(results["specbridge"], 99) / p(results["bare Flask"], 99)
        print(f"p99 ratio specbridge / bare Flask: {ratio:.2f}")
        for name, port in (("specbridge", bot_port), ("bare Flask", bare_port)):
            print(f"{name}: p99 passes 1 s at {saturation(port):g} deliveries/s")
    finally:
        for server in servers:
            server.terminate()
            server.wait()
        drop_database(database_url)


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
