"""One agent run: the `agents` queue job for one Task.

Workspace → context → the profile's command → its tests → commit, push,
pull request "Closes #N" → a comment with the outcome. The board follows:
Analyzing (workspace ready), Building (command running), Testing (tests).
The command runs with a clean environment holding none of the bot's secrets.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from github import GithubException
from requests import RequestException
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.agents.isolation import agent_account
from bot.agents.profiles import AgentProfile, load_profiles
from bot.agents.workspace import Workspace, WorkspaceError
from bot.beats import beating
from bot.github import BoardGateway, RepositoryGateway, github_client
from bot.github.auth import repository_token
from bot.github.columns import show_on_board
from bot.locks import LockBusy, LockLost, card_lock, exclusive
from bot.settings import Settings, get_settings
from storage.db import session_scope
from storage.models import Task, TaskStatus, Ticket, TicketPhase

log = logging.getLogger(__name__)

SUPERVISOR = Path(__file__).with_name("supervise.py")
POLL_SECONDS = 1
# A running Task silent for this many heartbeats has lost its worker.
STALE_AFTER_BEATS = 6
MAX_ATTEMPTS = 3
# Besides the profile's own timeout: a clone, the tests' setup, a push, a pull request.
RUN_OVERHEAD_SECONDS = 600
LOG_TAIL_CHARS = 4000


class AgentFailed(Exception):
    """The run failed for a reason of its own: reported, never retried by the queue."""


@dataclass
class CommandResult:
    exit_code: int | None
    output: str
    timed_out: bool = False
    stopped: bool = False


def run_task(task_id: int) -> None:
    settings = get_settings()
    with session_scope(settings.database_url) as session:
        if not _claim(session, task_id):
            return  # cancelled, or already taken by another worker
        with _heartbeats(settings, task_id):
            _Run(session, settings, session.get_one(Task, task_id)).execute()


def _heartbeats(settings: Settings, task_id: int) -> AbstractContextManager[None]:
    """A heartbeat for the whole run, from a thread of its own.

    Not only while the agent's command runs: a long clone, a card write waiting
    for GitHub's pace or for a lock is the run alive, and a task silent for
    STALE_AFTER_BEATS is run again by the reaper, twice at once if it was alive.
    """

    def beat() -> None:
        with session_scope(settings.database_url) as session:
            session.execute(
                update(Task)
                .where(Task.id == task_id, Task.status == TaskStatus.RUNNING)
                .values(heartbeat_at=datetime.now(UTC))
            )

    return beating(settings.task_heartbeat_seconds, beat, f"heartbeat-{task_id}")


def _claim(session: Session, task_id: int) -> bool:
    """Take a queued task for this worker; one UPDATE, so only one worker wins."""
    now = datetime.now(UTC)
    claimed = session.execute(
        update(Task)
        .where(Task.id == task_id, Task.status == TaskStatus.QUEUED)
        .values(
            status=TaskStatus.RUNNING, attempts=Task.attempts + 1, started_at=now, heartbeat_at=now
        )
    ).rowcount
    session.commit()
    return claimed == 1


class _Run:
    """One run. The session is committed before every call to GitHub (and git):
    nothing here waits on the network, or on the agent, inside a transaction."""

    def __init__(self, session: Session, settings: Settings, task: Task) -> None:
        self.session = session
        self.settings = settings
        self.task = task
        self.ticket: Ticket = task.ticket
        repository = self.ticket.repository
        self.installation = repository.installation.github_id if repository.installation else None
        self.full_name = repository.full_name
        self.default_branch = repository.default_branch
        self.issue = self.ticket.issue_number
        self.spec_key = self.ticket.spec.key if self.ticket.spec else "spec"
        self.spec_path = self.ticket.spec.path if self.ticket.spec else None
        self.task_key = self.ticket.spec_task.key if self.ticket.spec_task else str(self.issue)
        self.title = self.ticket.spec_task.title if self.ticket.spec_task else f"#{self.issue}"
        self.context = task_context(self.ticket)
        session.commit()
        connection = github_client(settings, self.installation)
        self.repo = RepositoryGateway(connection, self.full_name)
        self.boards = BoardGateway(connection)
        self.output = ""
        self._push_token: str | None = None

    def execute(self) -> None:
        workspace: Workspace | None = None
        branch = f"specbridge/{self.spec_key}/{self.task_key}"
        try:
            profile = self._profile()
            # The clone needs a credential only for a private repository, and
            # only for that one git command: the workspace keeps none.
            workspace = Workspace.create(
                self.repo.clone_url(),
                self.default_branch,
                branch,
                self.repo.connection.token,
                agent_account(self.settings),
            )
            self._move(TicketPhase.ANALYZING)
            workspace.write_context(*self.context)
            workspace.hand_over()
            self._move(TicketPhase.BUILDING)
            self._run_step("command", profile.command, workspace, profile)
            if profile.test:
                self._move(TicketPhase.TESTING)
                self._run_step("test command", profile.test, workspace, profile)
            if not workspace.has_changes():
                raise AgentFailed("the agent finished without changing any file")
            # specbridge pushes, after the agent is gone, with a token for this
            # repository's contents only, handed to that one git command.
            self._push_token = repository_token(self.settings, self.installation, self.full_name)
            workspace.commit_and_push(
                branch, f"{self.task_key}: {self.title}\n\nPart of #{self.issue}", self._push_token
            )
            number = self.repo.open_pull_request(
                title=f"{self.task_key}: {self.title}",
                head=branch,
                base=self.default_branch,
                body=self._pull_request_body(profile),
                draft=True,
            )
            self._succeed(branch, number)
        except (AgentFailed, WorkspaceError) as failure:
            self._fail(str(failure))
        except (GithubException, RequestException, LockBusy, LockLost) as error:
            if self.task.attempts >= MAX_ATTEMPTS:
                self._fail(f"GitHub kept failing: {error}")
                return
            # Transient: the queue retries the job with backoff.
            self.task.status = TaskStatus.QUEUED
            self.session.commit()
            raise
        finally:
            if workspace is not None:
                workspace.remove()

    def _pull_request_body(self, profile: AgentProfile) -> str:
        spec = f"[`{self.spec_path}`](../blob/{self.default_branch}/{self.spec_path})"
        return (
            f"Closes #{self.issue}\n\nA draft by the agent profile `{profile.name}` for the task "
            f"`{self.task_key}` of the spec `{self.spec_key}` ({spec}). Review it, mark it ready, "
            "and merge it to close the ticket."
        )

    def _profile(self) -> AgentProfile:
        profile = load_profiles(self.settings).get(self.task.agent)
        if profile is None:
            raise AgentFailed(f"no agent profile named {self.task.agent!r} is configured")
        return profile

    def _move(self, phase: TicketPhase) -> None:
        """Show the run's progress on the card, unless the task was cancelled.

        A person's /cancel or card move holds the same lock: whichever of us comes
        second sees the other's change, so a cancelled run never moves its card back.
        """
        with exclusive(self.settings, card_lock(self.full_name, self.issue)) as lease:
            if self._cancelled():
                raise AgentFailed("the task was cancelled while it ran")
            self.session.refresh(self.ticket, ["phase"])
            if self.ticket.phase is phase:
                self.session.commit()
                return
            shown_as, self.ticket.phase = self.ticket.phase, phase
            self.session.commit()
            lease.check()
            show_on_board(self.boards, self.ticket, shown_as)

    def _run_step(
        self, what: str, command: str, workspace: Workspace, profile: AgentProfile
    ) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(workspace.root),
            "TMPDIR": str(workspace.root),
            **profile.env,
            "SPECBRIDGE_TASK_FILE": str(workspace.task_file),
            "SPECBRIDGE_TASK_JSON": str(workspace.task_json),
            "SPECBRIDGE_ISSUE": str(self.issue),
        }
        result = run_command(
            command, workspace.checkout, env, profile.timeout, self._cancelled, workspace.account
        )
        self.output += f"$ {command}\n{result.output}\n"
        if result.stopped:
            raise AgentFailed("the task was cancelled while it ran")
        if result.timed_out:
            raise AgentFailed(f"the {what} ran longer than its {profile.timeout}s timeout")
        if result.exit_code != 0:
            raise AgentFailed(f"the {what} exited with status {result.exit_code}")

    def _cancelled(self) -> bool:
        with session_scope(self.settings.database_url) as session:
            status = session.scalar(select(Task.status).where(Task.id == self.task.id))
        return status is TaskStatus.CANCELLED

    def _succeed(self, branch: str, pull_request: int) -> None:
        self.task.status = TaskStatus.SUCCEEDED
        self.task.branch, self.task.pull_request_number = branch, pull_request
        self._finish()
        self.repo.comment_on_issue(
            self.issue,
            f"The agent finished: #{pull_request} (a draft) closes this issue when it merges."
            f"\n\n{self._tail_block()}",
        )

    def _fail(self, reason: str) -> None:
        self.session.refresh(self.task)
        if self.task.status is not TaskStatus.CANCELLED:
            self.task.status = TaskStatus.FAILED
        self.task.error = reason
        self._finish()
        self.repo.comment_on_issue(
            self.issue,
            f"The agent run failed: {redact(reason, self._secrets())}. Comment `/retry` to run it "
            f"again.\n\n{self._tail_block()}",
        )

    def _finish(self) -> None:
        self.task.finished_at = datetime.now(UTC)
        self.task.log_tail = self._tail()
        self.session.commit()

    def _tail(self) -> str:
        return redact(self.output[-LOG_TAIL_CHARS:], self._secrets())

    def _tail_block(self) -> str:
        tail = self._tail().strip()
        if not tail:
            return ""
        return f"<details><summary>Output (last lines)</summary>\n\n```\n{tail}\n```\n</details>"

    def _secrets(self) -> list[str]:
        values = [
            self.settings.github_webhook_secret,
            self.settings.github_token,
            self.repo.connection.token,
            self._push_token,
        ]
        if self.settings.github_private_key:
            values += [
                line for line in self.settings.github_private_key.splitlines() if len(line) > 20
            ]
        return [v for v in values if v]


def run_command(
    command: str,
    cwd: os.PathLike[str],
    env: dict[str, str],
    timeout: float,
    should_stop: Callable[[], bool],
    account: tuple[int, int] | None = None,
) -> CommandResult:
    """Run a shell command line under its supervisor (bot/agents/supervise.py).

    The supervisor kills the command's whole process group when asked (timeout,
    stop) and when this process dies, so an agent never outlives its job.
    `account`: the (uid, gid) the command runs as.
    """
    run_as = ["--as", f"{account[0]}:{account[1]}"] if account else []
    process = subprocess.Popen(
        [sys.executable, "-I", str(SUPERVISOR), *run_as, command],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # out of reach of a kill aimed at the job's own group
    )
    tail: deque[str] = deque(maxlen=400)
    reader = threading.Thread(target=_read_lines, args=(process, tail), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    result = CommandResult(exit_code=None, output="")
    while process.poll() is None:
        try:
            process.wait(timeout=min(POLL_SECONDS, max(deadline - time.monotonic(), 0.01)))
            break
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() >= deadline:
            result.timed_out = True
        elif should_stop():
            result.stopped = True
        if result.timed_out or result.stopped:
            _stop(process)
    reader.join(timeout=5)
    result.exit_code = process.returncode
    result.output = "".join(tail)
    return result


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()  # the supervisor kills the agent's group, then exits
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _read_lines(process: subprocess.Popen[bytes], tail: deque[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        # Output is stored and posted as text: NUL is not text (and PostgreSQL refuses it).
        tail.append(line.decode(errors="replace").replace("\x00", "\ufffd"))


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def task_context(ticket: Ticket) -> tuple[str, dict[str, object]]:
    """What the agent is told: the task, the requirements it serves, the design."""
    task = ticket.spec_task
    spec = ticket.spec
    requirements = []
    if spec is not None and task is not None:
        for requirement in spec.requirements:
            if requirement.key in task.requirement_keys and requirement.removed_at is None:
                requirements.append(
                    {
                        "id": requirement.key,
                        "text": requirement.text,
                        "acceptance": [
                            {"id": c.key, "text": c.text}
                            for c in requirement.acceptance_criteria
                            if c.removed_at is None
                        ],
                    }
                )
    data: dict[str, object] = {
        "issue": ticket.issue_number,
        "spec": spec.key if spec else None,
        "task": task.key if task else None,
        "title": task.title if task else "",
        "description": task.description if task else "",
        "requirements": requirements,
        "design": spec.design if spec else "",
        "depends_on": [d.depends_on.issue_number for d in ticket.dependencies],
    }
    lines = [f"# {data['task']}: {data['title']}", "", str(data["description"]), ""]
    for requirement in requirements:
        lines.append(f"## {requirement['id']}: {requirement['text']}")
        lines += [f"- [ ] {c['id']}: {c['text']}" for c in requirement["acceptance"]]
        lines.append("")
    if data["design"]:
        lines += ["## Design", "", str(data["design"]), ""]
    if data["depends_on"]:
        lines += ["## Depends on", ""] + [f"- #{n}" for n in data["depends_on"]]
    return "\n".join(lines), json.loads(json.dumps(data))
