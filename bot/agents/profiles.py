"""Agent profiles, defined by the operator in the YAML file named by SPECBRIDGE_AGENTS.

default:
  command: my-agent --task "$SPECBRIDGE_TASK_FILE"
  timeout: 1800
  test: pytest -q
  env: {MODEL: large}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.settings import Settings, SettingsError
from specs.model import MANUAL_AGENT

DEFAULT_TIMEOUT = 1800


@dataclass(frozen=True)
class AgentProfile:
    name: str
    command: str
    timeout: int = DEFAULT_TIMEOUT
    test: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def load_profiles(settings: Settings) -> dict[str, AgentProfile]:
    if settings.agents_file is None:
        return {}
    return parse_profiles(settings.agents_file)


def parse_profiles(path: Path) -> dict[str, AgentProfile]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise SettingsError(f"SPECBRIDGE_AGENTS: cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"SPECBRIDGE_AGENTS: {path} must map profile names to profiles")
    profiles = {}
    for name, value in data.items():
        if name == MANUAL_AGENT:
            raise SettingsError(f"SPECBRIDGE_AGENTS: {MANUAL_AGENT!r} is reserved for no agent")
        if not isinstance(value, dict) or not isinstance(value.get("command"), str):
            raise SettingsError(f"SPECBRIDGE_AGENTS: profile {name!r} needs a command")
        timeout = value.get("timeout", DEFAULT_TIMEOUT)
        if not isinstance(timeout, int) or timeout <= 0:
            raise SettingsError(f"SPECBRIDGE_AGENTS: profile {name!r} timeout must be seconds > 0")
        env = value.get("env") or {}
        if not isinstance(env, dict):
            raise SettingsError(f"SPECBRIDGE_AGENTS: profile {name!r} env must be a mapping")
        profiles[str(name)] = AgentProfile(
            name=str(name),
            command=value["command"],
            timeout=timeout,
            test=value.get("test"),
            env={str(k): str(v) for k, v in env.items()},
        )
    return profiles
