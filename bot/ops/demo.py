"""`specbridge demo`: the whole loop on this machine, without GitHub.

In a temporary directory it starts the GitHub double (fakehub) and
`specbridge serve` on the embedded defaults (SQLite, the queue inside serve,
a demo agent that writes a file, the status page on with a token of its own,
on loopback), creates `acme/rocket` with a board, merges the example spec
`passwordless-login`, waits for the demo agent's first pull request, and
prints where to look (the status page, the issues, that pull request) and how
to steer from the command line. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

import specs
from bot.errors import CommandError

REPO = "acme/rocket"
SPEC = "passwordless-login"
COLUMNS = ["Backlog", "Analyzing", "Building", "Testing", "Done"]
PEOPLE = {"octocat": "admin"}
SECRET = "specbridge-demo"
AGENTS = """\
default:
  command: cp "$SPECBRIDGE_TASK_FILE" "task-$SPECBRIDGE_ISSUE.md"
  timeout: 60
"""
STARTUP_SECONDS = 90
# How long the printout waits for the demo agent's first pull request.
AGENT_SECONDS = 60


def run_demo(hub_port: int, bot_port: int, say: Callable[[str], None]) -> int:
    _require_fakehub()
    workdir = Path(tempfile.mkdtemp(prefix="specbridge-demo-"))
    workdir.chmod(0o755)  # agents run as another account under root
    demo = Demo(workdir, hub_port, bot_port)
    # Ctrl-C, or SIGTERM, stops it at any point (also where SIGINT came in ignored, as it
    # does for a job a shell put in the background).
    for stopping in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stopping, _interrupt)
    try:
        demo.start()
        for line in demo.guide():
            say(line)
        while True:
            time.sleep(1)
            demo.check_alive()
    except KeyboardInterrupt:
        pass
    finally:
        demo.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        say("stopped the GitHub double and the bot")
    return 0


def _interrupt(_signal: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _require_fakehub() -> None:
    if any(importlib.util.find_spec(m) is None for m in ("jsonschema", "graphql")):
        raise CommandError(
            "specbridge demo needs the GitHub double: pip install 'specbridge[fakehub]'"
        )
    try:
        # GitHub's published descriptions: beside a checkout, or fetched once with npm.
        import fakehub.fixtures  # noqa: F401
    except RuntimeError as error:  # fakehub.fixtures.FixturesUnavailable, raised on import
        raise CommandError(f"the GitHub double has no GitHub descriptions: {error}") from None


class Demo:
    def __init__(self, workdir: Path, hub_port: int, bot_port: int) -> None:
        self.workdir, self.hub_port, self.bot_port = workdir, hub_port, bot_port
        self.hub_url = f"http://127.0.0.1:{hub_port}"
        self.bot_url = f"http://127.0.0.1:{bot_port}"
        self.database_url = f"sqlite:///{workdir / 'specbridge.db'}"
        self._hub: Any = None
        self._serve: subprocess.Popen[bytes] | None = None
        self.issues: list[dict[str, Any]] = []
        self.tracking = 0  # the spec's tracking issue
        self.pull_request: dict[str, Any] | None = None  # the demo agent's first
        # The status page is on, for this demo's bot only (it listens on loopback).
        self.status_token = secrets.token_urlsafe(16)

    def start(self) -> None:
        from fakehub import FakeHub

        self._hub = FakeHub(f"{self.bot_url}/webhook", SECRET, self.workdir / "hub")
        try:
            self._hub.start(self.hub_port)
        except OSError as error:
            raise CommandError(f"cannot listen on {self.hub_url}: {error.strerror}") from None
        self._start_bot()
        self._admin(
            "repos",
            owner="acme",
            name="rocket",
            default_branch="main",
            files={
                "README.md": "# rocket\n",
                ".github/specbridge.yml": "project: {owner: acme, number: 1}\n",
            },
            project={"number": 1},
            status_options=COLUMNS,
            collaborators=PEOPLE,
        )
        spec = Path(specs.__file__).parent / "examples" / f"{SPEC}.yaml"
        self._admin(
            f"repos/{REPO}/commits",
            files={f"specs/{SPEC}.yaml": spec.read_text()},
            message=f"Merge the {SPEC} spec",
            user="octocat",
        )
        self.issues = self._wait_for_issues()
        self.pull_request = self._wait_for_a_pull_request()

    def _start_bot(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "SPECBRIDGE_"))}
        env.pop("REDIS_URL", None)
        from fakehub.apps import new_private_key  # the demo's extra: checked before

        agents = self.workdir / "agents.yaml"
        agents.write_text(AGENTS)
        env.update(
            DATABASE_URL=self.database_url,
            GITHUB_API_URL=self.hub_url,
            GITHUB_WEBHOOK_SECRET=SECRET,
            GITHUB_APP_ID="4242",
            GITHUB_APP_SLUG="specbridge",
            GITHUB_PRIVATE_KEY=new_private_key(),
            GITHUB_WRITE_INTERVAL="0",
            SPECBRIDGE_AGENTS=str(agents),
            SPECBRIDGE_STATUS_TOKEN=self.status_token,
            PYTHONPATH=os.pathsep.join(filter(None, [_source_root(), env.get("PYTHONPATH")])),
        )
        if "SPECBRIDGE_GITHUB_FIXTURES" in os.environ:
            env["SPECBRIDGE_GITHUB_FIXTURES"] = os.environ["SPECBRIDGE_GITHUB_FIXTURES"]
        log = open(self.workdir / "serve.log", "wb")  # noqa: SIM115 - closed with the process
        self._serve = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--port", str(self.bot_port)],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so stopping it stops its gunicorn worker too
        )
        self._until(self._bot_answers, "specbridge serve to answer")

    def _bot_answers(self) -> bool:
        self.check_alive()
        try:
            return requests.get(f"{self.bot_url}/healthz", timeout=2).ok
        except requests.RequestException:
            return False

    def _wait_for_issues(self) -> list[dict[str, Any]]:
        def synced() -> list[dict[str, Any]] | None:
            self.check_alive()
            repo = next(r for r in self._state()["repositories"] if r["full_name"] == REPO)
            on_board = {i["issue_number"] for i in repo["project_items"]}
            issues = repo["issues"]
            # Every task's issue is on the board; the tracking issue is not.
            off_board = [i for i in issues if i["number"] not in on_board]
            if on_board and len(off_board) == 1:
                self.tracking = off_board[0]["number"]
                return issues
            return None

        return self._until(synced, "the spec's issues on the board")

    def _wait_for_a_pull_request(self) -> dict[str, Any] | None:
        """The demo agent's first pull request, once it has opened one (None if it takes
        longer than AGENT_SECONDS: the printout then says where to follow it)."""

        def opened() -> dict[str, Any] | None:
            self.check_alive()
            repo = next(r for r in self._state()["repositories"] if r["full_name"] == REPO)
            return min(repo["pull_requests"], key=_number, default=None)

        try:
            return self._until(opened, "the demo agent's pull request", AGENT_SECONDS)
        except CommandError:
            return None

    def _until(
        self, condition: Callable[[], Any], what: str, seconds: float = STARTUP_SECONDS
    ) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            time.sleep(0.3)
        raise CommandError(f"gave up waiting for {what}; see {self.workdir / 'serve.log'}")

    def check_alive(self) -> None:
        if self._serve is not None and self._serve.poll() is not None:
            tail = (self.workdir / "serve.log").read_text(errors="replace").strip().splitlines()
            raise CommandError(f"specbridge serve stopped: {tail[-1] if tail else 'no output'}")

    def guide(self) -> list[str]:
        hub, admin = self.hub_url, f"{self.hub_url}/_admin"
        task = min(i["number"] for i in self.issues if i["number"] != self.tracking)
        lines = [
            f"the GitHub double: {hub} (everything it holds: curl -s {admin}/state)",
            f"the bot: {self.bot_url} (log: {self.workdir / 'serve.log'})",
            f"the status page: {self.bot_url}/?token={self.status_token}",
            f"{REPO}, board acme/1:",
            *(f"  #{i['number']} {i['title']}" for i in sorted(self.issues, key=_number)),
            self._agent_line(),
            "steer it as a person would:",
            f"  curl -s {admin}/repos/{REPO}/issues/{task}/comments "
            f"-H 'Content-Type: application/json' "
            f"-d '{json.dumps({'user': 'octocat', 'body': '/status'})}'",
            f"  curl -s {admin}/orgs/acme/projects/1/items/{task}/status "
            f"-H 'Content-Type: application/json' -d '{json.dumps({'status': 'Done'})}'",
            f"  DATABASE_URL={self.database_url} specbridge tasks",
            "specbridge demo is ready; Ctrl-C stops it",
        ]
        return lines

    def _agent_line(self) -> str:
        pull = self.pull_request
        if pull is None:
            return "the demo agent is at work on the first ready task: `specbridge tasks` below"
        closes = re.search(r"Closes #(\d+)", pull.get("body") or "")
        task = f" for #{closes[1]}" if closes else ""
        return (
            f"the demo agent opened pull request #{pull['number']}{task}: {pull['title']} "
            f"({pull['html_url']}, branch {pull['head']['ref']})"
        )

    def stop(self) -> None:
        if self._serve is not None and self._serve.poll() is None:
            os.killpg(self._serve.pid, signal.SIGTERM)
            try:
                self._serve.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self._serve.pid, signal.SIGKILL)
                self._serve.wait()
        if self._hub is not None:
            self._hub.stop()

    def _admin(self, path: str, **body: Any) -> Any:
        response = requests.post(f"{self.hub_url}/_admin/{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def _state(self) -> dict[str, Any]:
        return requests.get(f"{self.hub_url}/_admin/state", timeout=30).json()


def _number(issue: dict[str, Any]) -> int:
    return issue["number"]


def _source_root() -> str:
    """Where bot/ is, so the bot's process imports this very copy."""
    return str(Path(__file__).resolve().parents[2])
