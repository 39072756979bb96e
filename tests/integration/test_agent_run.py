"""One agent run end to end, in this process: the job (bot/agents/run.py) against the
GitHub double over HTTP, a real database, real git and the profile's command in its
sandbox (bubblewrap where it works here). What people see of a run, and what is
stored, whatever the agent printed or left (issue 29 findings 2, 9, 10 and 12; issue
30 item 6)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from github import GithubException

from bot.agents import run as run_module
from bot.agents import sandbox
from bot.agents.run import run_task
from bot.settings import Settings, load_settings
from fakehub import FakeHub
from storage.db import session_scope
from storage.models import Repository, Spec, SpecStatus, SpecTask, Task, TaskStatus, Ticket
from tests.e2e.harness import wait_until
from tests.integration.conftest import new_repository

AGENT = (65534, 65534) if os.geteuid() == 0 else None
SANDBOX = "bubblewrap" if sandbox.bubblewrap_works(AGENT) else "none"
# Shaped as the real ones are; none of them is one.
ANTHROPIC_KEY = "sk-ant-api03-" + "k3yOfTheOperat0r" * 4
OWN_SECRET = "the-operators-own-secret-value"
GITHUB_SHAPED = "ghp_" + "Z" * 36
FINAL = (
    f"Done: used {ANTHROPIC_KEY} and {OWN_SECRET}, found {GITHUB_SHAPED}.\n"
    "Tell @octocat and @acme/security. Fixes #1.\n<!-- specbridge: spec=x task=T-9 -->"
)


@dataclass
class Run:
    task_id: int
    issue: int
    full_name: str
    hub: FakeHub
    settings: Settings

    def task(self) -> Task:
        with session_scope(self.settings.database_url) as session:
            task = session.get_one(Task, self.task_id)
            session.expunge(task)
            return task

    def comments(self) -> list[str]:
        answer = requests.get(
            f"{self.hub.url}/repos/{self.full_name}/issues/{self.issue}/comments",
            headers={"Authorization": "token t"},
            timeout=30,
        )
        answer.raise_for_status()
        return [c["body"] for c in answer.json()]

    def pull(self) -> dict[str, Any] | None:
        owner, name = self.full_name.split("/")
        pulls = list(self.hub.state.repo(owner, name).pulls.values())
        return pulls[0] if pulls else None

    def pushed(self, path: str) -> bytes | None:
        owner, name = self.full_name.split("/")
        git = self.hub.state.repo(owner, name).git
        branch = "specbridge/rocket/T-1"
        return git.read(branch, path) if git.sha(branch) else None


@pytest.fixture
def workspaces(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Workspaces in a folder the agents' account can enter."""
    folder = Path(tempfile.mkdtemp(prefix="specbridge-run-test-"))
    folder.chmod(0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    tempfile.tempdir = None
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def counter() -> Iterator[Path]:
    """A folder the agent (run without a sandbox) notes each of its runs in."""
    folder = Path(tempfile.mkdtemp(prefix="specbridge-agent-ran-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def start(
    db: str,
    hub: FakeHub,
    tmp_path: Path,
    workspaces: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Run]:
    """A repository on the double, a ticket with its issue, and a queued task for a
    profile; `start(profile)` makes them, and the run is `run_task(run.task_id)`."""
    monkeypatch.setattr(run_module, "ticket_changed", lambda settings, ticket: None)
    monkeypatch.setenv("OPERATOR_SECRET", OWN_SECRET)

    def make(profile: dict[str, Any], files: dict[str, str] | None = None) -> Run:
        agents = tmp_path / "agents.yaml"
        agents.write_text(yaml.safe_dump({"default": profile}))
        settings = load_settings(
            {
                "DATABASE_URL": db,
                "GITHUB_API_URL": hub.url,
                "GITHUB_TOKEN": "t",
                "GITHUB_WRITE_INTERVAL": "0",
                "SPECBRIDGE_AGENTS": str(agents),
            }
        )
        monkeypatch.setattr(run_module, "get_settings", lambda: settings)
        full_name = new_repository(
            hub, f"r{uuid.uuid4().hex[:8]}", {"README.md": "x\n", **(files or {})}
        )
        issue = requests.post(
            f"{hub.url}/repos/{full_name}/issues",
            json={"title": "T-1: Launch"},
            headers={"Authorization": "token t"},
            timeout=30,
        ).json()["number"]
        with session_scope(db) as session:
            repository = Repository(full_name=full_name)
            spec = Spec(
                repository=repository,
                key="rocket",
                path="specs/rocket.yaml",
                title="Rocket",
                phase="tasks",
                status=SpecStatus.PLANNED,
            )
            spec_task = SpecTask(spec=spec, key="T-1", title="Launch")
            ticket = Ticket(
                repository=repository, spec=spec, spec_task=spec_task, issue_number=issue
            )
            task = Task(ticket=ticket, agent="default", status=TaskStatus.QUEUED)
            session.add_all([repository, spec, spec_task, ticket, task])
            session.commit()
            task_id = task.id
        return Run(task_id, issue, full_name, hub, settings)

    return make


def command(script: str, **extra: Any) -> dict[str, Any]:
    return {"command": textwrap.dedent(script), "sandbox": SANDBOX, "timeout": 60, **extra}


def claude(result: str, counter: Path | None = None, **extra: Any) -> dict[str, Any]:
    """The claude-code preset, with a `claude` that writes hello.txt and ends with `result`
    as Claude Code prints it (one JSON object, its `result` the final message)."""
    final = json.dumps({"type": "result", "result": result, "num_turns": 2})
    bin_dir = Path(tempfile.mkdtemp(prefix="specbridge-fake-claude-"))
    bin_dir.chmod(0o755)
    noted = f'touch "{counter}/ran-$$"\n' if counter else ""
    (bin_dir / "claude").write_text(
        f"#!/bin/sh\n{noted}echo hello > hello.txt\ncat <<'EOF'\n{final}\nEOF\n"
    )
    (bin_dir / "claude").chmod(0o755)
    return {
        "preset": "claude-code",
        "sandbox": "none" if counter else SANDBOX,
        "network": "none",
        "read_only": [str(bin_dir)],
        "env": {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            "MY_SECRET": OWN_SECRET,
        },
        "env_from": ["OPERATOR_SECRET"],
        "timeout": 60,
        **extra,
    }


def test_nothing_the_agent_printed_of_its_keys_or_tokens_is_posted_or_stored(
    start: Callable[..., Run],
) -> None:
    prints = f'echo "key {ANTHROPIC_KEY} own $MY_SECRET env $OPERATOR_SECRET ghs ghs_{"a" * 36}"'
    run = start(claude(FINAL, args=[]) | {"test": prints + "; true"})

    run_task(run.task_id)

    task, pull, [comment] = run.task(), run.pull(), run.comments()
    assert task.status is TaskStatus.SUCCEEDED
    assert pull is not None
    stored = [task.log_tail or "", task.summary or "", comment, pull["body"]]
    for text in stored:
        assert ANTHROPIC_KEY not in text and OWN_SECRET not in text
        assert GITHUB_SHAPED not in text and "ghs_aaaa" not in text
    assert "key *** own *** env *** ghs ***" in (task.log_tail or "")
    for posted in (comment, pull["body"]):
        assert "Done: used *** and ***, found ***." in posted
        assert "@&#8203;octocat and @&#8203;acme/security" in posted
        assert "Fixes #&#8203;1." in posted
        assert "> &lt;!-- specbridge: spec=x task=T-9 -->" in posted  # shown, not hiding
    assert pull["body"].startswith(f"Closes #{run.issue}")  # the bot's own words work


def test_a_summary_longer_than_github_takes_is_cut_and_the_agent_runs_once(
    start: Callable[..., Run], counter: Path
) -> None:
    run = start(claude("All done. " + "x" * 70_000, counter))

    run_task(run.task_id)

    task, pull, [comment] = run.task(), run.pull(), run.comments()
    assert (task.status, task.attempts) == (TaskStatus.SUCCEEDED, 1)
    assert len(list(counter.iterdir())) == 1
    assert pull is not None and len(pull["body"]) <= 65_536
    assert len(comment) <= 65_536
    assert "All done." in comment and "cut here, to fit GitHub's limit" in comment


def test_github_refusing_the_bots_comment_does_not_run_the_agent_again(
    start: Callable[..., Run], counter: Path, hub: FakeHub
) -> None:
    run = start(claude("Done.", counter))
    requests.post(
        f"{hub.url}/_admin/faults",
        json={
            "path": f"{run.full_name}/issues/{run.issue}/comments",
            "method": "POST",
            "status": 422,
            "count": 5,
        },
        timeout=30,
    ).raise_for_status()

    run_task(run.task_id)  # raises nothing: the queue would run it again

    task = run.task()
    assert (task.status, task.attempts) == (TaskStatus.SUCCEEDED, 1)
    assert len(list(counter.iterdir())) == 1
    assert run.pull() is not None


def test_a_retry_after_the_agents_end_resumes_without_running_it_again(
    start: Callable[..., Run], counter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = start(claude("Done.", counter))
    opening = run_module.RepositoryGateway.open_pull_request
    failures = [GithubException(502, {"message": "Server Error"}, None)]

    def open_pull_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop()
        return opening(self, *args, **kwargs)

    monkeypatch.setattr(run_module.RepositoryGateway, "open_pull_request", open_pull_request)

    with pytest.raises(GithubException):
        run_task(run.task_id)  # GitHub failing for a while: the queue retries the job
    between = run.task()
    assert between.status is TaskStatus.QUEUED
    assert between.agent_ended_at is not None and between.pushed_commit is not None

    run_task(run.task_id)  # the queue's retry

    task = run.task()
    assert (task.status, task.attempts) == (TaskStatus.SUCCEEDED, 2)
    assert len(list(counter.iterdir())) == 1  # the agent ran once
    assert run.pull() is not None and run.pushed("hello.txt") == b"hello\n"
    [comment] = run.comments()
    assert "> Done." in comment


def test_a_run_lost_between_the_agents_end_and_its_push_fails_without_running_it(
    start: Callable[..., Run], counter: Path
) -> None:
    run = start(claude("Done.", counter))
    with session_scope(run.settings.database_url) as session:
        from datetime import UTC, datetime

        session.get_one(Task, run.task_id).agent_ended_at = datetime.now(UTC)

    run_task(run.task_id)

    task = run.task()
    assert task.status is TaskStatus.FAILED
    assert "before its work was pushed" in (task.error or "")
    assert list(counter.iterdir()) == []


@pytest.mark.parametrize(
    ("script", "files", "tests", "reason"),
    [
        ("true", {}, None, "the agent finished without changing any file"),
        (
            "mkdir -p build && echo x > build/out",
            {".gitignore": "build/\n"},
            None,
            "it wrote only files the repository ignores (`build/`)",
        ),
        (
            "echo 'on: push' > .github/workflows/ci.yml",
            {".github/workflows/ci.yml": "on: pull_request\n"},
            None,
            "the agent changed only files under `.github/workflows/` (`.github/workflows/ci.yml`)",
        ),
        ("echo 'x = 1' > app.py", {}, "false", "the tests failed: `false` exited with status 1"),
        ("head -c 4M /dev/zero > blob; sleep 20", {}, None, "disk limit (1 MiB)"),
        ("ln -s /etc/shadow shadow", {}, None, "`shadow` is a link to `/etc/shadow`, outside"),
    ],
    ids=["no change", "only ignored files", "only workflows", "tests fail", "disk", "link"],
)
def test_a_run_that_did_nothing_pushable_fails_whatever_the_agent_says(
    start: Callable[..., Run], script: str, files: dict[str, str], tests: str | None, reason: str
) -> None:
    profile = command(script + "\necho 'All done, every test passes.'", disk="1M")
    if tests:
        profile["test"] = tests
    run = start(profile, files)

    run_task(run.task_id)

    task = run.task()
    assert task.status is TaskStatus.FAILED
    assert reason in (task.error or ""), task.error
    assert run.pull() is None
    [comment] = run.comments()
    assert comment.startswith("The agent run failed") and reason in comment


def test_a_mixed_change_is_pushed_without_its_workflows_and_the_pull_request_says_so(
    start: Callable[..., Run],
) -> None:
    script = "echo 'on: push' > .github/workflows/ci.yml; echo 'x = 1' > app.py"
    run = start(command(script), {".github/workflows/ci.yml": "on: pull_request\n"})

    run_task(run.task_id)

    assert run.task().status is TaskStatus.SUCCEEDED
    assert run.pushed("app.py") == b"x = 1\n"
    assert run.pushed(".github/workflows/ci.yml") == b"on: pull_request\n"
    pull = run.pull()
    assert (
        pull is not None
        and "left out the agent's changes to `.github/workflows/ci.yml`" in pull["body"]
    )


def test_the_agent_sees_its_branchs_history_in_its_own_repository(
    start: Callable[..., Run],
) -> None:
    """git in the sandbox: the history borrowed read-only, a commit of its own allowed,
    and no way to the remote."""
    script = """
        git log --format=%s > history.txt
        git status --porcelain > status.txt
        echo more >> history.txt
        git -c user.name=a -c user.email=a@x commit -qam mine && echo committed >> history.txt
        git push origin HEAD > push.txt 2>&1 || echo refused >> push.txt
    """
    run = start(command(script), {".github/specbridge.yml": "specs: specs/\n"})

    run_task(run.task_id)

    assert run.task().status is TaskStatus.SUCCEEDED, run.task().error
    history = (run.pushed("history.txt") or b"").decode()
    assert history.splitlines()[0] != "" and "more" in history
    # A clean checkout to start from, as the agent sees it (but for what it just wrote).
    assert run.pushed("status.txt") == b"?? history.txt\n?? status.txt\n"
    assert (run.pushed("push.txt") or b"").decode().endswith("refused\n")


# -- what a run cost (issue 31 items 1 and 6) -------------------------------------------


def test_a_command_that_writes_its_usage_file_has_its_run_counted(
    start: Callable[..., Run],
) -> None:
    usage = {"input_tokens": 1200, "output_tokens": 340, "cost_usd": 0.75, "model": "house-1"}
    run = start(
        command(f"echo x > work.txt\necho '{json.dumps(usage)}' > \"$SPECBRIDGE_USAGE_FILE\"")
    )

    run_task(run.task_id)

    task = run.task()
    assert task.status is TaskStatus.SUCCEEDED, task.error
    assert (task.input_tokens, task.output_tokens, task.cost_usd) == (1200, 340, 0.75)
    assert (task.preset, task.model, task.exit_reason) == ("command", "house-1", "completed")
    assert not task.cost_estimated
    assert task.wall_seconds is not None and task.wall_seconds > 0
    assert task.pull_request_outcome == "open"


def test_tokens_without_a_cost_are_priced_by_the_profiles_table(
    start: Callable[..., Run],
) -> None:
    usage = {"input_tokens": 2_000_000, "output_tokens": 100_000}
    script = f"echo x > work.txt\necho '{json.dumps(usage)}' > \"$SPECBRIDGE_USAGE_FILE\""
    run = start(command(script, price={"input": 3.0, "output": 15.0}, model="m-2"))

    run_task(run.task_id)

    task = run.task()
    assert task.cost_usd == pytest.approx(2 * 3.0 + 0.1 * 15.0)
    assert task.cost_estimated and task.model == "m-2"


def test_a_usage_file_linked_elsewhere_is_not_read(start: Callable[..., Run]) -> None:
    script = (
        'echo x > work.txt\necho \'{"cost_usd": 99}\' > "$HOME/elsewhere.json"\n'
        'ln -s "$HOME/elsewhere.json" "$SPECBRIDGE_USAGE_FILE"'
    )
    run = start(command(script))

    run_task(run.task_id)

    task = run.task()
    assert task.status is TaskStatus.SUCCEEDED
    assert task.cost_usd is None and task.input_tokens is None


def test_claude_codes_result_gives_the_runs_cost(start: Callable[..., Run]) -> None:
    profile = claude("Done.")
    fixture = Path(__file__).parents[1] / "unit/agents/fixtures/usage/claude-code.json"
    bin_dir = Path(profile["read_only"][0])
    (bin_dir / "claude").write_text(
        f"#!/bin/sh\necho hi > hello.txt\ncat <<'EOF'\n{fixture.read_text()}EOF\n"
    )
    run = start(profile)

    run_task(run.task_id)

    task = run.task()
    assert task.status is TaskStatus.SUCCEEDED
    assert (task.input_tokens, task.output_tokens, task.cache_read_tokens) == (44672, 51, 0)
    assert task.cost_usd == pytest.approx(0.134781)
    assert (task.preset, task.model, task.turns) == ("claude-code", "claude-sonnet-4-5", 2)


def test_a_cancelled_run_records_what_it_cost_until_then(start: Callable[..., Run]) -> None:
    usage = {"input_tokens": 500, "output_tokens": 50, "cost_usd": 0.2}
    script = f"echo '{json.dumps(usage)}' > \"$SPECBRIDGE_USAGE_FILE\"\nsleep 30"
    run = start(command(script))

    def cancel_once_it_spent() -> None:
        def spent() -> bool:
            return any(Path(tempfile.gettempdir()).glob("*/*/.specbridge-usage.json"))

        wait_until(spent, timeout=30)
        with session_scope(run.settings.database_url) as session:
            session.get_one(Task, run.task_id).status = TaskStatus.CANCELLED

    canceller = threading.Thread(target=cancel_once_it_spent)
    canceller.start()
    run_task(run.task_id)
    canceller.join()

    task = run.task()
    assert task.status is TaskStatus.CANCELLED
    assert (task.input_tokens, task.cost_usd, task.exit_reason) == (500, 0.2, "cancelled")
    assert task.wall_seconds is not None and task.wall_seconds < 30
