"""Agent profiles: presets expand to their CLI's unattended command, and a file that
cannot work is refused in one line before anything runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.agents.profiles import check_profiles, parse_profiles
from bot.cli import main
from bot.settings import SettingsError, get_settings, load_settings


def _profiles(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agents.yaml"
    path.write_text(text)
    return path


def test_a_preset_is_its_cli_run_unattended_with_the_task_as_prompt(tmp_path: Path) -> None:
    path = _profiles(
        tmp_path,
        "claude:\n  preset: claude-code\n  model: claude-sonnet-4-5\n  max_turns: 30\n"
        "  args: [--verbose]\n  test: pytest -q\n",
    )
    claude = parse_profiles(path)["claude"]
    assert claude.command == (
        "claude --output-format json --permission-mode bypassPermissions --setting-sources user"
        " --model claude-sonnet-4-5 --max-turns 30 --verbose"
        ' -p "$(cat "$SPECBRIDGE_TASK_FILE")"'
    )
    # Only the API key passes from the worker's environment, and only the API is reachable.
    assert claude.env_from == ("ANTHROPIC_API_KEY",)
    assert claude.policy.network == ("api.anthropic.com:443",)
    assert claude.env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"


def test_a_profile_names_its_own_network_and_variables(tmp_path: Path) -> None:
    path = _profiles(
        tmp_path,
        "codex:\n  preset: codex\n  env_from: [OPENAI_API_KEY, OPENAI_BASE_URL]\n"
        "  network: none\n  sandbox: none\n",
    )
    codex = parse_profiles(path)["codex"]
    assert codex.command is not None and codex.command.startswith('mkdir -p "$CODEX_HOME" && ')
    assert codex.env_from == ("OPENAI_API_KEY", "OPENAI_BASE_URL")
    assert (codex.policy.network, codex.policy.backend) == ((), "none")


def test_a_hosted_profile_runs_nothing_here(tmp_path: Path) -> None:
    path = _profiles(tmp_path, "copilot:\n  github: {assign: copilot, base: main}\n")
    copilot = parse_profiles(path)["copilot"]
    assert copilot.command is None and copilot.dispatch is not None
    assert (copilot.dispatch.assign, copilot.dispatch.base) == ("copilot", "main")


def test_agents_that_run_here_fix_failing_checks_unless_told_not_to(tmp_path: Path) -> None:
    path = _profiles(
        tmp_path,
        "claude:\n  preset: claude-code\n  reviewers: [octocat, acme/core]\n"
        "mine:\n  command: my-agent\n  fix_checks: false\n"
        "other:\n  command: other-agent\n"
        "copilot:\n  github: {assign: copilot}\n",
    )
    profiles = parse_profiles(path)
    assert [profiles[n].fix_checks for n in ("claude", "mine", "other", "copilot")] == [
        True,
        False,
        True,
        False,
    ]
    claude = profiles["claude"]
    assert (claude.reviewer_logins, claude.reviewer_teams) == (["octocat"], ["core"])


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("default: [unclosed\n", "cannot read"),
        ("default:\n  command: x\n  fix_checks: sometimes\n", "fix_checks must be true or false"),
        ("default:\n  github: {label: x}\n  fix_checks: true\n", "agents that run here"),
        ("default:\n  timeout: 60\n", "needs one of preset, command or github"),
        ("default:\n  preset: cursor\n", "unknown preset 'cursor'"),
        ("default:\n  preset: codex\n  command: x\n", "both preset and command"),
        ("default:\n  command: x\n  comand: y\n", "unknown key 'comand'"),
        ("default:\n  github: {assign: devin}\n", "only copilot"),
        ("default:\n  command: x\n  network: [nowhere]\n", "host:port"),
    ],
)
def test_a_profile_that_cannot_work_is_one_line(tmp_path: Path, text: str, said: str) -> None:
    with pytest.raises(SettingsError, match=said) as refused:
        parse_profiles(_profiles(tmp_path, text))
    assert "\n" not in str(refused.value)


def test_a_variable_a_profile_takes_must_be_set_where_agents_run(tmp_path: Path) -> None:
    path = _profiles(tmp_path, "claude:\n  preset: claude-code\n  sandbox: none\n")
    settings = load_settings({"SPECBRIDGE_AGENTS": str(path)})
    check_profiles(settings, runs_agents=False, environ={})  # the web process runs no agent
    with pytest.raises(SettingsError, match="takes ANTHROPIC_API_KEY from the environment"):
        check_profiles(settings, runs_agents=True, environ={})
    check_profiles(settings, runs_agents=True, environ={"ANTHROPIC_API_KEY": "k"})


def test_a_worker_with_a_broken_profiles_file_stops_at_start_with_one_line(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.setenv("REDIS_URL", os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15")
    monkeypatch.setenv("SPECBRIDGE_AGENTS", str(_profiles(tmp_path, "default:\n  preset: x\n")))
    get_settings.cache_clear()
    try:
        assert main(["worker"]) == 2
    finally:
        get_settings.cache_clear()
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("specbridge: SPECBRIDGE_AGENTS: profile 'default': unknown preset 'x'")


def test_a_profile_without_a_sandbox_is_said_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _profiles(tmp_path, "bare:\n  command: make\n  sandbox: none\n")
    settings = load_settings({"SPECBRIDGE_AGENTS": str(path)})
    check_profiles(settings, runs_agents=True, environ={}, warn=True)
    assert "agent profile 'bare' runs without a sandbox (sandbox: none)" in caplog.text
