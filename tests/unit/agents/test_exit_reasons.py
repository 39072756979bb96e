"""A command's failure in words a person can act on (bot/agents/exit_reasons.py)."""

from __future__ import annotations

import pytest

from bot.agents.exit_reasons import exit_reason


@pytest.mark.parametrize(
    "output",
    [
        "/bin/sh: 1: claude: not found\n",  # dash, Debian's /bin/sh
        "bash: line 1: claude: command not found\n",
        "sh: claude: not found\n",  # busybox
        "bwrap: execvp claude: No such file or directory\n",
    ],
)
def test_a_program_that_is_not_installed_is_named(output: str) -> None:
    reason = exit_reason("command", 127, "starting the agent\n" + output)
    assert reason.startswith("claude: not found (the command exited with status 127")
    assert "not installed on the worker" in reason


def test_a_program_that_may_not_run_is_named() -> None:
    reason = exit_reason("test command", 126, "/bin/sh: 1: ./run-tests: Permission denied\n")
    assert reason == "./run-tests: permission denied (the test command exited with status 126)"


def test_any_other_status_is_told_with_the_commands_last_words() -> None:
    output = "collected 3 items\n\nFAILED tests/test_app.py::test_login - assert 401 == 200\n\n"
    assert exit_reason("test command", 1, output) == (
        "the test command exited with status 1: "
        "FAILED tests/test_app.py::test_login - assert 401 == 200"
    )
    assert exit_reason("command", 4, "") == "the command exited with status 4"


def test_an_agent_clis_json_result_is_told_by_its_message() -> None:
    output = '{"type":"result","is_error":true,"result":"Credit balance is too low"}\n'
    assert exit_reason("command", 1, output) == (
        "the command exited with status 1: Credit balance is too low"
    )
    nested = '{"error": {"type": "auth", "message": "invalid x-api-key"}}'
    assert exit_reason("command", 1, nested).endswith(": invalid x-api-key")


def test_what_the_command_said_is_cut_short() -> None:
    reason = exit_reason("command", 2, "x" * 5000)
    assert len(reason) < 260 and reason.endswith("…")
