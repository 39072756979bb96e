"""`specbridge demo` runs to its "ready" line, answers a command, and Ctrl-C stops it all."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from tests.e2e.harness import free_port, wait_until
from tests.support import REPO_ROOT

READY_SECONDS = 150
DEMO = [sys.executable, "-m", "bot.cli", "demo"]


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
        return True
    except requests.RequestException:
        return False


def _lines(stream, into: queue.Queue[str]) -> None:  # type: ignore[no-untyped-def]
    for line in stream:
        into.put(line)


def test_demo_runs_to_ready_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    hub_port, bot_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "REDIS_"))}
    env.pop("DATABASE_URL", None)
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.setdefault("SPECBRIDGE_GITHUB_FIXTURES", str(REPO_ROOT.parent / "shared/github-fixtures"))
    demo = subprocess.Popen(
        [*DEMO, "--port", str(hub_port), "--bot-port", str(bot_port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(demo.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + READY_SECONDS
        while not seen or "ready" not in seen[-1]:
            assert time.monotonic() < deadline, "no ready line:\n" + "".join(seen)
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                assert demo.poll() is None, "the demo stopped:\n" + "".join(seen)
        output = "".join(seen)
        hub = f"http://127.0.0.1:{hub_port}"
        assert f"the GitHub double: {hub}" in output
        assert "Passwordless login" in output
        task = int(re.search(r"issues/(\d+)/comments", output)[1])

        # The status page is on, on loopback, its address printed with its token.
        page = re.search(rf"the status page: (http://127\.0\.0\.1:{bot_port}/\?token=\S+)", output)
        assert page, output
        status = requests.get(page[1], timeout=30)
        assert status.status_code == 200 and "specbridge status" in status.text
        # The pull request the demo agent opened, as GitHub holds it.
        opened = re.search(r"the demo agent opened pull request #(\d+) for #(\d+)", output)
        assert opened, output
        state = requests.get(f"{hub}/_admin/state", timeout=30).json()
        repo = next(r for r in state["repositories"] if r["full_name"] == "acme/rocket")
        pull = next(p for p in repo["pull_requests"] if p["number"] == int(opened[1]))
        assert f"Closes #{opened[2]}" in pull["body"]

        # A person asks for the task's status, as the printed curl line does.
        requests.post(
            f"{hub}/_admin/repos/acme/rocket/issues/{task}/comments",
            json={"user": "octocat", "body": "/status"},
            timeout=30,
        ).raise_for_status()

        def answered() -> bool:
            state = requests.get(f"{hub}/_admin/state", timeout=30).json()
            repo = next(r for r in state["repositories"] if r["full_name"] == "acme/rocket")
            comments = repo["comments"].get(str(task), [])
            return any(c["user"] == "specbridge[bot]" for c in comments)

        wait_until(answered, 60, "the bot's answer to /status")
    finally:
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            demo.kill()
            raise
    assert demo.returncode == 0
    assert not _answers(f"http://127.0.0.1:{bot_port}/healthz")
    assert not _answers(f"http://127.0.0.1:{hub_port}/_admin/state")
