"""Real processes for end-to-end tests: the GitHub double, `specbridge serve`
under gunicorn and, with Redis, two `specbridge worker` processes."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from fakehub.apps import new_private_key
from tests.support import FIXTURES, REPO_ROOT, SPECBRIDGE_COLUMNS, WEBHOOK_SECRET

# Ports for the servers tests start (the double, serve, Redis). A port found free and
# given to a process that binds it a second later may be taken meanwhile: by another
# test's server (with xdist, in another worker) or by an outgoing connection, from the
# kernel's ephemeral range. So each test process claims a block of ports below that
# range, with a lock the kernel drops when the process ends, and hands them out in turn.
PORT_BLOCKS = range(20_000, 32_000, 500)
PORT_LOCKS = Path(tempfile.gettempdir()) / "specbridge-test-ports"


def free_port() -> int:
    """A port no other test process uses, free now."""
    return _port_block().take()


class _PortBlock:
    def __init__(self) -> None:
        PORT_LOCKS.mkdir(exist_ok=True)
        PORT_LOCKS.chmod(0o1777)
        for start in random.sample(PORT_BLOCKS, len(PORT_BLOCKS)):
            lock = (PORT_LOCKS / f"{start}.lock").open("a")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            self._lock, self._ports = lock, itertools.cycle(range(start, start + PORT_BLOCKS.step))
            return
        raise RuntimeError(f"every block of test ports is taken ({PORT_LOCKS})")

    def take(self) -> int:
        for _ in range(PORT_BLOCKS.step):
            port = next(self._ports)
            with socket.socket() as sock, contextlib.suppress(OSError):
                sock.bind(("127.0.0.1", port))
                return port
        raise RuntimeError("no port of this test process's block is free")


@functools.cache
def _port_block() -> _PortBlock:
    return _PortBlock()


def wait_until(condition: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Stack:
    """The running processes and how to reach them."""

    database_url: str
    redis_url: str | None
    workdir: Path
    hub_port: int = field(default_factory=free_port)
    bot_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    # A Redis of its own, which a test may stop and start again.
    own_redis: bool = False
    redis_port: int = field(default_factory=free_port)

    @property
    def hub(self) -> str:
        return f"http://127.0.0.1:{self.hub_port}"

    @property
    def bot(self) -> str:
        return f"http://127.0.0.1:{self.bot_port}"

    def report(self, repo: str) -> list[dict[str, Any]]:
        """`specbridge report --repo REPO --format json`, as an operator runs it."""
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", "report", "--repo", repo, "--format", "json"],
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "SPECBRIDGE_"))}
        env.pop("REDIS_URL", None)
        env.update(
            DATABASE_URL=self.database_url,
            GITHUB_API_URL=self.hub,
            GITHUB_WEBHOOK_SECRET=WEBHOOK_SECRET,
            GITHUB_APP_ID="4242",
            GITHUB_WRITE_INTERVAL="0",
            GITHUB_PRIVATE_KEY=new_private_key(),
            PYTHONPATH=str(REPO_ROOT),
            SPECBRIDGE_CHECK_TRANSACTIONS="1",
            # The double reads the descriptions the tests read (found or fetched already).
            SPECBRIDGE_GITHUB_FIXTURES=str(FIXTURES),
            GITHUB_APP_SLUG="specbridge",
        )
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        if self.own_redis:
            self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
            self.start_redis()
        env = self.environment()
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
                WEBHOOK_SECRET,
                "--state-dir",
                str(self.workdir / "hub"),
            ],
            env,
        )
        specbridge = [sys.executable, "-m", "bot.cli"]
        self._spawn("serve", [*specbridge, "serve", "--port", str(self.bot_port)], env)
        if self.redis_url:
            for n in (1, 2):
                self._spawn(f"worker{n}", [*specbridge, "worker"], env)
        wait_until(lambda: _answers(f"{self.hub}/_admin/state"), 60, "the GitHub double")
        wait_until(lambda: _answers(f"{self.bot}/healthz"), 60, "specbridge serve")

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            command,
            env=env,
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so kill() takes its children (gunicorn workers, RQ horses)
        )
        self.commands[name] = command

    def start_redis(self) -> None:
        """An empty Redis that keeps nothing on disk, as a restarted one is."""
        command = ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]
        self._spawn("redis", command, dict(os.environ))
        wait_until(lambda: redis_answers(self.redis_port), 30, "Redis")

    def add_worker(self) -> str:
        """One more `specbridge worker` (with Redis): its name."""
        name = f"worker{len([n for n in self.processes if n.startswith('worker')]) + 1}"
        self._spawn(name, [sys.executable, "-m", "bot.cli", "worker"], self.environment())
        return name

    def job_runners(self) -> list[str]:
        """The processes that run queue jobs: the workers, or serve's embedded queue."""
        return [n for n in self.processes if n.startswith("worker")] or ["serve"]

    def kill(self, name: str) -> None:
        """SIGKILL a process and everything it started, as a crashed machine would.

        Its session, not its process group: RQ puts each work horse in a group of its own.
        """
        session = self.processes[name].pid
        listing = subprocess.run(["ps", "-e", "-o", "pid=,sid="], capture_output=True, text=True)
        for line in listing.stdout.splitlines():
            pid, sid = map(int, line.split())
            if sid == session:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.processes[name].wait()

    def restart(self, name: str) -> None:
        self._spawn(name, self.commands[name], self.environment())
        if name == "serve":
            wait_until(lambda: _answers(f"{self.bot}/healthz"), 60, "specbridge serve")

    def stop(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is None:
                self.kill(name)

    def logs(self) -> str:
        tails = []
        for name in self.processes:
            text = (self.workdir / f"{name}.log").read_text(errors="replace")
            tails.append(f"===== {name} =====\n{text[-6000:]}")
        return "\n".join([*tails, "===== unfinished work =====", *self._unfinished()])

    def _unfinished(self) -> list[str]:
        from sqlalchemy import select

        from storage.db import session_scope
        from storage.models import Delivery, DeliveryStatus, Spec, Task

        done = [DeliveryStatus.DONE, DeliveryStatus.IGNORED]
        with session_scope(self.database_url) as session:
            deliveries = session.scalars(select(Delivery).where(Delivery.status.not_in(done)))
            lines = [
                f"delivery {d.id} {d.event}.{d.action}: {d.status.value} {d.error or ''}"
                for d in deliveries
            ]
            lines += [
                f"task {t.id}: {t.status.value}, attempt {t.attempts}, {t.error or ''}"
                for t in session.scalars(select(Task))
            ]
            lines += [
                f"spec {s.key}: paused until {s.resume_at}"
                for s in session.scalars(select(Spec).where(Spec.resume_at.is_not(None)))
            ]
        recent = self.state()["requests"][-5:]
        lines += [f"request {r['method']} {r['path']} {r['status']}" for r in recent]
        return lines

    # -- the double's admin interface ------------------------------------------------

    def admin(self, method: str, path: str, **body: Any) -> Any:
        response = requests.request(
            method, f"{self.hub}/_admin/{path}", json=body or None, timeout=60
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def state(self) -> dict[str, Any]:
        return self.admin("GET", "state")

    def repo_state(self, full_name: str) -> dict[str, Any]:
        return next(r for r in self.state()["repositories"] if r["full_name"] == full_name)

    def create_repo(self, files: dict[str, str], **options: Any) -> None:
        """acme/rocket on the double, with a first commit of files and board number 1."""
        self.admin(
            "POST",
            "repos",
            owner="acme",
            name="rocket",
            default_branch="main",
            files=files,
            project={"number": 1},
            **{"status_options": SPECBRIDGE_COLUMNS, **options},
        )

    def commit(
        self, full_name: str, files: dict[str, str | None], message: str = "Update specs"
    ) -> dict[str, str]:
        return self.admin("POST", f"repos/{full_name}/commits", files=files, message=message)

    def issues(self, full_name: str) -> list[dict[str, Any]]:
        return self.repo_state(full_name)["issues"]

    def issue(self, full_name: str, number: int) -> dict[str, Any]:
        return next(i for i in self.issues(full_name) if i["number"] == number)

    def issue_titled(self, full_name: str, title: str) -> dict[str, Any]:
        return next(i for i in self.issues(full_name) if i["title"] == title)

    def comments(self, full_name: str, number: int) -> list[dict[str, Any]]:
        return self.repo_state(full_name)["comments"].get(str(number), [])

    def commit_comments(self, full_name: str, sha: str) -> list[dict[str, Any]]:
        return [c for c in self.repo_state(full_name)["commit_comments"] if c["commit_id"] == sha]

    def board_history(self, full_name: str, number: int) -> list[str]:
        items = self.repo_state(full_name)["project_items"]
        return next(i["history"] for i in items if i["issue_number"] == number)

    def board(self, full_name: str) -> dict[int, str]:
        return {i["issue_number"]: i["status"] for i in self.repo_state(full_name)["project_items"]}

    def writes(self) -> list[dict[str, Any]]:
        return [
            r
            for r in self.state()["requests"]
            if not r["path"].endswith("/access_tokens")
            and (r["graphql"] == "mutation" or (r["graphql"] is None and r["method"] != "GET"))
        ]

    def mutations(self) -> dict[str, int]:
        """GraphQL mutations sent since the last reset, counted one by one by name."""
        return self.admin("GET", "requests/summary")["mutations"]

    def mismatches(self) -> list[dict[str, Any]]:
        return self.state()["mismatches"]

    def reset_requests(self) -> None:
        self.admin("POST", "reset")

    def redeliver(self, delivery_id: str) -> None:
        self.admin("POST", f"deliveries/{delivery_id}/redeliver")

    def settle(self, timeout: float = 90) -> None:
        """Wait until the double has sent every webhook and the bot has processed them."""
        deadline = time.monotonic() + timeout
        quiet_rounds = 0
        last_count = -1
        while quiet_rounds < 3:
            if time.monotonic() > deadline:
                raise AssertionError("the system did not settle\n" + self.logs())
            self.admin("POST", "wait")
            count = len(self.state()["requests"])
            busy = self._bot_busy()
            quiet_rounds = quiet_rounds + 1 if (count == last_count and not busy) else 0
            last_count = count
            time.sleep(0.3)

    def _bot_busy(self) -> bool:
        from sqlalchemy import func, select

        from bot.agents.budgets import FIRST_RUN
        from bot.agents.planning import LIVE as PLANNING_LIVE
        from storage.db import session_scope
        from storage.models import Delivery, DeliveryStatus, PlanningRun, Spec, Task, TaskStatus

        unfinished = [DeliveryStatus.RECEIVED, DeliveryStatus.QUEUED, DeliveryStatus.PROCESSING]
        with session_scope(self.database_url) as session:
            deliveries = session.scalar(select(func.count()).where(Delivery.status.in_(unfinished)))
            # A task handed to an agent GitHub runs waits for GitHub, not for the bot.
            tasks = session.scalar(
                select(func.count()).where(
                    Task.status.in_([TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.WAITING]),
                    Task.dispatched_at.is_(None),
                    # held by a budget: it waits for people; not so a run held for
                    # seconds until a first run's cost is known (the pass after it lifts it)
                    Task.budget_hold.is_(None) | (Task.budget_hold == FIRST_RUN),
                )
            )
            paused = session.scalar(select(func.count()).where(Spec.resume_at.is_not(None)))
            planning = session.scalar(
                select(func.count()).where(PlanningRun.status.in_(PLANNING_LIVE))
            )
        return bool(deliveries or tasks or paused or planning)


def redis_answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")
    return False


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code < 500
    except requests.RequestException:
        return False
