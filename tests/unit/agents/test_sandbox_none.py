"""`sandbox: none`, said explicitly: the command still sees only the environment it
is given, ends at its timeout with its children, stops when asked, and dies with
the job that started it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.agents.sandbox import Limits, Outcome, Policy, run


def _never() -> bool:
    return False


def run_command(
    command: str, cwd: Path, env: dict[str, str], timeout: float, should_stop=_never
) -> Outcome:
    return run(
        command,
        workspace=cwd,
        context=None,
        env=env,
        limits=Limits(timeout),
        policy=Policy(backend="none"),
        should_stop=should_stop,
    )


def test_command_sees_only_the_environment_it_is_given(tmp_path: Path) -> None:
    os.environ["GITHUB_WEBHOOK_SECRET_FOR_TEST"] = "hunter2"
    try:
        result = run_command(
            "env", tmp_path, {"PATH": "/usr/bin:/bin", "SPECBRIDGE_ISSUE": "7"}, 30, _never
        )
    finally:
        del os.environ["GITHUB_WEBHOOK_SECRET_FOR_TEST"]
    assert result.exit_code == 0
    assert "SPECBRIDGE_ISSUE=7" in result.output
    assert "hunter2" not in result.output


def test_command_over_its_timeout_is_killed_with_its_children(tmp_path: Path) -> None:
    marker = tmp_path / "survived"
    result = run_command(
        f"(sleep 3; touch {marker}) & sleep 30",
        tmp_path,
        {"PATH": "/usr/bin:/bin"},
        1,
        _never,
    )
    assert result.reason == "timeout"
    assert result.exit_code != 0
    time.sleep(3.5)
    assert not marker.exists()


def test_command_is_stopped_when_asked(tmp_path: Path) -> None:
    result = run_command("sleep 30", tmp_path, {"PATH": "/usr/bin:/bin"}, 60, lambda: True)
    assert result.reason == "stopped"


def test_failing_command_reports_its_status_and_output(tmp_path: Path) -> None:
    result = run_command("echo broken; exit 3", tmp_path, {"PATH": "/usr/bin:/bin"}, 30, _never)
    assert result.exit_code == 3
    assert result.output == "broken\n"


def test_an_agent_dies_with_the_job_that_started_it(tmp_path: Path) -> None:
    """A worker killed mid-run (RQ's timeout, a crash) leaves no agent running on."""
    started, survived = tmp_path / "started", tmp_path / "survived"
    job = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from pathlib import Path; from bot.agents.sandbox import Limits, Policy, run; run("
            f"'touch {started}; (sleep 3; touch {survived}) & sleep 3; touch {survived}', "
            f"workspace=Path('{tmp_path}'), context=None, env={{'PATH': '/usr/bin:/bin'}}, "
            "limits=Limits(60), policy=Policy(backend='none'))",
        ],
        cwd=Path(__file__).resolve().parents[3],
    )
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists()
    job.send_signal(signal.SIGKILL)
    job.wait()
    time.sleep(4)
    assert not survived.exists()


def test_the_log_says_which_sandbox_a_command_ran_in(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.agents.sandbox")
    run_command("true", tmp_path, {"PATH": "/usr/bin:/bin"}, 30)
    [said] = [r for r in caplog.records if r.name == "bot.agents.sandbox"]
    assert said.getMessage() == "sandbox none, network none"
    assert said.sandbox == "none"  # a field of its own in JSON logs
