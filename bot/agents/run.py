"""One agent run: the `agents` queue job for one Task.

Workspace → prompt → the profile's command → its tests → commit, push,
pull request "Closes #N" → a comment with the agent's own summary. The board
follows: Analyzing (workspace ready), Building (command running), Testing
(tests). The command and its tests run in a sandbox (bot/agents/sandbox.py)
with a clean environment holding none of the bot's secrets. A revision (a
review asked for changes) runs on the pull request's branch and pushes to it.

The agent's end is a point of no return: it is recorded (with its output),
then the push of its work (recorded too), then the pull request. A retry
after that point (GitHub failing for a while, a worker lost) resumes from
what was recorded and never runs the agent again. Everything of the agent's
that is posted, logged or stored goes through bot/agents/redaction.py, and
is cut to GitHub's limits.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime

from github import GithubException, RateLimitExceededException
from requests import RequestException
from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from bot.agents import sandbox
from bot.agents.costs import COMPLETED, kind_of, record_end, record_usage, run_usage, usage_file
from bot.agents.credentials import failed_to_authenticate
from bot.agents.exit_reasons import exit_reason
from bot.agents.failure import clear_failed, show_failed
from bot.agents.held_secrets import held_secrets, operator_values
from bot.agents.isolation import agent_account
from bot.agents.presets import PRESETS, model_error, summary_of
from bot.agents.profiles import AgentProfile, load_profiles
from bot.agents.prompt import build_prompt, read_instructions
from bot.agents.redaction import Redactor, code_block, inert
from bot.agents.usage import USAGE_FILE_NAME as USAGE
from bot.agents.workspace import WORKFLOWS, Changes, Workspace, WorkspaceError, named
from bot.beats import heartbeat
from bot.counters import observe_agent_run
from bot.github import BoardGateway, RepositoryGateway, github_client
from bot.github.auth import repository_token
from bot.github.columns import show_on_board
from bot.github.text import MAX_BODY, MAX_TITLE, cut
from bot.hooks import agent_pushed, run_ended, ticket_changed
from bot.locks import LockBusy, LockLost, card_lock, exclusive
from bot.logs import log_context
from bot.settings import Settings, SettingsError, get_settings, web_url_for
from storage.db import session_scope
from storage.models import Task, TaskStatus, Ticket, TicketPhase

log = logging.getLogger(__name__)

# A running Task silent for this many heartbeats has lost its worker.
STALE_AFTER_BEATS = 6
MAX_ATTEMPTS = 3
# Besides the profile's own timeout: a clone, the tests' setup, a push, a pull request.
RUN_OVERHEAD_SECONDS = 600
LOG_TAIL_CHARS = 4000
# The agent's summary as stored (it is quoted whole in a comment only when it fits).
MAX_SUMMARY_CHARS = MAX_BODY


class AgentFailed(Exception):
    """The run failed for a reason of its own: reported, never retried by the queue.
    `code`: why, in a word the report groups by (timeout, cancelled, exit_status…)."""

    def __init__(self, message: str, code: str = "failed") -> None:
        super().__init__(message)
        self.code = code


def run_task(task_id: int) -> None:
    settings = get_settings()
    with log_context(task=task_id), session_scope(settings.database_url) as session:
        if not _claim(session, task_id):
            return  # cancelled, or already taken by another worker
        task = session.get_one(Task, task_id)
        if failed_to_authenticate(session, settings, task, MAX_ATTEMPTS):
            return
        ticket = task.ticket
        with (
            _heartbeats(settings, task_id),
            log_context(
                repository=ticket.repository.full_name,
                spec=ticket.spec.key if ticket.spec else None,
                issue=ticket.issue_number,
            ),
        ):
            _Run(session, settings, task).execute()


def _heartbeats(settings: Settings, task_id: int) -> AbstractContextManager[None]:
    """A heartbeat for the whole run, from a thread of its own.

    Not only while the agent's command runs: a long clone, a card write waiting
    for GitHub's pace or for a lock is the run alive, and a task silent for
    STALE_AFTER_BEATS is run again by the reaper, twice at once if it was alive.
    """
    running = and_(Task.id == task_id, Task.status == TaskStatus.RUNNING)
    return heartbeat(settings, Task, running, f"heartbeat-{task_id}")


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


class TaskJob:
    """A job on one task's ticket: what it knows of the ticket, read before the session
    commits (a subclass reads more before calling this), and its gateways to GitHub."""

    def __init__(self, session: Session, settings: Settings, task: Task) -> None:
        self.session = session
        self.settings = settings
        self.task = task
        self.ticket: Ticket = task.ticket
        repository = self.ticket.repository
        self.installation = repository.installation_github_id
        self.full_name = repository.full_name
        self.default_branch = repository.default_branch
        self.issue = self.ticket.issue_number
        session.commit()
        connection = github_client(settings, self.installation)
        self.repo = RepositoryGateway(connection, self.full_name)
        self.boards = BoardGateway(connection)


class _Run(TaskJob):
    """One run. The session is committed before every call to GitHub (and git):
    nothing here waits on the network, or on the agent, inside a transaction."""

    def __init__(self, session: Session, settings: Settings, task: Task) -> None:
        ticket = task.ticket
        issue = ticket.issue_number
        self.spec_key = ticket.spec.key if ticket.spec else "spec"
        self.spec_path = ticket.spec.path if ticket.spec else None
        self.task_key = ticket.spec_task.key if ticket.spec_task else str(issue)
        self.title = ticket.spec_task.title if ticket.spec_task else f"#{issue}"
        self.revision = task.revision
        attempt = f"/{task.attempt_number}" if task.attempt_number else ""
        self.branch = task.branch or f"specbridge/{self.spec_key}/{self.task_key}{attempt}"
        super().__init__(session, settings, task)
        web = web_url_for(settings.github_api_url)
        self.issue_url = f"{web}/{self.full_name}/issues/{self.issue}"
        self.output = ""
        self.summary: dict[str, object] | None = None
        self.changes = Changes(())
        self.started = time.monotonic()
        self._push_token: str | None = None
        self._profile_values: list[str] = []
        self._disk_baseline: int | None = None
        self.conflicts: tuple[str, ...] = ()  # of the base merged in, for the agent
        self._agent_profile: AgentProfile | None = None

    def execute(self) -> None:
        workspace: Workspace | None = None
        log.info(
            "agent run of task %s for %s#%s started: profile %s, revision %s",
            self.task.id,
            self.full_name,
            self.issue,
            self.task.agent,
            self.revision,
        )
        try:
            clear_failed(self.session, self.settings, self.boards, self.repo, self.ticket)
            profile = self._profile()
            env = self._environment(profile)
            if self.task.agent_ended_at is not None:
                self._resume(profile)  # a retry after the agent's end: it never runs again
                return
            # The clone needs a credential only for a private repository, and
            # only for that one git command: the workspace keeps none.
            workspace = Workspace.create(
                self._clone_url(),
                self.branch if self.revision else self.default_branch,
                self.branch,
                self.repo.connection.token,
                agent_account(self.settings),
                also=(self.default_branch,) if self.revision else (),
            )
            workspace.ignore((*(PRESETS[profile.preset].ignore if profile.preset else ()), USAGE))
            if self.task.merges_base:
                self.conflicts = workspace.merge_marked(self.task.merges_base)
            self._move(TicketPhase.ANALYZING)
            self._write_prompt(workspace, profile)
            workspace.hand_over()
            self._disk_baseline = sandbox.tree_size(workspace.checkout)
            self._move(TicketPhase.BUILDING)
            try:
                output = self._run_step("command", profile.command or "", workspace, profile, env)
                self.summary = summary_of(profile.preset, output)
            finally:
                self._agent_ended(profile, workspace)
            if profile.test:
                self._move(TicketPhase.TESTING, on_the_way=True)
                self._run_step("test command", profile.test, workspace, profile, env)
            self._push(workspace, profile)
            self._open_pull_request(profile)
        except AgentFailed as failure:
            self._fail(str(failure), failure.code)
        except WorkspaceError as failure:
            self._fail(str(failure), "workspace")
        except sandbox.SandboxError as failure:
            self._fail(str(failure), "sandbox")
        except (GithubException, RequestException, LockBusy, LockLost) as error:
            self._github_failed(error)
        finally:
            if workspace is not None:
                workspace.remove()

    def _agent_ended(self, profile: AgentProfile, workspace: Workspace) -> None:
        """Record that the agent ran, what it said and what it used (cancelled too): from
        here on, nothing runs it again."""
        self.task.agent_ended_at = datetime.now(UTC)
        record_usage(self.task, profile, run_usage(profile, self.output, workspace.checkout))
        self.task.log_tail = self._tail()
        if self.summary is not None:
            self.task.summary = self._stored_summary()
        self.session.commit()

    def _push(self, workspace: Workspace, profile: AgentProfile) -> None:
        """Commit what the agent changed, as checked by the workspace, and push it."""
        self.changes = workspace.changes()
        if not self.changes.kept:
            raise AgentFailed(_no_change(profile.preset, self.output, self.changes), "no_change")
        left = workspace.unresolved(self.conflicts)
        if left:
            raise AgentFailed(f"the agent left conflict markers in {named(left)}", "conflicts")
        commit = workspace.commit(self.changes, self._commit_message(), self.task.merges_base)
        if commit is None:
            raise AgentFailed(_no_change(profile.preset, self.output, Changes(())), "no_change")
        # specbridge pushes, after the agent is gone, with a token for this
        # repository's contents only, handed to that one git command.
        self._push_token = repository_token(self.settings, self.installation, self.full_name)
        workspace.push(commit, self.branch, self._push_token, force=not self.revision)
        self.task.pushed_commit = commit
        self.session.commit()

    def _open_pull_request(self, profile: AgentProfile) -> None:
        if self.task.pull_request_number is None:
            self.task.pull_request_number = self.repo.open_pull_request(
                title=cut(f"{self.task_key}: {self.title}{self._attempt()}", MAX_TITLE),
                head=self.branch,
                base=self.default_branch,
                body=self._pull_request_body(profile),
                draft=True,
            )
            self.task.branch = self.branch
            self.session.commit()
        self._succeed(self.task.pull_request_number, profile)

    def _resume(self, profile: AgentProfile) -> None:
        """What is left to do after the agent's end, from what was recorded."""
        if self.task.pushed_commit is None:
            raise AgentFailed(
                "the run stopped after the agent finished and before its work was pushed "
                "(its worker was lost, or GitHub kept failing): the work is lost",
                "worker_lost",
            )
        log.info("agent run of task %s resumes after its agent's end", self.task.id)
        self.output = self.task.log_tail or ""
        self.summary = {"text": self.task.summary} if self.task.summary else None
        self._open_pull_request(profile)

    def _github_failed(self, error: Exception) -> None:
        """GitHub failed (or a lock was busy). Before the agent's end, the queue runs the job
        again; after it, never the agent: a retry resumes from what was recorded."""
        ended = self.task.agent_ended_at is not None
        if ended and self.task.pushed_commit is None:
            self._fail(
                f"the agent's work could not be pushed: GitHub failed ({_said(error)})", "github"
            )
            return
        if ended and not _passing(error):
            self._fail(
                f"GitHub refused the pull request of the pushed branch: {_said(error)}", "github"
            )
            return
        if self.task.attempts >= MAX_ATTEMPTS:
            if self.task.status is TaskStatus.SUCCEEDED:
                log.warning(
                    "task %s succeeded; its comment could not be posted: %s", self.task.id, error
                )
                return
            self._fail(f"GitHub kept failing: {_said(error)}", "github")
            return
        # Passing: the queue retries the job with backoff.
        self.task.status = TaskStatus.QUEUED
        self.session.commit()
        raise error

    def _profile(self) -> AgentProfile:
        try:
            profile = load_profiles(self.settings).get(self.task.agent)
        except SettingsError as error:
            raise AgentFailed(str(error), "config") from None
        if profile is None:
            raise AgentFailed(f"no agent profile named {self.task.agent!r} is configured", "config")
        if profile.command is None:
            raise AgentFailed(
                f"the profile {profile.name!r} dispatches on GitHub: nothing runs", "config"
            )
        self._agent_profile = profile
        return profile

    def _environment(self, profile: AgentProfile) -> dict[str, str]:
        try:
            own = profile.environment()
        except SettingsError as error:
            raise AgentFailed(str(error), "config") from None
        self._profile_values = operator_values(profile, own)
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **own}

    def _clone_url(self) -> str:
        """The repository's URL, computed by the bot (not read from anything writable)."""
        return f"{web_url_for(self.settings.github_api_url)}/{self.full_name}.git"

    def _write_prompt(self, workspace: Workspace, profile: AgentProfile) -> None:
        prompt = build_prompt(
            self.ticket,
            self.issue_url,
            profile.test,
            read_instructions(workspace.checkout),
            self.task.review,
            fixes_checks=self.task.fixes_checks,
        )
        self.session.commit()
        workspace.write_context(prompt.markdown, prompt.data)

    def _attempt(self) -> str:
        number = self.task.attempt_number
        return f" (attempt {number}, `{self.task.agent}`)" if number else ""

    def _commit_message(self) -> str:
        if self.task.merges_base:
            return (
                f"Merge {self.default_branch} into {self.branch}\n\n"
                f"{self.task_key}: the agent resolved the conflicts ({self.revision}). "
                f"Part of #{self.issue}"
            )
        if self.revision:
            return (
                f"{self.task_key}: revise after review ({self.revision})\n\nPart of #{self.issue}"
            )
        return f"{self.task_key}: {self.title}\n\nPart of #{self.issue}"

    def _pull_request_body(self, profile: AgentProfile) -> str:
        spec = f"[`{self.spec_path}`](../blob/{self.default_branch}/{self.spec_path})"
        said = (
            f"Closes #{self.issue}\n\nA draft by the agent profile `{profile.name}` for the task "
            f"`{self.task_key}` of the spec `{self.spec_key}` ({spec}). Review it, mark it ready, "
            "and merge it to close the ticket; a review that requests changes, or `/revise` on "
            f"the issue or here, runs the agent again on this branch.{self._left_out()}"
        )
        return self._fitted(said, tail=False)

    def _move(self, phase: TicketPhase, on_the_way: bool = False) -> None:
        """Show the run's progress on the card, unless the task was cancelled.

        A person's /cancel or card move holds the same lock: whichever of us comes
        second sees the other's change, so a cancelled run never moves its card back.
        `on_the_way`: after the agent's end, a card that could not be moved is no
        reason to stop (its work is only in the workspace until pushed).
        """
        if on_the_way:
            try:
                self._move(phase)
            except (GithubException, RequestException, LockBusy, LockLost) as error:
                log.warning("task %s: the card stays where it is: %s", self.task.id, error)
            return
        with exclusive(self.settings, card_lock(self.full_name, self.issue)) as lease:
            if self._cancelled():
                raise AgentFailed("the task was cancelled while it ran", "cancelled")
            self.session.refresh(self.ticket, ["phase"])
            if self.ticket.phase is phase:
                self.session.commit()
                return
            shown_as, self.ticket.phase = self.ticket.phase, phase
            self.session.commit()
            ticket_changed(self.settings, self.ticket)  # the tracking issue, within seconds
            lease.check()
            show_on_board(self.boards, self.ticket, shown_as)

    def _run_step(
        self,
        what: str,
        command: str,
        workspace: Workspace,
        profile: AgentProfile,
        env: dict[str, str],
    ) -> str:
        """Run the command (or the tests) in the profile's sandbox; its output."""
        if profile.policy.backend == "none":
            log.warning("agent profile %s runs without a sandbox (sandbox: none)", profile.name)
        env = {
            **env,
            "HOME": str(workspace.agent_home),  # the sandbox's own, unless it runs without one
            "TMPDIR": str(workspace.agent_home),
            "SPECBRIDGE_TASK_FILE": str(workspace.task_file),
            "SPECBRIDGE_TASK_JSON": str(workspace.task_json),
            "SPECBRIDGE_ISSUE": str(self.issue),
            "SPECBRIDGE_USAGE_FILE": str(usage_file(workspace.checkout)),
        }
        outcome = sandbox.run(
            command,
            workspace=workspace.checkout,
            context=workspace.context,
            env=env,
            limits=profile.limits,
            policy=profile.policy,
            account=workspace.account,
            should_stop=self._cancelled,
            shown=(workspace.history,),
            disk_baseline=self._disk_baseline,
            redact=self._redact,
        )
        self.output += f"$ {command}\n{outcome.output}\n"
        if outcome.reason == "stopped":
            raise AgentFailed("the task was cancelled while it ran", "cancelled")
        if outcome.reason == "timeout":
            raise AgentFailed(
                f"the {what} ran longer than its {profile.timeout}s timeout", "timeout"
            )
        if outcome.reason in ("memory", "processes"):
            raise AgentFailed(
                f"the {what} was stopped: it went past its {outcome.reason} limit", "limit"
            )
        if outcome.reason == "disk":
            raise AgentFailed(
                f"the {what} was stopped: it wrote more than its disk limit "
                f"({_size(profile.limits.disk)}) into the repository's folder",
                "limit",
            )
        if outcome.exit_code != 0:
            if what == "test command":
                raise AgentFailed(
                    f"the tests failed: `{command}` exited with status {outcome.exit_code}",
                    "tests_failed",
                )
            raise AgentFailed(exit_reason(what, outcome.exit_code, outcome.output), "exit_status")
        return outcome.output

    def _cancelled(self) -> bool:
        with session_scope(self.settings.database_url) as session:
            status = session.scalar(select(Task.status).where(Task.id == self.task.id))
        return status is TaskStatus.CANCELLED

    def _succeed(self, pull_request: int, profile: AgentProfile) -> None:
        self.task.status = TaskStatus.SUCCEEDED
        self.task.branch, self.task.pull_request_number = self.branch, pull_request
        self._finish(COMPLETED)
        if self.revision:
            said = (
                f"The agent revised #{pull_request} after its review in {self._duration()} "
                f"(revision {self.revision} of {profile.max_revisions})."
            )
        else:
            said = (
                f"The agent finished in {self._duration()}: #{pull_request} (a draft) closes "
                "this issue when it merges."
            )
        self._say(self._fitted(f"{said}{self._left_out()}"))
        agent_pushed(self.settings, self.ticket.id, pull_request)  # its checks, looked at

    def _fail(self, reason: str, code: str = "failed") -> None:
        # The reason may quote the command's last words: redacted wherever it is shown.
        reason = self._redact(reason)
        self.session.refresh(self.task)
        if self.task.status is not TaskStatus.CANCELLED:
            self.task.status = TaskStatus.FAILED
        else:
            code = "cancelled"
        self.task.error = reason
        self._finish(code)
        self._say(
            self._fitted(
                f"The agent run failed after {self._duration()}: {inert(reason)}. "
                "Comment `/retry` to run it again.",
                summary=False,
            )
        )
        if self.task.status is TaskStatus.FAILED:
            show_failed(self.session, self.settings, self.boards, self.repo, self.ticket, reason)

    def _say(self, body: str) -> None:
        """Comment on the issue. GitHub refusing the text (422) is no reason to run again."""
        try:
            self.repo.comment_on_issue(self.issue, cut(body, MAX_BODY))
        except GithubException as error:
            if _passing(error):
                raise
            log.warning("GitHub refused the comment of task %s: %s", self.task.id, _said(error))

    def _finish(self, code: str) -> None:
        self.task.finished_at = datetime.now(UTC)
        self.task.log_tail = self._tail()
        if self.summary is not None:
            self.task.summary = self._stored_summary()
        outcome = self.task.status.value
        seconds = time.monotonic() - self.started
        if self._agent_profile is not None:
            self.task.preset = kind_of(self._agent_profile)
            self.task.model = self.task.model or self._agent_profile.model
        record_end(self.task, seconds, code)
        self.session.commit()
        run_ended(self.settings, self.task.id)  # a waiting run takes this one's place
        ticket_changed(self.settings, self.ticket)  # its cost on the tracking issue
        observe_agent_run(self.settings, self.task.agent, outcome, seconds)
        log.info(
            "agent run of task %s for %s#%s ended: profile %s, %s in %.0fs, revision %s",
            self.task.id,
            self.full_name,
            self.issue,
            self.task.agent,
            outcome,
            seconds,
            self.revision,
        )

    def _duration(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"

    def _fitted(self, said: str, summary: bool = True, tail: bool = True) -> str:
        """`said`, then the agent's summary and the output's last lines, within GitHub's
        limit for a body: the summary is cut to what room is left."""
        ending = f"\n\n{self._tail_block()}" if tail else ""
        quoted = self._summary_block() if summary else ""
        room = MAX_BODY - len(said) - len(ending)
        note = "\n\n_… the agent's summary is cut here, to fit GitHub's limit for a body._"
        return cut(f"{said}{cut(quoted, room, note)}{ending}", MAX_BODY)

    def _left_out(self) -> str:
        note = self.changes.note()
        return f"\n\n{note}" if note else ""

    def _stored_summary(self) -> str:
        assert self.summary is not None
        return cut(self._redact(str(self.summary["text"])), MAX_SUMMARY_CHARS)

    def _summary_block(self) -> str:
        """The agent's own account of its run, quoted, with its turns and cost if it said."""
        if self.summary is None:
            return ""
        text = inert(self._stored_summary()).strip()
        quoted = "\n".join(f"> {line}" for line in text.splitlines())
        facts = []
        if self.summary.get("turns") is not None:
            facts.append(f"{self.summary['turns']} turns")
        if self.summary.get("cost_usd") is not None:
            facts.append(f"${float(str(self.summary['cost_usd'])):.2f}")
        told = f" ({', '.join(facts)})" if facts else ""
        return f"\n\nThe agent's summary{told}:\n\n{quoted}"

    def _tail(self) -> str:
        # Redacted whole, then cut: a secret across the cut is not left half shown.
        tail = self._redact(self.output)[-LOG_TAIL_CHARS:]
        return tail[tail.find("\n") + 1 :] if len(self.output) > LOG_TAIL_CHARS else tail

    def _tail_block(self) -> str:
        tail = self._tail().strip()
        if not tail:
            return ""
        return f"<details><summary>Output (last lines)</summary>\n\n{code_block(tail)}\n</details>"

    def _redact(self, text: str) -> str:
        return Redactor.of(self._secrets())(text)

    def _secrets(self) -> list[str | None]:
        return [
            *held_secrets(self.settings, self.repo.connection.token, self._push_token),
            *self._profile_values,
        ]


def _no_change(preset: str | None, output: str, changes: Changes) -> str:
    if changes.left_out:
        said = (
            f"the agent changed only files under `{WORKFLOWS}/` ({named(changes.left_out)}), "
            "which specbridge does not push: GitHub refuses them from an App without the "
            "`workflows` permission, and the task asked the agent to leave them alone"
        )
    elif changes.ignored:
        said = (
            "the agent finished without changing any file of the repository: it wrote only "
            f"files the repository ignores ({named(changes.ignored)})"
        )
    else:
        said = "the agent finished without changing any file"
    refused = model_error(preset, output)
    return said if refused is None else f"{said}; its model API refused: {refused}"


def _passing(error: Exception) -> bool:
    """Whether GitHub (or a lock) failed for a while, rather than refused for good."""
    if isinstance(error, GithubException) and not isinstance(error, RateLimitExceededException):
        return error.status >= 500 or error.status == 429
    return True


def _said(error: Exception) -> str:
    if isinstance(error, GithubException):
        data = error.data if isinstance(error.data, dict) else {}
        return f"{error.status} {data.get('message') or ''}".strip()
    return str(error)


def _size(size: int) -> str:
    for unit, power in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << power and size % (1 << power) == 0:
            return f"{size >> power} {unit}"
    return f"{size} bytes"
