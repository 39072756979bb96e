"""What the bot holds that no agent text may show (bot/agents/redaction.py hides them):
its own secrets and private key, the persons' tokens it keeps, the tokens a run works
with, and every value the operator gave the agent (its API keys among them). One list
for every run of an agent, a task's or a planner's."""

from __future__ import annotations

from collections.abc import Mapping

from bot.agents.presets import PRESETS
from bot.agents.profiles import AgentProfile
from bot.github.user_token import known_user_tokens
from bot.settings import Settings


def held_secrets(settings: Settings, *tokens: str | None) -> list[str | None]:
    """The bot's own secrets, and `tokens` (the connection's, the push token)."""
    values = [
        settings.github_webhook_secret,
        settings.github_token,
        *known_user_tokens(settings),
        settings.status_token,
        *tokens,
    ]
    if settings.github_private_key:
        values += [line for line in settings.github_private_key.splitlines() if len(line) > 20]
    return values


def operator_values(profile: AgentProfile, environment: Mapping[str, str]) -> list[str]:
    """The values of the agent's environment the operator set: all but its preset's own
    defaults, which are no secret."""
    defaults = PRESETS[profile.preset].env if profile.preset else {}
    return [value for key, value in environment.items() if defaults.get(key) != value]
