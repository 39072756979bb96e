"""Agent profiles: presets expand to their CLI's unattended command, and a file that
cannot work is refused in one line before anything runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.agents import sandbox
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
        ("default:\n  timeout: 60\n", "needs one of preset, command, hosted or github"),
        ("default:\n  preset: cursor\n", "unknown preset 'cursor'"),
        ("default:\n  preset: codex\n  command: x\n", "both preset and command"),
        ("default:\n  command: x\n  comand: y\n", "unknown key 'comand'"),
        ("default:\n  github: {assign: devin}\n", "only copilot"),
        ("default:\n  command: x\n  network: [nowhere]\n", "host:port"),
        # GitHub makes no label longer than 50 characters (issues handed over would fail).
        (f"default:\n  github: {{label: {'l' * 51}}}\n", "GitHub allows 50 in a label's name"),
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
    cli = _fake_cli(tmp_path / "bin", "claude").parent
    check_profiles(settings, runs_agents=True, environ={"ANTHROPIC_API_KEY": "k", "PATH": str(cli)})


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


def _fake_cli(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    program = folder / name
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    return program


def test_a_preset_whose_cli_is_not_on_the_runs_path_is_refused_at_start(tmp_path: Path) -> None:
    """Each of its tasks would fail "exit status 127": said once, before anything runs."""
    path = _profiles(tmp_path, "claude:\n  preset: claude-code\n  sandbox: none\n")
    settings = load_settings({"SPECBRIDGE_AGENTS": str(path)})
    environ = {"ANTHROPIC_API_KEY": "k", "PATH": str(tmp_path / "empty")}
    with pytest.raises(
        SettingsError, match=r"profile 'claude': its CLI `claude` is not on the PATH"
    ):
        check_profiles(settings, runs_agents=True, environ=environ)
    check_profiles(settings, runs_agents=False, environ=environ)  # the web process runs none

    _fake_cli(tmp_path / "bin", "claude")
    check_profiles(settings, runs_agents=True, environ={**environ, "PATH": str(tmp_path / "bin")})


def test_a_preset_cli_the_sandbox_does_not_show_is_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox, "bubblewrap_works", lambda account=None: True)
    folder = tmp_path / "agents" / "bin"
    _fake_cli(folder, "codex")
    text = f"codex:\n  preset: codex\n  env: {{PATH: '{folder}:/usr/bin'}}\n"
    settings = load_settings({"SPECBRIDGE_AGENTS": str(_profiles(tmp_path, text))})
    environ = {"OPENAI_API_KEY": "k"}
    with pytest.raises(SettingsError, match="outside what the sandbox shows"):
        check_profiles(settings, runs_agents=True, environ=environ)

    shown = text + f"  read_only: ['{tmp_path / 'agents'}']\n"
    settings = load_settings({"SPECBRIDGE_AGENTS": str(_profiles(tmp_path, shown))})
    check_profiles(settings, runs_agents=True, environ=environ)


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_a_container_sandbox_which_is_not_wired_is_refused_at_start(
    tmp_path: Path, engine: str
) -> None:
    path = _profiles(tmp_path, f"boxed:\n  command: make\n  sandbox: {engine}\n  image: x\n")
    settings = load_settings({"SPECBRIDGE_AGENTS": str(path)})
    with pytest.raises(SettingsError, match=f"the {engine} sandbox is not wired yet"):
        check_profiles(settings, runs_agents=True, environ={})


def test_no_profiles_file_is_said_once_at_start_where_agents_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    check_profiles(load_settings({}), runs_agents=True, environ={}, warn=True)
    assert "no agent profiles (SPECBRIDGE_AGENTS is not set)" in caplog.text


def test_a_profiles_file_that_is_not_yaml_names_its_line(tmp_path: Path) -> None:
    path = _profiles(tmp_path, "default:\n  command: make\n   timeout: 60\n")
    with pytest.raises(SettingsError) as refused:
        parse_profiles(path)
    assert f"{path}, line 3, column 11: mapping values are not allowed here" in str(refused.value)


def test_a_persons_token_is_never_taken_into_a_local_agents_environment(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text("local:\n  command: [run]\n  env_from: [SPECBRIDGE_AGENT_USER_TOKEN]\n")
    with pytest.raises(SettingsError, match="SPECBRIDGE_AGENT_USER_TOKEN is a person's token"):
        parse_profiles(path)


def test_a_profile_may_cap_its_runs_at_once(tmp_path: Path) -> None:
    path = _profiles(
        tmp_path,
        "few:\n  command: 'true'\n  max_parallel: 3\n"
        "copilot:\n  github: {label: fix-me}\n  max_parallel: 1\n"
        "any:\n  command: 'true'\n",
    )
    profiles = parse_profiles(path)
    assert (profiles["few"].max_parallel, profiles["copilot"].max_parallel) == (3, 1)
    assert profiles["any"].max_parallel is None  # no cap
